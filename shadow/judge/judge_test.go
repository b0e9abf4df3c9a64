package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// delays draws n publish-to-receive delays (ms) like a healthy stream's: a
// lognormal body around median ms, scaled by scale and shifted by add; a
// fraction tailFrac of the deliveries is tailX times slower (a stall).
func delays(seed uint64, n int, median, scale, add, tailFrac, tailX float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = median*math.Exp(0.35*r.NormFloat64())*scale + add
		if r.Float64() < tailFrac {
			out[i] *= tailX
		}
	}
	return out
}

func cohort(seed uint64, n int, scale, add, tailFrac, tailX float64) Cohort {
	return Cohort{
		DelayMS: delays(seed, n, 10, scale, add, tailFrac, tailX),
		Events:  int64(n) * 20, Streams: 500, Errors: 1, Reconnects: 5,
	}
}

func find(v Verdict, name string) Check {
	for _, c := range v.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{}
}

// TestJudge: a bad candidate is rolled back with the reason named, a good
// one promoted, a thin step held, and an identical but noisy candidate is
// not rolled back when a baseline shares its conditions.
func TestJudge(t *testing.T) {
	const n = 5000
	primary := cohort(1, n, 1, 0, 0.02, 1)
	cases := []struct {
		name     string
		in       Input
		want     Decision
		because  string // the check that decides
		contains string
	}{
		{"identical", Input{Primary: primary, Candidate: cohort(2, n, 1, 0, 0.02, 1)}, Promote, "", "every check passed"},
		{"drops 0.1% silently", Input{Primary: primary, Candidate: func() Cohort {
			c := cohort(3, n, 1, 0, 0.02, 1)
			c.Unexplained = c.Events / 1000
			return c
		}()}, Rollback, "delivery", "per million"},
		{"+40 ms on every delivery", Input{Primary: primary, Candidate: cohort(4, n, 1, 40, 0.02, 1)}, Rollback, "delay", "slower by more than"},
		{"same median, doubled p99", Input{Primary: primary, Candidate: cohort(5, n, 1, 0, 0.03, 4)}, Rollback, "delay_tail", "tail wider"},
		{"more errors", Input{Primary: primary, Candidate: func() Cohort {
			c := cohort(6, n, 1, 0, 0.02, 1)
			c.Errors = 40
			return c
		}()}, Rollback, "error_rate", "per stream"},
		{"too few samples", Input{Primary: primary, Candidate: cohort(7, 150, 1, 0, 0.02, 1)}, Hold, "delay", "fewer than"},
		{"noisy identical, no baseline", Input{Primary: primary, Candidate: cohort(8, n, 1.3, 5, 0.02, 1)}, Rollback, "delay", "slower"},
		{"noisy identical, baseline beside it", Input{Primary: primary, Candidate: cohort(8, n, 1.3, 5, 0.02, 1),
			Baseline: func() *Cohort { c := cohort(9, n, 1.3, 5, 0.02, 1); return &c }()}, Promote, "", "baseline"},
		{"+40 ms, baseline beside it", Input{Primary: primary, Candidate: cohort(10, n, 1.3, 45, 0.02, 1),
			Baseline: func() *Cohort { c := cohort(11, n, 1.3, 5, 0.02, 1); return &c }()}, Rollback, "delay", "slower"},
	}
	// The doubled-p99 candidate's body is the primary's: same median.
	if c := cases[3].in.Candidate.DelayMS; quantile(c, 0.99) < 1.8*quantile(primary.DelayMS, 0.99) ||
		math.Abs(quantile(c, 0.5)-quantile(primary.DelayMS, 0.5)) > 1 {
		t.Fatalf("the doubled-p99 case is not one: p50 %.1f vs %.1f, p99 %.1f vs %.1f", quantile(c, 0.5), quantile(primary.DelayMS, 0.5), quantile(c, 0.99), quantile(primary.DelayMS, 0.99))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.in, Thresholds{})
			if v.Decision != tc.want {
				b, _ := json.MarshalIndent(v, "", " ")
				t.Fatalf("decision %s, want %s:\n%s", v.Decision, tc.want, b)
			}
			if tc.because != "" {
				if c := find(v, tc.because); c.Decision != tc.want {
					t.Errorf("check %s: %+v, want it to decide %s", tc.because, c, tc.want)
				}
			}
			if !strings.Contains(v.Reason, tc.contains) {
				t.Errorf("reason %q does not say %q", v.Reason, tc.contains)
			}
			for _, c := range v.Checks {
				if c.Test == "" || c.Reason == "" || (c.Decision != Hold && c.N1 == 0) {
					t.Errorf("check without its evidence: %+v", c)
				}
			}
			if tc.in.Baseline != nil && (v.Reference != "baseline" || len(v.Noise) == 0) {
				t.Errorf("reference %q, noise %d checks: want the baseline as reference and the noise reported", v.Reference, len(v.Noise))
			}
		})
	}
}

