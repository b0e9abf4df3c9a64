package report_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/swarm/resultfile"
)

// A CI step: read the parts of a run, build the report, check gates.
func ExampleBuild() {
	var results []*resultfile.Result
	for _, name := range []string{"run.part0.json", "run.part1.json"} {
		r, err := report.ReadResultFile(filepath.Join("testdata", name))
		if err != nil {
			fmt.Println(err)
			return
		}
		results = append(results, r)
	}
	r, err := report.Build(report.Inputs{Results: results})
	if err != nil {
		fmt.Println(err) // wraps report.ErrInput: exit 2
		return
	}
	gates, err := report.ParseGates([]string{"p99_delivery_ms < 100", "lost == 0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := r.Evaluate(gates)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, g := range res {
		fmt.Println(g)
	}
	if err := report.Failures(res); err != nil {
		fmt.Fprintln(os.Stderr, err) // a *report.GateFailure: exit 1
	}
	// Output:
	// PASS p99_delivery_ms < 100: measured 80.063
	// FAIL lost == 0: measured 3
	// PASS expected > 0 (default): measured 360
	// PASS publish_errors == 0 (default): measured 0
	// PASS unreadable == 0 (default): measured 0
	// FAIL unexplained == 0 (default): measured 4
}

func ExampleParseGate() {
	g, err := report.ParseGate("error_rate<1e-3")
	fmt.Printf("%s | %s %s %g | %v\n", g.Expr, g.Metric, g.Op, g.Threshold, err)
	_, err = report.ParseGate("p99 < 50")
	fmt.Println(err)
	// Output:
	// error_rate < 1e-3 | error_rate < 0.001 | <nil>
	// gate "p99 < 50": bad report input: unknown metric "p99": did you mean p99_delivery_ms, p99_connect_ms, p99_first_event_ms, p99_publish_ms? (`darktime report --metrics` lists them all)
}

// A scenario run (darktime run): the report measures each phase, and
// gates can name a phase's metrics.
func ExampleBuild_scenario() {
	var results []*resultfile.Result
	for _, name := range []string{"run.part0.json", "run.part1.json"} {
		r, err := report.ReadResultFile(filepath.Join("testdata", name))
		if err != nil {
			fmt.Println(err)
			return
		}
		results = append(results, r)
	}
	start := results[0].Started // the first publish
	r, err := report.Build(report.Inputs{Results: results, Scenario: &report.Scenario{
		Name: "node-failure",
		Phases: []report.Phase{
			{Name: "warm-up", Start: start, Duration: 3 * time.Second, RatePerS: 3},
			{Name: "after-kill", Start: start.Add(3 * time.Second), Duration: 3 * time.Second, RatePerS: 3},
		},
		Faults: []report.Fault{{Kind: "kill_node", Detail: "node 1", At: start.Add(3 * time.Second), Offset: 3 * time.Second}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range r.Phases {
		fmt.Printf("%s: %d deliveries in %d s, p99 %.3f ms, %d lost\n", p.Name, p.Deliveries, p.Seconds, p.P99, p.Lost)
	}
	gates, err := report.ParseGates([]string{"phase.warm-up.lost == 0", "phase.after-kill.lost == 0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := r.Evaluate(gates)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, g := range res {
		fmt.Println(g)
	}
	// Output:
	// warm-up: 180 deliveries in 3 s, p99 4.959 ms, 0 lost
	// after-kill: 178 deliveries in 3 s, p99 80.063 ms, 3 lost
	// PASS phase.warm-up.lost == 0: measured 0
	// FAIL phase.after-kill.lost == 0: measured 3
	// PASS expected > 0 (default): measured 360
	// PASS publish_errors == 0 (default): measured 0
	// PASS unreadable == 0 (default): measured 0
	// FAIL unexplained == 0 (default): measured 4
}
