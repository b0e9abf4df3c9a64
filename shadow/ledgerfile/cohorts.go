package ledgerfile

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/darktime/darktime/shadow/judge"
)

// Cohorts is the evidence of one rollout step (an "epoch") per cohort of
// users, as GET /_darktime/cohorts serves it (LEDGER.md, "Cohorts").
type Cohorts struct {
	Epoch int64     `json:"epoch"`
	Step  string    `json:"step"`
	Since time.Time `json:"since"`
	// Instances are the proxy instances whose evidence this is.
	Instances []string `json:"instances"`
	// DelayRule is how every cohort's DelayMS were measured: DelayFromSend
	// or DelayFromSighting ("" from a proxy before the publish clock: the
	// sighting rule).
	DelayRule string       `json:"delay_rule"`
	Primary   CohortStats  `json:"primary"`
	Candidate CohortStats  `json:"candidate"`
	Baseline  *CohortStats `json:"baseline"`
}

// The rules of a delay (LEDGER.md, "Cohorts").
const (
	// DelayFromSend: arrival minus the proxy's send of the event's
	// publish to the cohort's world.
	DelayFromSend = "send"
	// DelayFromSighting: arrival minus the event's first sighting on a
	// reference stream of its channel.
	DelayFromSighting = "sighting"
)

// CohortStats is what one cohort measured during the epoch. DelayMS and
// FirstEventMS are reservoir samples (at most ReservoirSize each) of
// DelaySamples and FirstEventSamples observations; the delays are of the
// document's DelayRule. DelayFromSend and DelayFromSighting count the
// delays observed by each rule (an event may have both).
type CohortStats struct {
	DelayMS           []float64 `json:"delay_ms"`
	FirstEventMS      []float64 `json:"first_event_ms"`
	DelaySamples      int64     `json:"delay_samples"`
	FirstEventSamples int64     `json:"first_event_samples"`
	DelayFromSend     int64     `json:"delay_from_send"`
	DelayFromSighting int64     `json:"delay_from_sighting"`
	Events            int64     `json:"events"`
	Unexplained       int64     `json:"unexplained"`
	Duplicated        int64     `json:"duplicated"`
	Reordered         int64     `json:"reordered"`
	Streams           int64     `json:"streams"`
	Errors            int64     `json:"errors"`
	Reconnects        int64     `json:"reconnects"`
}

// ReservoirSize bounds each sample list of a CohortStats.
const ReservoirSize = 10000

// Judge is the cohort as the judge reads it.
func (c CohortStats) Judge() judge.Cohort {
	return judge.Cohort{
		DelayMS: c.DelayMS, FirstEventMS: c.FirstEventMS,
		Events: c.Events, Unexplained: c.Unexplained, Duplicated: c.Duplicated, Reordered: c.Reordered,
		Streams: c.Streams, Errors: c.Errors, Reconnects: c.Reconnects,
	}
}

// Judge is the step's evidence as the judge's input.
func (c Cohorts) Judge() judge.Input {
	in := judge.Input{Primary: c.Primary.Judge(), Candidate: c.Candidate.Judge()}
	if c.Baseline != nil {
		b := c.Baseline.Judge()
		in.Baseline = &b
	}
	return in
}

// MergeCohorts adds the evidence of several proxy instances of one epoch:
// counts are summed, and each sample list is a reservoir of the union in
// which every part is represented in proportion to its sample total (so
// an instance that saw twice the events weighs twice). Parts of another
// epoch than the first are refused (ErrMerge). Delays of one rule only
// are merged: DelayFromSend when a part has it (an instance's sends are
// the publishes it relayed, as good a subset as any other's), and the
// other parts' delays are left out of the samples (their counts stay).
func MergeCohorts(parts ...Cohorts) (Cohorts, error) {
	if len(parts) == 0 {
		return Cohorts{}, fmt.Errorf("%w: no cohorts", ErrMerge)
	}
	out := Cohorts{Epoch: parts[0].Epoch, Step: parts[0].Step, Since: parts[0].Since, Instances: []string{}, DelayRule: DelayFromSighting}
	for _, p := range parts {
		if p.DelayRule == DelayFromSend {
			out.DelayRule = DelayFromSend
		}
	}
	var prim, cand, base []CohortStats
	for i, p := range parts {
		if p.Epoch != out.Epoch {
			return Cohorts{}, fmt.Errorf("%w: part %d is of epoch %d, part 0 of %d", ErrMerge, i, p.Epoch, out.Epoch)
		}
		if rule := p.DelayRule; rule != out.DelayRule && (rule != "" || out.DelayRule != DelayFromSighting) {
			p.Primary, p.Candidate = withoutDelays(p.Primary), withoutDelays(p.Candidate)
			if p.Baseline != nil {
				b := withoutDelays(*p.Baseline)
				p.Baseline = &b
			}
		}
		if p.Since.Before(out.Since) {
			out.Since = p.Since
		}
		out.Instances = append(out.Instances, p.Instances...)
		prim, cand = append(prim, p.Primary), append(cand, p.Candidate)
		if p.Baseline != nil {
			base = append(base, *p.Baseline)
		}
	}
	out.Primary, out.Candidate = SumCohorts(prim...), SumCohorts(cand...)
	if len(base) > 0 {
		b := SumCohorts(base...)
		out.Baseline = &b
	}
	return out, nil
}

// withoutDelays is s without its delay samples, which are of another rule.
func withoutDelays(s CohortStats) CohortStats {
	s.DelayMS, s.DelaySamples = nil, 0
	return s
}

// SumCohorts adds cohorts (MergeCohorts' rule for the samples).
func SumCohorts(parts ...CohortStats) CohortStats {
	var s CohortStats
	delays, firsts := make([][]float64, len(parts)), make([][]float64, len(parts))
	dn, fn := make([]int64, len(parts)), make([]int64, len(parts))
	for i, p := range parts {
		s.DelaySamples += p.DelaySamples
		s.FirstEventSamples += p.FirstEventSamples
		s.DelayFromSend += p.DelayFromSend
		s.DelayFromSighting += p.DelayFromSighting
		s.Events += p.Events
		s.Unexplained += p.Unexplained
		s.Duplicated += p.Duplicated
		s.Reordered += p.Reordered
		s.Streams += p.Streams
		s.Errors += p.Errors
		s.Reconnects += p.Reconnects
		delays[i], firsts[i], dn[i], fn[i] = p.DelayMS, p.FirstEventMS, p.DelaySamples, p.FirstEventSamples
	}
	s.DelayMS, s.FirstEventMS = combine(delays, dn), combine(firsts, fn)
	return s
}

// combine draws from each reservoir a share of ReservoirSize proportional
// to the observations it stands for (all of each when they fit). The
// draw is seeded by the totals, so a merge is reproducible.
func combine(samples [][]float64, totals []int64) []float64 {
	out := []float64{}
	var n, held int64
	for i, s := range samples {
		n += max(totals[i], int64(len(s)))
		held += int64(len(s))
	}
	if held <= ReservoirSize {
		for _, s := range samples {
			out = append(out, s...)
		}
		return out
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(held)))
	for i, s := range samples {
		total := max(totals[i], int64(len(s)))
		k := min(int(total*ReservoirSize/n), len(s))
		// A partial Fisher–Yates shuffle: k of s without replacement.
		c := append([]float64(nil), s...)
		for j := range k {
			r := j + rng.IntN(len(c)-j)
			c[j], c[r] = c[r], c[j]
		}
		out = append(out, c[:k]...)
	}
	return out
}
