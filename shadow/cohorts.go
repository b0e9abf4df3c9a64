package shadow

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darktime/darktime/shadow/ledgerfile"
)

// A cohort is a group of users whose experience the judge compares
// (LEDGER.md, "Cohorts"): the reference users on the primary, the
// candidate's, and the baseline's (mirror mode with a second primary).
type cohortRole int

const (
	cohortPrimary cohortRole = iota
	cohortCandidate
	cohortBaseline
)

var cohortNames = [...]string{"primary", "candidate", "baseline"}

func (r cohortRole) String() string { return cohortNames[r] }

func roleOfTarget(name string) cohortRole {
	if name == "baseline" {
		return cohortBaseline
	}
	return cohortCandidate
}

// reservoir keeps a uniform sample of at most ReservoirSize values of a
// stream of them (Vitter's Algorithm R).
type reservoir struct {
	s   []float64
	n   int64
	rng *rand.Rand
}

func (r *reservoir) add(v float64) {
	r.n++
	if len(r.s) < ledgerfile.ReservoirSize {
		r.s = append(r.s, v)
		return
	}
	if j := r.rng.Int64N(r.n); j < ledgerfile.ReservoirSize {
		r.s[j] = v
	}
}

// cohortAcc is one cohort's evidence during one epoch. Delays are kept
// by both rules (LEDGER.md, "Cohorts"): from the proxy's send of the
// event's publish to the cohort's world (fromSend, the events that have
// one), and from the first reference sighting (delay, every event that
// has one); the document shows one rule for every cohort.
type cohortAcc struct {
	mu                     sync.Mutex
	delay, fromSend, first reservoir

	events, unexplained, duplicated, streams, errors, reconnects atomic.Int64
}

func newCohortAcc(seed uint64) *cohortAcc {
	return &cohortAcc{delay: reservoir{rng: rand.New(rand.NewPCG(seed, 1))}, first: reservoir{rng: rand.New(rand.NewPCG(seed, 2))},
		fromSend: reservoir{rng: rand.New(rand.NewPCG(seed, 3))}}
}

// addSendDelay adds a delay counted from the publish's send.
func (c *cohortAcc) addSendDelay(ns int64) {
	c.mu.Lock()
	c.fromSend.add(float64(ns) / 1e6)
	c.mu.Unlock()
}

func (c *cohortAcc) addDelay(ns int64) {
	c.mu.Lock()
	c.delay.add(float64(ns) / 1e6)
	c.mu.Unlock()
}

func (c *cohortAcc) addFirst(ns int64) {
	c.mu.Lock()
	c.first.add(float64(ns) / 1e6)
	c.mu.Unlock()
}

// stats is the cohort's evidence with the delays of rule.
func (c *cohortAcc) stats(rule string) ledgerfile.CohortStats {
	c.mu.Lock()
	d := &c.delay
	if rule == ledgerfile.DelayFromSend {
		d = &c.fromSend
	}
	s := ledgerfile.CohortStats{
		DelayMS: append([]float64{}, d.s...), FirstEventMS: append([]float64{}, c.first.s...),
		DelaySamples: d.n, FirstEventSamples: c.first.n,
		DelayFromSend: c.fromSend.n, DelayFromSighting: c.delay.n,
	}
	c.mu.Unlock()
	s.Events, s.Unexplained, s.Duplicated = c.events.Load(), c.unexplained.Load(), c.duplicated.Load()
	s.Streams, s.Errors, s.Reconnects = c.streams.Load(), c.errors.Load(), c.reconnects.Load()
	return s
}

// epoch is one rollout step: from a step (or rollback) to the next, the
// cohorts' evidence is gathered afresh. The mirror ledger runs on across
// epochs; its totals at the epoch's start are subtracted.
type epoch struct {
	n     int64
	step  string
	since time.Time
	acc   [3]*cohortAcc
	start map[string]Counts // each book's totals when the epoch began
}

func (e *epoch) cohort(r cohortRole) *cohortAcc { return e.acc[r] }

