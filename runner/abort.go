package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/swarm"
)

// ErrUnreachable is returned (wrapped) when the target could not be
// reached: what it needs did not start, no client could subscribe, or no
// publish got a connection (swarm.ErrUnreachable). What was measured is
// written all the same; the CLI exits 3.
var ErrUnreachable = swarm.ErrUnreachable

// unreachableError wraps ErrUnreachable and keeps err's message.
type unreachableError struct{ err error }

func (e unreachableError) Error() string   { return e.err.Error() }
func (e unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// errAborted is the cause of a run an abort_on_fail threshold stopped.
var errAborted = errors.New("stopped by abort_on_fail")

// abortWatch follows the scenario's abort_on_fail thresholds on the
// swarm's seconds as they are ticked (swarm.Config.Tick) and stops
// the run when one can no longer pass. A nil *abortWatch watches nothing.
type abortWatch struct {
	w      *report.Watch
	s      *scenario.Scenario
	stop   context.CancelCauseFunc
	out    io.Writer
	log    *slog.Logger
	failed bool // Add failed once: logged, not again
}

// newAbortWatch is the watch of the scenario's abort_on_fail thresholds,
// nil when it has none; stop ends the run.
func (r *Runner) newAbortWatch(stop context.CancelCauseFunc) (*abortWatch, error) {
	var gates []report.WatchGate
	for _, th := range r.s.Thresholds {
		if !th.AbortOnFail {
			continue
		}
		g, err := report.ParseGate(th.Gate)
		if err != nil {
			return nil, err
		}
		gates = append(gates, report.WatchGate{Gate: g, Delay: th.Delay.D()})
	}
	if len(gates) == 0 {
		return nil, nil
	}
	w, err := report.NewWatch(gates)
	if err != nil {
		return nil, err
	}
	return &abortWatch{w: w, s: r.s, stop: stop, out: r.out, log: r.log}, nil
}

// hook makes cfg's swarm tell the watch of every second.
func (a *abortWatch) hook(cfg *swarm.Config) {
	if a == nil {
		return
	}
	cfg.Tick = swarm.ChainTick(cfg.Tick, func(t swarm.Tick) { a.second(t.Second) })
}

// begin tells the watch that publishing started: the phases follow one
// another from start, as reportScenario has them.
func (a *abortWatch) begin(start time.Time) {
	if a == nil {
		return
	}
	var phases []report.Phase
	at := start
	for _, ph := range a.s.Phases {
		phases = append(phases, report.Phase{Name: ph.Name, Start: at, Duration: ph.Duration.D()})
		at = at.Add(ph.Duration.D())
	}
	a.w.Begin(start, phases)
}

// second judges one second; on a gate that can no longer pass it stops
// the run.
func (a *abortWatch) second(s swarm.Second) {
	ab, err := a.w.Add(s)
	if err != nil && !a.failed {
		a.failed = true
		a.log.Warn("abort_on_fail: cannot judge the run's seconds", "err", err)
	}
	if ab == nil {
		return
	}
	fmt.Fprintf(a.out, "abort_on_fail: gate %s can no longer pass (measured %s%s): stopping the run, everything measured is written\n",
		ab.Gate, formatNum(ab.Value), windowNote(ab.Window))
	a.stop(errAborted)
}

// aborted is the abort that stopped the run, if any.
func (a *abortWatch) aborted() *report.Abort {
	if a == nil {
		return nil
	}
	return a.w.Aborted()
}

func windowNote(w *report.WindowResult) string {
	if w == nil {
		return ""
	}
	return fmt.Sprintf(" in the window %s–%s UTC", w.Start.Format("15:04:05"), w.End.Format("15:04:05"))
}

func formatNum(v float64) string { return fmt.Sprintf("%.6g", v) }
