// Package judge decides one step of a progressive rollout: it compares
// what a candidate's cohort of users got with what the primary's (or a
// fresh baseline's) got and says promote, hold or roll back, with every
// number behind the verdict.
//
// Three kinds of evidence, each a Check:
//
//   - Delivery correctness from the shadow ledger: unexplained missing,
//     extra, duplicated (and, reported but not judged, reordered) events per
//     million, against a limit.
//   - Delay distributions (publish to receive, and time to first event):
//     a one-sided Mann–Whitney U test, as Kayenta's judge uses, of "the
//     candidate is slower than the reference by more than the tolerance"
//     (the candidate's samples are shifted back by the tolerance first),
//     plus a tail check — p99 and the spread p99−p50 as ratios to the
//     reference's — because a wider distribution with the same median
//     passes a rank test.
//   - Error and reconnect rates of the cohort against the reference's,
//     with an allowed difference.
//
// The reference is the primary, or, when a baseline runs (the primary's
// code on a fresh instance beside the candidate, as Diffy does), the
// baseline: the candidate and the baseline share the new instances'
// conditions (a busier core, a cold cache), so candidate − baseline is the
// code's doing and baseline − primary is noise, reported as such.
//
// Why a fixed-horizon test at each step's end rather than an anytime-valid
// sequential one: a step ends at its minimum duration and event count, and
// the judge runs once then; one test per step at a small alpha keeps the
// error rate per rollout bounded by steps × alpha without the wider
// confidence sequences a sequential test pays for looking continuously. A
// step whose evidence is not yet sufficient (too few samples for the
// tail, for instance) is held, never silently passed.
package judge

import (
	"fmt"
	"math"
	"slices"
)

// Decision is a step's verdict.
type Decision string

// The decisions, from best to worst.
const (
	Promote  Decision = "promote"
	Hold     Decision = "hold"
	Rollback Decision = "rollback"
)

// Cohort is what one side of the comparison measured during the step.
type Cohort struct {
	// DelayMS are publish-to-receive delays, FirstEventMS the times from
	// connect to the first event, one sample per event or stream.
	DelayMS      []float64 `json:"-"`
	FirstEventMS []float64 `json:"-"`
	// Events is the number of reconciled events; Unexplained the ledger's
	// unexplained missing + extra, Duplicated its duplicates, Reordered its
	// reorders (reported, not judged).
	Events      int64 `json:"events"`
	Unexplained int64 `json:"unexplained"`
	Duplicated  int64 `json:"duplicated"`
	Reordered   int64 `json:"reordered"`
	// Streams, Errors and Reconnects: the cohort's streams, failed
	// requests or streams, and reconnects.
	Streams    int64 `json:"streams"`
	Errors     int64 `json:"errors"`
	Reconnects int64 `json:"reconnects"`
}

// Input is one step's evidence. Baseline is nil when no baseline runs.
type Input struct {
	Primary, Candidate Cohort
	Baseline           *Cohort
}

// Thresholds configure the judge; zero fields take the defaults shown.
type Thresholds struct {
	// Alpha is the significance of each rank test (0.01).
	Alpha float64 `json:"alpha"`
	// ToleranceMS and Tolerance are how much slower the candidate may be:
	// its delays are shifted back by ToleranceMS + Tolerance × the
	// reference's median before the test (5 ms, 0.10).
	ToleranceMS float64 `json:"tolerance_ms"`
	Tolerance   float64 `json:"tolerance"`
	// TailRatio bounds the candidate's p99 and p99−p50 spread as ratios to
	// the reference's (1.5).
	TailRatio float64 `json:"tail_ratio"`
	// MinSamples is the fewest delay samples per side for the rank test
	// (200); the tail check needs MinTailSamples (1000) — fewer holds.
	MinSamples     int `json:"min_samples"`
	MinTailSamples int `json:"min_tail_samples"`
	// MinEvents is the fewest reconciled events for the correctness check
	// (10,000); MaxUnexplainedPPM the unexplained + duplicated events per
	// million it allows (100).
	MinEvents         int64   `json:"min_events"`
	MaxUnexplainedPPM float64 `json:"max_unexplained_ppm"`
	// MaxErrorRateDelta and MaxReconnectRateDelta are how much the
	// candidate's errors and reconnects per stream may exceed the
	// reference's (0.01, 0.05).
	MaxErrorRateDelta     float64 `json:"max_error_rate_delta"`
	MaxReconnectRateDelta float64 `json:"max_reconnect_rate_delta"`
	// MinStreams is the fewest streams per side for the rate checks
	// (50): one failed stream of two is no rate — fewer holds, either way.
	MinStreams int64 `json:"min_streams"`
}

