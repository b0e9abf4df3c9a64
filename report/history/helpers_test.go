package history

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/darktime/darktime/internal/machine"
)

// testMachine is the machine of the synthetic runs.
var testMachine = machine.Description{Cores: 2, CPUModel: "AMD EPYC 7B13", Kernel: "6.1.0-test", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"}

// t0 is the first synthetic run: one run a day from there.
var t0 = time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)

// level gives a metric's true value at run i.
type level func(i int) float64

// flat is a level that does not change.
func flat(v float64) level { return func(int) float64 { return v } }

// step is before until run at, then after.
func step(before, after float64, at int) level {
	return func(i int) float64 {
		if i < at {
			return before
		}
		return after
	}
}

// steps is the levels of consecutive stretches: steps(100, 20, 110, 20, 100)
// is 20 runs at 100, 20 at 110, then 100.
func steps(v ...float64) level {
	return func(i int) float64 {
		at := 0
		for k := 1; k < len(v); k += 2 {
			at += int(v[k])
			if i < at {
				return v[k-1]
			}
		}
		return v[len(v)-1]
	}
}

// synthetic is n runs of scenario, each metric its level times (1 +
// noise·N(0,1)) from a PCG seeded with seed.
func synthetic(scenario string, n int, seed uint64, noise float64, metrics map[string]level) []Record {
	rng := rand.New(rand.NewPCG(seed, 3))
	names := slices.Sorted(maps.Keys(metrics))
	var out []Record
	for i := range n {
		r := Record{
			Schema: Schema, RunID: fmt.Sprintf("run-%03d", i+1), Time: t0.Add(time.Duration(i) * 24 * time.Hour),
			DurationSeconds: 60, Commit: fmt.Sprintf("%02x", i+1) + strings.Repeat("5eed", 9) + "ab", Scenario: scenario, Machine: testMachine,
			Verdict: VerdictPass, Metrics: map[string]float64{},
		}
		for _, name := range names {
			v := metrics[name](i)
			if v != 0 {
				v *= 1 + noise*rng.NormFloat64()
			}
			r.Metrics[name] = round6(v)
		}
		out = append(out, r)
	}
	return out
}

// goldenHistory is the history of the golden files (testdata/): 30 runs
// of ci-smoke whose p99 steps up 10% at run 21 (index 20), with 3% noise,
// and one interrupted run among them.
func goldenHistory() []Record {
	recs := synthetic("ci-smoke", 30, 3, 0.03, map[string]level{
		"p50_delivery_ms": flat(4), "p99_delivery_ms": step(20, 22, 20), "deliveries_per_s": flat(5000),
		"error_rate": flat(0), "lost": flat(0),
	})
	torn := recs[12]
	torn.RunID, torn.Verdict = "run-013-interrupted", VerdictInterrupted
	torn.Metrics = map[string]float64{"p99_delivery_ms": 900, "p50_delivery_ms": 1}
	return append(recs[:13:13], append([]Record{torn}, recs[13:]...)...)
}
