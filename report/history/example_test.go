package history_test

import (
	"fmt"
	"time"

	"github.com/darktime/darktime/report/history"
)

// Analyze finds where p99 shifted in a history of 30 runs: 20 at about
// 20 ms, then 10 at about 22 ms.
func ExampleAnalyze() {
	wobble := []float64{0.3, -0.2, 0.1, -0.4, 0.2, 0, -0.1, 0.4, -0.3, 0.1}
	var recs []history.Record
	for i := range 30 {
		p99 := 20 + wobble[i%10]
		if i >= 20 {
			p99 += 2
		}
		recs = append(recs, history.Record{
			Schema: history.Schema, RunID: fmt.Sprintf("run-%02d", i+1), Scenario: "ci-smoke", Verdict: history.VerdictPass,
			Time: time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC), Metrics: map[string]float64{"p99_delivery_ms": p99},
		})
	}
	a, err := history.Analyze(recs, history.AnalyzeOptions{})
	if err != nil {
		panic(err)
	}
	for _, c := range a.Series[0].Metrics[0].Changes {
		fmt.Printf("%s at %s: %.2f -> %.2f ms (%+.0f%%), p %.3f, standing %v\n", c.Verdict, c.RunID, c.Before, c.After, c.Relative*100, c.PValue, c.Standing)
	}
	// Output:
	// regression at run-21: 20.01 -> 22.01 ms (+10%), p 0.002, standing true
}

// Open picks the store from the location: a folder holds history.jsonl,
// a postgres:// URL is a database.
func ExampleOpen() {
	for _, loc := range []string{"results/history", "postgres://ci@db/perf"} {
		fmt.Println(loc, history.IsURL(loc))
	}
	// Output:
	// results/history false
	// postgres://ci@db/perf true
}