// TestJudgeFalseAlarms: over many identical cohorts the judge rolls back
// about as often as its alpha says, not more.
func TestJudgeFalseAlarms(t *testing.T) {
	rollbacks := 0
	const trials = 200
	for i := range trials {
		v := Judge(Input{Primary: cohort(uint64(1000+2*i), 3000, 1, 0, 0.02, 1), Candidate: cohort(uint64(1001+2*i), 3000, 1, 0, 0.02, 1)}, Thresholds{})
		if v.Decision == Rollback {
			rollbacks++
		}
	}
	if rollbacks > 4 { // alpha 0.01 with a 5 ms tolerance: expect ~0
		t.Errorf("%d of %d identical cohorts rolled back", rollbacks, trials)
	}
}

// TestTailSkewedClocks: delays at or below −tolerance on both sides (a
// proxy whose clock disagrees with the publisher's) make the tail ratio
// 0/0; that is no evidence, so the tail check holds, with the reason, and
// the verdict can be encoded (no NaN).
func TestTailSkewedClocks(t *testing.T) {
	t.Parallel()
	skewed := func(seed uint64, at float64) Cohort {
		c := cohort(seed, 2000, 0, 0, 0, 1) // scale 0: every delay is add
		for i := range c.DelayMS {
			c.DelayMS[i] = at
		}
		return c
	}
	for _, tc := range []struct {
		name      string
		cand, ref float64
	}{
		{"both at -tolerance", -5, -5},
		{"both below", -40, -20},
		{"reference below", 3, -20},
		{"candidate below", -20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(Input{Primary: skewed(1, tc.ref), Candidate: skewed(2, tc.cand)}, Thresholds{})
			c := find(v, "delay_tail")
			if c.Decision != Hold || !strings.Contains(c.Reason, "clocks that disagree") {
				t.Fatalf("delay_tail %s: %s; want hold", c.Decision, c.Reason)
			}
			if v.Decision == Promote {
				t.Errorf("verdict promote with the tail held: %s", v.Reason)
			}
			if _, err := json.Marshal(v); err != nil {
				t.Errorf("the verdict does not encode: %v", err)
			}
		})
	}
}

// TestMannWhitney checks the test's p-values on known cases.
func TestMannWhitney(t *testing.T) {
	sep := []float64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	low := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := mannWhitneyGreater(sep, low); p > 1e-3 {
		t.Errorf("separated samples: p = %g, want tiny", p)
	}
	if p := mannWhitneyGreater(low, sep); p < 0.999 {
		t.Errorf("reversed: p = %g, want ~1", p)
	}
	same := []float64{5, 5, 5, 5}
	if p := mannWhitneyGreater(same, same); p != 1 {
		t.Errorf("all tied: p = %g, want 1 (no evidence)", p)
	}
	x := delays(1, 2000, 10, 1, 0, 0, 1)
	y := delays(2, 2000, 10, 1, 0, 0, 1)
	if p := mannWhitneyGreater(x, y); p < 0.01 || p > 0.99 {
		t.Errorf("identical distributions: p = %g", p)
	}
}

// TestRatesNeedStreams: one failed stream of a handful is no rate — the
// rate checks hold below MinStreams on either side, whichever way the
// few streams went, and judge from there on.
func TestRatesNeedStreams(t *testing.T) {
	th := Thresholds{}.withDefaults()
	for _, tc := range []struct {
		name           string
		cn, cd, rn, rd int64
		want           Decision
	}{
		{"one stream each, fine", 0, 1, 0, 1, Hold},
		{"one failed stream of one", 1, 1, 0, 1, Hold},
		{"enough candidate streams, too few reference", 0, 60, 0, 10, Hold},
		{"enough, fine", 0, 60, 0, 60, Promote},
		{"enough, failing", 30, 60, 0, 60, Rollback},
	} {
		ch := rate("error_rate", tc.cn, tc.cd, tc.rn, tc.rd, th.MaxErrorRateDelta, th.MinStreams)
		if ch.Decision != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, ch.Decision, ch.Reason, tc.want)
		}
	}
}
