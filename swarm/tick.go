package swarm

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Tick is one second of a run as the progress line sees it, told to
// Config.Tick: what live exporters (swarm/live) send on while the run
// goes.
type Tick struct {
	// At is the end of the second (Second.T is its start).
	At time.Time
	// Second is the row of Result.Series this second adds.
	Second Second
	// Phase is where the run was at At: PhaseRamp, PhaseSettle, the
	// name of the Config.Phases entry publishing then (PhasePublish
	// without phases), or PhaseDrain once the last publish was answered.
	Phase string
	// Clients counts this part's client lifecycle so far (Planned is its
	// clients; Connects is left to Second.Connects).
	Clients Totals
	// Histograms are the second's delivery, connect and publish latencies
	// in microseconds (HistDelivery, HistConnect, HistPublish), possibly
	// empty. The run does not touch them after the call: the callee may
	// keep them.
	Histograms map[string]*hdrhistogram.Histogram
}

// The phases a Tick names besides those of Config.Phases.
const (
	PhaseRamp    = "ramp"
	PhaseSettle  = "settle"
	PhasePublish = "publish"
	PhaseDrain   = "drain"
)

// stageTimes are when the run reached its stages, for Tick.Phase: a
// tick names the phase of the second it closes, however late its
// goroutine runs.
type stageTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (st *stageTimes) set(name string, at time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.at == nil {
		st.at = map[string]time.Time{}
	}
	st.at[name] = at
}

// reachedBy reports whether the run had reached stage name by now.
func (st *stageTimes) reachedBy(name string, now time.Time) (time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	at, ok := st.at[name]
	return at, ok && !at.After(now)
}

// phaseAt names the run's phase at now.
func (r *run) phaseAt(now time.Time) string {
	st := &r.stageTimes
	if _, ok := st.reachedBy(StagePublished, now); ok {
		return PhaseDrain
	}
	start, ok := st.reachedBy(StagePublish, now)
	if !ok {
		if _, ok := st.reachedBy(StageConnected, now); ok {
			return PhaseSettle
		}
		return PhaseRamp
	}
	// Publishing: the phase of Config.Phases the time since the first
	// publish falls in; past them, the last.
	if len(r.cfg.Phases) == 0 {
		return PhasePublish
	}
	var end time.Duration
	for _, p := range r.cfg.Phases {
		end += p.Duration
		if now.Sub(start) < end {
			return p.Name
		}
	}
	return r.cfg.Phases[len(r.cfg.Phases)-1].Name
}

// Watch, set on a Launch or an Agent, is called before each run that the
// process runs itself, with its config (Part set): it returns the run's
// Config.Tick and a function called with the run's result once it ended
// (nil when it produced none). darktime swarm --remote-write exports runs
// live through it (swarm/live).
type Watch func(cfg Config) (tick func(Tick), done func(*Result))

// ChainTick returns a Tick hook calling a, then b; either may be nil.
func ChainTick(a, b func(Tick)) func(Tick) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(t Tick) {
		a(t)
		b(t)
	}
}
