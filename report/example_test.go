package report_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/swarm"
)

// A CI step: read the parts of a run, build the report, check gates.
func ExampleBuild() {
	var results []*swarm.Result
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
