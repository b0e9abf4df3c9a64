package report

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/darktime/darktime/swarm/resultfile"
)

// Abort is why a run stopped early: the abort_on_fail gate that could no
// longer pass, what it measured and when.
type Abort struct {
	// Gate is the gate's expression, as in GateResult.Expr.
	Gate string `json:"gate"`
	// At is the end of the second that decided it; OffsetSeconds is At
	// from the run's start.
	At            time.Time `json:"at"`
	OffsetSeconds float64   `json:"offset_seconds"`
	// Value is what the gate measured then: the window's value, or the
	// count or maximum so far.
	Value float64 `json:"value"`
	// Window is the window that failed, for a windowed gate.
	Window *WindowResult `json:"window,omitempty"`
}

func (a *Abort) String() string {
	in := ""
	if w := a.Window; w != nil {
		in = fmt.Sprintf(" in the window %s (%s UTC)", w.Span(), w.Start.Format("15:04:05"))
	}
	return fmt.Sprintf("gate %s failed at +%ss: measured %s%s", a.Gate, formatNum(a.OffsetSeconds), formatNum(a.Value), in)
}

// SetAborted records that an abort_on_fail gate stopped the run (a copy
// of a, its offsets from the run's start) and marks that gate among the
// evaluated ones; Evaluate marks it too.
func (r *Report) SetAborted(a *Abort) {
	if a == nil {
		r.Aborted = nil
		return
	}
	c := *a
	c.At = c.At.UTC()
	c.OffsetSeconds = max(0, round3(c.At.Sub(r.Started).Seconds()))
	if c.Window != nil {
		w := *c.Window
		w.offsets(r.Started)
		c.Window = &w
	}
	r.Aborted = &c
	for i := range r.Gates {
		r.Gates[i].Aborted = r.Gates[i].Expr == c.Gate
	}
}

// What a gate watched while the run goes can see: it can no longer pass
// only when the value so far settles it. A window, once all its seconds
// are in, keeps its value, and the gate's is the worst window's; a count
// that only grows (the final counts the same events, or more: publishes
// still unanswered) is settled once it is over a < <= == threshold, and so
// is a maximum. The rest — percentiles and rates over the whole run, the
// ledgers' counts (lost, unexplained), reconciled after the drain — can
// go either way until the end.

// liveCounters are the run's counters a watch sums from the seconds.
var liveCounters = map[string]func(windowCounters) int64{
	"deliveries":     func(c windowCounters) int64 { return c.deliveries },
	"publishes":      func(c windowCounters) int64 { return c.publishesOK + c.publishesFailed },
	"publish_errors": func(c windowCounters) int64 { return c.publishesFailed },
	"errors":         func(c windowCounters) int64 { return c.errors },
	"connects":       func(c windowCounters) int64 { return c.connects },
}

// livePhaseCounters are a phase's counters a watch sums from the seconds
// that overlap it, as PhaseReport does.
var livePhaseCounters = map[string]func(windowCounters) int64{
	"deliveries":       func(c windowCounters) int64 { return c.deliveries },
	"publishes_ok":     func(c windowCounters) int64 { return c.publishesOK },
	"publishes_failed": func(c windowCounters) int64 { return c.publishesFailed },
	"errors":           func(c windowCounters) int64 { return c.errors },
	"duplicated":       func(c windowCounters) int64 { return c.duplicated },
	"reordered":        func(c windowCounters) int64 { return c.reordered },
}

// liveMax is the histogram of a max_HIST_ms metric a watch can follow.
func liveMax(metric string) (string, bool) {
	h, ok := strings.CutPrefix(metric, "max_")
	if !ok {
		return "", false
	}
	h, ok = strings.CutSuffix(h, "_ms")
	return h, ok && secondHists[h]
}

// watchKinds say how a watched gate is followed.
const (
	watchWindow = iota
	watchCount
	watchMax
)

// Watchable says whether a gate can be watched while the run goes
// (abort_on_fail), and if not, why.
func Watchable(g Gate) error {
	if g.WindowSeconds > 0 {
		return nil
	}
	_, err := watchKind(g)
	return err
}

func watchKind(g Gate) (int, error) {
	if g.WindowSeconds > 0 {
		return watchWindow, nil
	}
	name, counters := g.Metric, liveCounters
	_, metric, phase := PhaseMetric(g.Metric)
	if phase {
		name, counters = metric, livePhaseCounters
	}
	_, isCount := counters[name]
	h, isMax := liveMax(name)
	isMax = isMax && (!phase || h == resultfile.HistDelivery) // a phase has max_delivery_ms only
	switch {
	case isCount && (g.Op == "<" || g.Op == "<=" || g.Op == "=="):
		return watchCount, nil
	case isMax && (g.Op == "<" || g.Op == "<="):
		return watchMax, nil
	case isCount || isMax:
		return 0, fmt.Errorf("abort_on_fail cannot watch %q: %s only grows while the run goes, so a gate with %s is settled only when the run is over (abort_on_fail takes it with < <=%s)",
			g.Expr, name, g.Op, map[bool]string{true: " =="}[isCount])
	}
	return 0, fmt.Errorf("abort_on_fail cannot watch %q: %s's value is known only when the run is over (the ledgers are reconciled after the drain; a percentile or a rate of the whole run can still go either way); it watches windowed gates (p99_delivery_ms[10s] < 50), the maxima max_delivery_ms, max_connect_ms, max_publish_ms with < <=, and with < <= == the counts %s, per phase %s (and max_delivery_ms)",
		g.Expr, g.Metric, strings.Join(slices.Sorted(maps.Keys(liveCounters)), ", "), strings.Join(slices.Sorted(maps.Keys(livePhaseCounters)), ", "))
}

