package history

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/darktime/darktime/report"
)

// DefaultBaseRuns is how many runs of the history `report compare
// --history` takes as its base.
const DefaultBaseRuns = 10

// BaseSelect chooses the base of a comparison in a history.
type BaseSelect struct {
	// Scenario and Target name the series; either may be left empty when
	// the history (or the scenario) has only one.
	Scenario, Target string
	// Runs is how many of its last runs make the base (default
	// DefaultBaseRuns). Interrupted runs are left out.
	Runs int
	// Exclude are run ids never in the base: the candidates'.
	Exclude []string
}

// scanLimit bounds the records read to find the base.
const scanLimit = 10 * DefaultWindow

// Base returns the base runs of a comparison as reports for
// report.Compare (their Metrics from the records; no latency, series or
// ledgers) and the series' name. Errors wrap ErrInput.
func Base(ctx context.Context, st Store, sel BaseSelect) ([]*report.Report, string, error) {
	if sel.Runs <= 0 {
		sel.Runs = DefaultBaseRuns
	}
	records, err := st.List(ctx, Filter{Scenario: sel.Scenario, Target: sel.Target, Limit: scanLimit})
	if err != nil {
		return nil, "", err
	}
	groups := bySeries(records)
	switch {
	case len(groups) == 0:
		return nil, "", fmt.Errorf("%w: no run of %s in the history", ErrInput, describe(sel))
	case len(groups) > 1:
		var names []string
		for _, g := range groups {
			names = append(names, g[0].Series())
		}
		return nil, "", fmt.Errorf("%w: the history has several series (%s): name one with --scenario and --target",
			ErrInput, strings.Join(names, ", "))
	}
	var base []*report.Report
	for _, r := range slices.Backward(groups[0]) {
		if len(base) == sel.Runs {
			break
		}
		if r.Verdict == VerdictInterrupted || slices.Contains(sel.Exclude, r.RunID) {
			continue
		}
		base = append(base, &report.Report{Schema: report.Schema, RunID: r.RunID, Started: r.Time,
			DurationSeconds: r.DurationSeconds, Metrics: r.Metrics})
	}
	series := groups[0][0].Series()
	if len(base) == 0 {
		return nil, "", fmt.Errorf("%w: %s has no run to compare with but the candidates (or interrupted ones)", ErrInput, series)
	}
	slices.Reverse(base)
	return base, series, nil
}

func describe(sel BaseSelect) string {
	switch {
	case sel.Scenario == "" && sel.Target == "":
		return "any scenario"
	case sel.Target == "":
		return "scenario " + sel.Scenario
	case sel.Scenario == "":
		return "target " + sel.Target
	}
	return "scenario " + sel.Scenario + ", target " + sel.Target
}