// newEpoch starts epoch n named step: the cohorts' evidence starts over.
func (p *Proxy) newEpoch(n int64, step string, since time.Time) *epoch {
	e := &epoch{n: n, step: step, since: since.UTC(), start: map[string]Counts{}}
	for i := range e.acc {
		e.acc[i] = newCohortAcc(uint64(n)<<8 | uint64(i))
	}
	for _, b := range p.allBooks() {
		e.start[b.name] = b.report().Totals
	}
	p.epoch.Store(e)
	p.m.epoch.Set(float64(n))
	p.log.Info("shadow epoch", "epoch", n, "step", step)
	return e
}

// cohortEvent counts one observation of kind (streams, errors,
// reconnects) for a cohort, in the metrics and the current epoch.
func (p *Proxy) cohortCount(r cohortRole, kind string) {
	e := p.epoch.Load()
	switch kind {
	case "streams":
		e.cohort(r).streams.Add(1)
	case "errors":
		e.cohort(r).errors.Add(1)
	case "reconnects":
		e.cohort(r).reconnects.Add(1)
	case "unexplained":
		e.cohort(r).unexplained.Add(1)
	case "duplicated":
		e.cohort(r).duplicated.Add(1)
	}
	p.m.cohort.WithLabelValues(r.String(), kind).Inc()
}

// Cohorts returns this instance's evidence of the current epoch
// (GET /_darktime/cohorts).
func (p *Proxy) Cohorts() ledgerfile.Cohorts {
	e := p.epoch.Load()
	st := p.state.Load()
	// A baseline cohort only where one runs: the judge takes a baseline
	// as the reference, and an empty one would hold every step.
	withBase := st.cfg.Baseline != "" && (st.mirrorsAny() || e.cohort(cohortBaseline).streams.Load() > 0)
	rule := e.delayRule(withBase)
	out := ledgerfile.Cohorts{Epoch: e.n, Step: e.step, Since: e.since, Instances: []string{p.InstanceID()}, DelayRule: rule,
		Primary: e.cohort(cohortPrimary).stats(rule), Candidate: e.cohort(cohortCandidate).stats(rule)}
	base := e.cohort(cohortBaseline).stats(rule)
	books := map[string]Counts{}
	for _, b := range p.allBooks() {
		books[b.name] = b.report().Totals
	}
	// The mirror ledger's findings of this epoch: what it reconciled since
	// the epoch began.
	addLedger := func(s *ledgerfile.CohortStats, name string) {
		now, ok := books[name]
		if !ok {
			return
		}
		was := e.start[name]
		s.Events += now.Primary - was.Primary
		s.Unexplained += (now.UnexplainedMissing - was.UnexplainedMissing) + (now.UnexplainedExtra - was.UnexplainedExtra)
		s.Duplicated += now.Duplicated - was.Duplicated
		s.Reordered += now.Reordered - was.Reordered
	}
	addLedger(&out.Candidate, "candidate")
	if withBase {
		addLedger(&base, "baseline")
		out.Baseline = &base
	}
	return out
}

// delayRule is the rule of the epoch's delays, one for every cohort the
// document shows, so that no comparison sets one rule against the other:
// from the send when every cohort with delays has some from the send
// (and one has), else from the first sighting. The send rule takes only
// the events whose publishes the proxy relayed — the same publishes in
// every world, so the subset favours no cohort — and leaves the mirror's
// lag out; the sighting rule charges a mirrored world with it, and is
// what there is when the publishes reach the servers another way.
func (e *epoch) delayRule(withBase bool) string {
	roles := []cohortRole{cohortPrimary, cohortCandidate}
	if withBase {
		roles = append(roles, cohortBaseline)
	}
	some := false
	for _, r := range roles {
		c := e.cohort(r)
		c.mu.Lock()
		send, sighting := c.fromSend.n, c.delay.n
		c.mu.Unlock()
		if send == 0 && sighting > 0 {
			return ledgerfile.DelayFromSighting
		}
		some = some || send > 0
	}
	if some {
		return ledgerfile.DelayFromSend
	}
	return ledgerfile.DelayFromSighting
}

// mirrorsAny reports whether some route mirrors a share of its users.
func (st *state) mirrorsAny() bool {
	if st.def.Mode == ModeMirror && st.def.bp > 0 {
		return true
	}
	for _, r := range st.routes {
		if r.Mode == ModeMirror && r.bp > 0 {
			return true
		}
	}
	return false
}