// WatchGate is a gate to watch while the run goes.
type WatchGate struct {
	Gate Gate
	// Delay is how long after the first publish the watch starts judging
	// the gate (k6's delayAbortEval): a warm-up's seconds still count,
	// they just do not abort the run.
	Delay time.Duration
}

// Watch judges abort_on_fail gates on a run's seconds as the swarm ticks
// them (Add), and says when one can no longer pass: then the run can stop
// early, and the report built from the same seconds fails the gate too.
// A Watch is safe for use by concurrent goroutines.
type Watch struct {
	mu      sync.Mutex
	gates   []*watched
	per     *perSecond
	publish time.Time
	phases  []Phase
	aborted *Abort
}

// watched is one gate and what the watch knows of it so far.
type watched struct {
	WatchGate
	kind  int
	m     Metric // the metric without its phase
	phase string
	sum   int64   // watchCount: the count so far
	max   float64 // watchMax: the maximum so far
	hist  string  // watchMax: its histogram
}

// NewWatch checks that every gate can be watched (Watchable).
func NewWatch(gates []WatchGate) (*Watch, error) {
	w := &Watch{per: newPerSecond(nil)}
	for _, wg := range gates {
		kind, err := watchKind(wg.Gate)
		if err != nil {
			return nil, err
		}
		g := &watched{WatchGate: wg, kind: kind}
		name := wg.Gate.Metric
		if phase, metric, ok := PhaseMetric(name); ok {
			g.phase, name = phase, metric
		}
		g.m, _ = tableMetric(name)
		g.hist, _ = liveMax(name)
		w.gates = append(w.gates, g)
	}
	return w, nil
}

// Begin tells the watch that publishing started at start, and the
// phases as they will run (their names as the gates name them).
func (w *Watch) Begin(start time.Time, phases []Phase) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.publish, w.phases = start, slices.Clone(phases)
}

// Aborted is the abort Add returned, if any.
func (w *Watch) Aborted() *Abort {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.aborted
}

// Add takes the run's next second and returns the abort when a gate can
// no longer pass (once; nil after). Seconds must come in order.
func (w *Watch) Add(s resultfile.Second) (*Abort, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.per.secs); n > 0 && s.T <= w.per.secs[n-1].T || w.aborted != nil {
		return nil, nil
	}
	w.per.add(s)
	end := time.Unix(s.T+1, 0)
	for _, g := range w.gates {
		sp, in := w.span(g)
		if !in {
			continue
		}
		v, window, err := w.follow(g, sp, s)
		if err != nil {
			return nil, err
		}
		if math.IsNaN(v) || w.publish.IsZero() || end.Before(w.publish.Add(g.Delay)) || !settled(g, v) {
			continue
		}
		w.aborted = &Abort{Gate: g.Gate.Expr, At: end, Value: v, Window: window}
		return w.aborted, nil
	}
	return nil, nil
}

// span is the stretch the gate is judged over, and whether the latest
// second lies in it: the whole run, or the seconds overlapping its phase
// (none before the watch knows the phases).
func (w *Watch) span(g *watched) (span, bool) {
	first := w.per.secs[0].T
	last := w.per.secs[len(w.per.secs)-1].T
	if g.phase == "" {
		return span{first: first, last: math.MaxInt64 / 2}, true
	}
	for _, p := range w.phases {
		if p.Name == g.phase {
			sp := phaseSpan(p)
			sp.first = max(sp.first, first)
			return sp, last >= sp.first && last <= sp.last
		}
	}
	return span{}, false
}

// follow adds second s to what the gate knows and returns its value so
// far (NaN when there is none yet) and, for a window, which.
func (w *Watch) follow(g *watched, sp span, s resultfile.Second) (float64, *WindowResult, error) {
	switch g.kind {
	case watchWindow:
		from, ok := windowAt(sp, g.Gate.WindowSeconds, s.T)
		if !ok {
			return math.NaN(), nil, nil
		}
		v, has, err := w.per.judge(g.m, from, s.T)
		if err != nil || !has {
			return math.NaN(), nil, err
		}
		return v, newWindowResult(from, s.T, time.Unix(w.per.secs[0].T, 0), 1), nil
	case watchCount:
		counters := liveCounters
		if g.phase != "" {
			counters = livePhaseCounters
		}
		g.sum += counters[g.m.Name](w.per.stats(s.T, s.T).windowCounters)
		return float64(g.sum), nil, nil
	}
	st := w.per.stats(s.T, s.T)
	if l, ok := st.latency(g.hist); ok {
		g.max = max(g.max, l.Max)
	}
	return g.max, nil, st.err
}

// settled reports whether value v already fails the gate for good.
func settled(g *watched, v float64) bool {
	if g.kind == watchWindow {
		return !compare(v, g.Gate.Op, g.Gate.Threshold)
	}
	switch g.Gate.Op {
	case "<", "<=":
		return !compare(v, g.Gate.Op, g.Gate.Threshold)
	case "==":
		return v > g.Gate.Threshold
	}
	return false
}