func (t Thresholds) withDefaults() Thresholds {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Alpha, 0.01)
	def(&t.ToleranceMS, 5)
	def(&t.Tolerance, 0.10)
	def(&t.TailRatio, 1.5)
	def(&t.MaxUnexplainedPPM, 100)
	def(&t.MaxErrorRateDelta, 0.01)
	def(&t.MaxReconnectRateDelta, 0.05)
	if t.MinSamples <= 0 {
		t.MinSamples = 200
	}
	if t.MinStreams <= 0 {
		t.MinStreams = 50
	}
	if t.MinTailSamples <= 0 {
		t.MinTailSamples = 1000
	}
	if t.MinEvents <= 0 {
		t.MinEvents = 10_000
	}
	return t
}

// Check is one piece of evidence and what it says.
type Check struct {
	Name     string   `json:"name"`
	Decision Decision `json:"decision"`
	// Value is the measured statistic, Threshold what it is held to, Test
	// how ("mann-whitney-u one-sided", "ratio", "rate"), P the p-value of
	// a test (-1 when none), N1 and N2 the sample sizes (candidate,
	// reference).
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Test      string  `json:"test"`
	P         float64 `json:"p"`
	N1        int64   `json:"n_candidate"`
	N2        int64   `json:"n_reference"`
	Reason    string  `json:"reason"`
}

// Verdict is a step's decision and its evidence.
type Verdict struct {
	Decision  Decision `json:"decision"`
	Reference string   `json:"reference"` // "primary" or "baseline"
	Checks    []Check  `json:"checks"`
	// Noise is the baseline's checks against the primary, when a
	// baseline runs: the environment's differences, not judged.
	Noise  []Check `json:"noise,omitempty"`
	Reason string  `json:"reason"`
}

// Judge decides a step: roll back when any check says so, hold when any
// lacks evidence, promote otherwise.
func Judge(in Input, th Thresholds) Verdict {
	th = th.withDefaults()
	ref, refName := in.Primary, "primary"
	if in.Baseline != nil {
		ref, refName = *in.Baseline, "baseline"
	}
	v := Verdict{Reference: refName, Checks: checks(in.Candidate, ref, th)}
	if in.Baseline != nil {
		v.Noise = checks(*in.Baseline, in.Primary, th)
	}
	v.Decision = Promote
	for _, c := range v.Checks {
		if worse(c.Decision, v.Decision) {
			v.Decision = c.Decision
		}
	}
	var why []string
	for _, c := range v.Checks {
		if c.Decision == v.Decision && v.Decision != Promote {
			why = append(why, c.Name+": "+c.Reason)
		}
	}
	switch v.Decision {
	case Promote:
		v.Reason = fmt.Sprintf("every check passed against the %s", refName)
	default:
		v.Reason = fmt.Sprint(why)
		v.Reason = v.Reason[1 : len(v.Reason)-1]
	}
	return v
}

func worse(a, b Decision) bool { return rank(a) > rank(b) }

func rank(d Decision) int {
	switch d {
	case Rollback:
		return 2
	case Hold:
		return 1
	}
	return 0
}

