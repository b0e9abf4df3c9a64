package changepoint

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// stretch is n points at level.
type stretch struct {
	n     int
	level float64
}

// series is the stretches one after another, each point the level times
// (1 + sd·N(0,1)) from a PCG seeded with seed: gaussian noise of sd as a
// share of the level.
func series(seed uint64, sd float64, parts ...stretch) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []float64
	for _, p := range parts {
		for range p.n {
			out = append(out, p.level*(1+sd*rng.NormFloat64()))
		}
	}
	return out
}

func indexes(cps []ChangePoint) []int {
	out := []int{}
	for _, c := range cps {
		out = append(out, c.Index)
	}
	return out
}

func TestDetect(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		xs   []float64
		want []int
	}{
		{"10% step up after 20 runs, 3% noise", series(1, 0.03, stretch{20, 100}, stretch{20, 110}), []int{20}},
		{"10% step up after 20 runs, 5% noise", series(4, 0.05, stretch{20, 100}, stretch{20, 110}), []int{20}},
		{"10% step down after 20 runs, 3% noise", series(2, 0.03, stretch{20, 110}, stretch{20, 100}), []int{20}},
		{"10% step, 5 runs after it", series(3, 0.03, stretch{20, 100}, stretch{5, 110}), []int{20}},
		{"up then back down", series(5, 0.03, stretch{20, 100}, stretch{20, 110}, stretch{20, 100}), []int{20, 40}},
		{"three changes", series(6, 0.03, stretch{15, 100}, stretch{15, 120}, stretch{15, 90}, stretch{15, 105}), []int{15, 30, 45}},
		{"pure noise", series(7, 0.05, stretch{40, 100}), []int{}},
		{"constant", series(8, 0, stretch{30, 100}), []int{}},
		{"too short to split", []float64{1, 1, 9, 9, 9}, []int{}},
		{"empty", nil, []int{}},
	} {
		cps, err := Detect(c.xs, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := indexes(cps); !slices.Equal(got, c.want) {
			t.Errorf("%s: change points at %v, want %v (%+v)", c.name, got, c.want, cps)
		}
		for _, cp := range cps {
			if cp.PValue > DefaultPValue || cp.Permutations != DefaultPermutations || cp.Q <= 0 {
				t.Errorf("%s: %+v: want p <= %v over %d permutations and Q > 0", c.name, cp, DefaultPValue, DefaultPermutations)
			}
		}
	}
}

// TestStepOverSeeds: a 10% step after 20 runs with 3% gaussian noise
// (3.3 standard deviations) is found in every one of 40 series, at run 20
// in most and never more than one run off. One run off is the noise's,
// not the method's: a run next to the step lands on the other level's
// side of the midpoint (z > 1.67) in about 5% of cases each, and then no
// estimator can tell where the step was.
func TestStepOverSeeds(t *testing.T) {
	t.Parallel()
	exact := 0
	const seeds = 40
	for seed := uint64(1); seed <= seeds; seed++ {
		cps, err := Detect(series(seed, 0.03, stretch{20, 100}, stretch{20, 110}), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) != 1 || cps[0].Index < 19 || cps[0].Index > 21 {
			t.Errorf("seed %d: change points %v, want one at 20 (±1)", seed, indexes(cps))
			continue
		}
		if cps[0].Index == 20 {
			exact++
		}
	}
	if exact < seeds*3/4 {
		t.Errorf("the step was found at run 20 exactly in %d of %d series, want at least 3/4", exact, seeds)
	}
}

