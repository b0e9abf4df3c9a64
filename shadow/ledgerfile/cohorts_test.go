package ledgerfile

import (
	"errors"
	"testing"
	"time"
)

func filled(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// TestMergeCohorts: counts add up; the merged reservoir keeps every
// sample while they fit, and past ReservoirSize represents each part in
// proportion to the observations it stands for.
func TestMergeCohorts(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	small := func(id string, n int, v float64) Cohorts {
		return Cohorts{Epoch: 4, Step: "divert-5", Since: since, Instances: []string{id},
			Primary:   CohortStats{DelayMS: filled(n, v), DelaySamples: int64(n), Events: 10, Streams: 2, Errors: 1},
			Candidate: CohortStats{DelayMS: filled(n, v+1), DelaySamples: int64(n), Events: 5, Unexplained: 1, Reconnects: 3}}
	}
	got, err := MergeCohorts(small("a", 10, 1), small("b", 20, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Instances) != 2 || got.Primary.Events != 20 || got.Primary.Streams != 4 || got.Primary.Errors != 2 ||
		got.Candidate.Unexplained != 2 || got.Candidate.Reconnects != 6 || len(got.Primary.DelayMS) != 30 || got.Primary.DelaySamples != 30 || got.Baseline != nil {
		t.Errorf("merged %+v", got)
	}

	// Two full reservoirs, of 30,000 and 10,000 observations: 3 to 1.
	a, b := small("a", ReservoirSize, 1), small("b", ReservoirSize, 2)
	a.Primary.DelaySamples, b.Primary.DelaySamples = 30000, 10000
	got, err = MergeCohorts(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ones := 0
	for _, v := range got.Primary.DelayMS {
		if v == 1 {
			ones++
		}
	}
	if len(got.Primary.DelayMS) != ReservoirSize || ones != ReservoirSize*3/4 || got.Primary.DelaySamples != 40000 {
		t.Errorf("%d samples, %d from the busier part; want %d of %d", len(got.Primary.DelayMS), ones, ReservoirSize*3/4, ReservoirSize)
	}
	if in := got.Judge(); len(in.Primary.DelayMS) != ReservoirSize || in.Candidate.Reconnects != 6 || in.Baseline != nil {
		t.Errorf("judge input %+v", in.Candidate)
	}

	b.Epoch = 5
	if _, err := MergeCohorts(a, b); !errors.Is(err, ErrMerge) {
		t.Errorf("cohorts of two epochs merged: %v", err)
	}
	if _, err := MergeCohorts(); !errors.Is(err, ErrMerge) {
		t.Errorf("no cohorts: %v", err)
	}
}

// TestMergeCohortsDelayRule: the merge keeps one delay rule: from the
// send when a part has it, the other parts' delays left out of the
// samples (their counts stay); parts without a rule are of the sighting.
func TestMergeCohortsDelayRule(t *testing.T) {
	part := func(rule string, v float64) Cohorts {
		s := CohortStats{DelayMS: filled(10, v), DelaySamples: 10, DelayFromSend: 10, DelayFromSighting: 10, Events: 10}
		if rule != DelayFromSend {
			s.DelayFromSend = 0
		}
		return Cohorts{Epoch: 1, DelayRule: rule, Primary: s, Candidate: s}
	}
	m, err := MergeCohorts(part(DelayFromSend, 1), part(DelayFromSighting, 2), part("", 3))
	if err != nil {
		t.Fatal(err)
	}
	if m.DelayRule != DelayFromSend {
		t.Fatalf("rule %q", m.DelayRule)
	}
	for _, s := range []CohortStats{m.Primary, m.Candidate} {
		if len(s.DelayMS) != 10 || s.DelaySamples != 10 || s.DelayMS[0] != 1 || s.Events != 30 || s.DelayFromSend != 10 || s.DelayFromSighting != 30 {
			t.Errorf("%d samples of %d (first %v), %d events, %d from the send, %d from the sighting", len(s.DelayMS), s.DelaySamples, s.DelayMS, s.Events, s.DelayFromSend, s.DelayFromSighting)
		}
	}
	m, err = MergeCohorts(part(DelayFromSighting, 2), part("", 3))
	if err != nil {
		t.Fatal(err)
	}
	if m.DelayRule != DelayFromSighting || len(m.Primary.DelayMS) != 20 {
		t.Errorf("rule %q, %d samples; want the sighting's 20", m.DelayRule, len(m.Primary.DelayMS))
	}
}