func checks(cand, ref Cohort, th Thresholds) []Check {
	var out []Check
	out = append(out, correctness(cand, th))
	out = append(out, shift("delay", cand.DelayMS, ref.DelayMS, th))
	out = append(out, tail("delay_tail", cand.DelayMS, ref.DelayMS, th))
	if len(cand.FirstEventMS) > 0 || len(ref.FirstEventMS) > 0 {
		out = append(out, shift("first_event", cand.FirstEventMS, ref.FirstEventMS, th))
	}
	out = append(out, rate("error_rate", cand.Errors, cand.Streams, ref.Errors, ref.Streams, th.MaxErrorRateDelta, th.MinStreams))
	out = append(out, rate("reconnect_rate", cand.Reconnects, cand.Streams, ref.Reconnects, ref.Streams, th.MaxReconnectRateDelta, th.MinStreams))
	return out
}

func correctness(c Cohort, th Thresholds) Check {
	bad := c.Unexplained + c.Duplicated
	ch := Check{Name: "delivery", Test: "unexplained+duplicated per million", Threshold: th.MaxUnexplainedPPM, P: -1, N1: c.Events}
	if c.Events > 0 {
		ch.Value = float64(bad) * 1e6 / float64(c.Events)
	}
	switch {
	case c.Events > 0 && ch.Value > th.MaxUnexplainedPPM:
		// Enough bad events condemn even a short step.
		ch.Decision = Rollback
		ch.Reason = fmt.Sprintf("%d unexplained and %d duplicated of %d events: %.1f per million > %g (%d reordered, not judged)",
			c.Unexplained, c.Duplicated, c.Events, ch.Value, th.MaxUnexplainedPPM, c.Reordered)
	case c.Events < th.MinEvents:
		ch.Decision = Hold
		ch.Reason = fmt.Sprintf("%d reconciled events, fewer than the %d needed", c.Events, th.MinEvents)
	default:
		ch.Decision = Promote
		ch.Reason = fmt.Sprintf("%.1f unexplained per million ≤ %g", ch.Value, th.MaxUnexplainedPPM)
	}
	return ch
}

// shift tests whether the candidate is slower than the reference by more
// than the tolerance: a one-sided Mann–Whitney U test of the candidate's
// samples, shifted back by the tolerance, against the reference's.
func shift(name string, cand, ref []float64, th Thresholds) Check {
	ch := Check{Name: name, Test: "mann-whitney-u one-sided", P: -1, N1: int64(len(cand)), N2: int64(len(ref)), Threshold: th.Alpha}
	if len(cand) < th.MinSamples || len(ref) < th.MinSamples {
		ch.Decision = Hold
		ch.Reason = fmt.Sprintf("%d and %d samples, fewer than the %d needed", len(cand), len(ref), th.MinSamples)
		return ch
	}
	tol := th.ToleranceMS + th.Tolerance*quantile(ref, 0.5)
	shifted := make([]float64, len(cand))
	for i, x := range cand {
		shifted[i] = x - tol
	}
	p := mannWhitneyGreater(shifted, ref)
	ch.P = p
	ch.Value = quantile(cand, 0.5) - quantile(ref, 0.5)
	if p < th.Alpha {
		ch.Decision = Rollback
		ch.Reason = fmt.Sprintf("slower by more than %.1f ms: median %.1f vs %.1f ms (p = %.2g < %g)", tol, quantile(cand, 0.5), quantile(ref, 0.5), p, th.Alpha)
		return ch
	}
	ch.Decision = Promote
	ch.Reason = fmt.Sprintf("not slower by more than %.1f ms: median %.1f vs %.1f ms (p = %.2g)", tol, quantile(cand, 0.5), quantile(ref, 0.5), p)
	return ch
}