// TestNoiseFlagsNothing: series of pure noise — gaussian at 3% and 5%,
// and a skewed, heavy-tailed one (latency-like: exponential) — show no
// change point over 20 seeds each.
func TestNoiseFlagsNothing(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 20; seed++ {
		for _, sd := range []float64{0.03, 0.05} {
			if cps, _ := Detect(series(seed+1000, sd, stretch{40, 100}), Options{}); len(cps) > 0 {
				t.Errorf("seed %d, %.0f%% noise: change points %+v in pure noise", seed, sd*100, cps)
			}
		}
		rng := rand.New(rand.NewPCG(seed, 99))
		skewed := make([]float64, 60)
		for i := range skewed {
			skewed[i] = 100 + 10*rng.ExpFloat64()
		}
		if cps, _ := Detect(skewed, Options{}); len(cps) > 0 {
			t.Errorf("seed %d, exponential noise: change points %+v in pure noise", seed, cps)
		}
	}
}

// TestDeterministic: the same series and seed give the same answer;
// another seed changes p at most, not where the change is.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	xs := series(11, 0.05, stretch{20, 100}, stretch{20, 110})
	a, _ := Detect(xs, Options{})
	b, _ := Detect(xs, Options{})
	if !slices.Equal(a, b) {
		t.Errorf("two runs differ: %+v and %+v", a, b)
	}
	c, _ := Detect(xs, Options{Seed: 42})
	if !slices.Equal(indexes(a), indexes(c)) {
		t.Errorf("another seed moved the change: %v and %v", indexes(a), indexes(c))
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{MinSize: 1}, {Permutations: -1}, {PValue: 1.5}, {PValue: -0.1}, {Permutations: 50, PValue: 0.001}, {MaxChanges: -1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
		if _, err := Detect([]float64{1, 2, 3}, o); err == nil {
			t.Errorf("Detect with %+v: no error", o)
		}
	}
	if _, err := Detect([]float64{1, math.NaN(), 3}, Options{}); !errors.Is(err, ErrNotFinite) {
		t.Errorf("a NaN: %v, want ErrNotFinite", err)
	}
	xs := series(5, 0.03, stretch{20, 100}, stretch{20, 110}, stretch{20, 100})
	if cps, _ := Detect(xs, Options{MaxChanges: 1}); len(cps) != 1 {
		t.Errorf("MaxChanges 1: %v", indexes(cps))
	}
	// Stopped early: a series of noise runs a few permutations only.
	d := newDetector(series(1, 0.05, stretch{40, 100}), Options{}.withDefaults())
	xs = series(1, 0.05, stretch{40, 100})
	c, _ := d.best(d.prefix(xs), []int{0, len(xs)})
	if p, ran := d.significance(xs, []int{0, len(xs)}, c.q); p <= DefaultPValue || ran >= DefaultPermutations {
		t.Errorf("noise: p %v after %d permutations, want p > %v and an early stop", p, ran, DefaultPValue)
	}
}

// TestQHat holds best's Q̂ to the definition computed the slow way.
func TestQHat(t *testing.T) {
	t.Parallel()
	xs := series(3, 0.1, stretch{6, 10}, stretch{5, 14})
	d := newDetector(xs, Options{MinSize: 2}.withDefaults())
	got, _ := d.best(d.prefix(xs), []int{0, len(xs)})
	var want candidate
	for tau := 2; tau+2 <= len(xs); tau++ {
		for kappa := tau + 2; kappa <= len(xs); kappa++ {
			x, y := xs[:tau], xs[tau:kappa]
			mean := func(a, b []float64, same bool) float64 {
				s, n := 0.0, 0
				for i := range a {
					for j := range b {
						if same && j <= i {
							continue
						}
						s += math.Abs(a[i] - b[j])
						n++
					}
				}
				return s / float64(n)
			}
			n1, n2 := float64(len(x)), float64(len(y))
			q := n1 * n2 / (n1 + n2) * (2*mean(x, y, false) - mean(x, x, true) - mean(y, y, true))
			if q > want.q {
				want = candidate{tau, kappa, q}
			}
		}
	}
	if got.tau != want.tau || got.kappa != want.kappa || math.Abs(got.q-want.q) > 1e-9*want.q {
		t.Errorf("best = %+v, want %+v", got, want)
	}
}

func BenchmarkDetect200(b *testing.B) {
	xs := series(1, 0.03, stretch{100, 100}, stretch{100, 110})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Detect(xs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