// tail holds the candidate's p99 and its spread (p99 − p50) to TailRatio
// times the reference's (plus the absolute tolerance).
func tail(name string, cand, ref []float64, th Thresholds) Check {
	ch := Check{Name: name, Test: "ratio of p99 and of p99−p50", P: -1, N1: int64(len(cand)), N2: int64(len(ref)), Threshold: th.TailRatio}
	if len(cand) < th.MinTailSamples || len(ref) < th.MinTailSamples {
		ch.Decision = Hold
		ch.Reason = fmt.Sprintf("%d and %d samples, fewer than the %d a p99 needs", len(cand), len(ref), th.MinTailSamples)
		return ch
	}
	c99, r99 := quantile(cand, 0.99), quantile(ref, 0.99)
	cs, rs := c99-quantile(cand, 0.5), r99-quantile(ref, 0.5)
	if c99+th.ToleranceMS <= 0 || r99+th.ToleranceMS <= 0 {
		// Delays at or below −tolerance (clocks that disagree): a ratio of
		// them is 0/0, negative or upside down — not evidence either way.
		ch.Decision = Hold
		ch.Reason = fmt.Sprintf("p99 %.1f vs %.1f ms: not above −%g ms on both sides (clocks that disagree?), so their ratio says nothing", c99, r99, th.ToleranceMS)
		return ch
	}
	ratio := func(a, b float64) float64 { return (a + th.ToleranceMS) / (b + th.ToleranceMS) }
	p99r, spreadr := ratio(c99, r99), ratio(cs, rs)
	ch.Value = max(p99r, spreadr)
	if ch.Value > th.TailRatio {
		ch.Decision = Rollback
		ch.Reason = fmt.Sprintf("tail wider: p99 %.1f vs %.1f ms (×%.2f), p99−p50 %.1f vs %.1f ms (×%.2f); limit ×%g", c99, r99, p99r, cs, rs, spreadr, th.TailRatio)
		return ch
	}
	ch.Decision = Promote
	ch.Reason = fmt.Sprintf("p99 %.1f vs %.1f ms (×%.2f), p99−p50 ×%.2f ≤ ×%g", c99, r99, p99r, spreadr, th.TailRatio)
	return ch
}

func rate(name string, cn, cd, rn, rd int64, maxDelta float64, minStreams int64) Check {
	ch := Check{Name: name, Test: "rate per stream, difference", P: -1, N1: cd, N2: rd, Threshold: maxDelta}
	if cd < minStreams || rd < minStreams {
		ch.Decision = Hold
		ch.Reason = fmt.Sprintf("%d and %d streams, fewer than the %d needed", cd, rd, minStreams)
		return ch
	}
	cr := float64(cn) / float64(cd)
	rr := 0.0
	if rd > 0 {
		rr = float64(rn) / float64(rd)
	}
	ch.Value = cr - rr
	if ch.Value > maxDelta {
		ch.Decision = Rollback
		ch.Reason = fmt.Sprintf("%.4f per stream vs %.4f: +%.4f > %g", cr, rr, ch.Value, maxDelta)
		return ch
	}
	ch.Decision = Promote
	ch.Reason = fmt.Sprintf("%.4f per stream vs %.4f", cr, rr)
	return ch
}

// mannWhitneyGreater is the one-sided p-value of "x is stochastically
// greater than y" (normal approximation with tie and continuity
// corrections; the sample sizes the judge requires make it accurate).
func mannWhitneyGreater(x, y []float64) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	type obs struct {
		v float64
		x bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	var rx, ties float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		r := float64(i+j+1) / 2 // mean rank of the run, ranks from 1
		t := float64(j - i)
		ties += t*t*t - t
		for k := i; k < j; k++ {
			if all[k].x {
				rx += r
			}
		}
		i = j
	}
	u := rx - n1*(n1+1)/2
	mean := n1 * n2 / 2
	n := n1 + n2
	sd := math.Sqrt(n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1))))
	if sd == 0 {
		return 1
	}
	z := (u - mean - 0.5) / sd
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

// quantile is the q-quantile of xs (nearest rank on a sorted copy).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
