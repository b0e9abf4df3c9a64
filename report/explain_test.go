package report

import (
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/swarm/resultfile"
)

// attributed is a one-channel result of 1,000 owed deliveries with the
// given differences and their attribution.
func attributed(lost, extra map[string]int64, dup int64, mod func(*resultfile.Result)) *resultfile.Result {
	l := ledger.New(0)
	var nLost, nExtra int64
	for _, v := range lost {
		nLost += v
	}
	for _, v := range extra {
		nExtra += v
	}
	const owed = 1000
	l.Apply("ch0", time.Time{}, ledger.Counts{Credit: owed, Debit: owed - nLost + nExtra + dup, Lost: nLost, Extra: nExtra, Duplicated: dup})
	res := &resultfile.Result{
		Schema: resultfile.Schema, RunID: "r", Ledger: l, Errors: map[string]int64{},
		Publish:     resultfile.PublishInfo{Attempted: 50, OK: 50},
		Attribution: resultfile.Attribution{Lost: lost, Extra: extra},
	}
	if mod != nil {
		mod(res)
	}
	return res
}

func TestSwarmLedgerCauses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		res         *resultfile.Result
		verdict     string
		unexplained int64
		explained   string // a cause that must be listed as explained
	}{
		{"clean", attributed(nil, nil, 0, nil), VerdictBalanced, 0, ""},
		{"silent gap", attributed(map[string]int64{"silent_gap": 3}, nil, 0, nil), VerdictNotBalanced, 3, ""},
		{"announced", attributed(map[string]int64{"announced": 7}, nil, 0, func(r *resultfile.Result) { r.Events.Notices = 2 }), VerdictExplained, 0, "announced"},
		{"announced and silent", attributed(map[string]int64{"announced": 7, "silent_gap": 1}, nil, 0, nil), VerdictNotBalanced, 1, "announced"},
		{"target does not resume", attributed(map[string]int64{"not_resumed": 40}, nil, 0, func(r *resultfile.Result) {
			r.Attribution.Resumes = resultfile.ResumeCounts{WithID: 20, Gapped: 20}
		}), VerdictExplained, 0, "not_resumed"},
		{"gap after a resume on a target that resumes", attributed(map[string]int64{"not_resumed": 1}, nil, 0, func(r *resultfile.Result) {
			r.Attribution.Resumes = resultfile.ResumeCounts{WithID: 20, Replayed: 19, Gapped: 1}
		}), VerdictNotBalanced, 1, ""},
		{"no ids", attributed(map[string]int64{"no_id": 5}, nil, 0, nil), VerdictExplained, 0, "no_id"},
		{"tail", attributed(map[string]int64{"tail": 2}, nil, 0, nil), VerdictNotBalanced, 2, ""},
		{"cut by the server", attributed(map[string]int64{"cut_by_server": 9}, nil, 0, nil), VerdictExplained, 0, "cut_by_server"},
		{"unreadable covers silent gaps", attributed(map[string]int64{"silent_gap": 4}, nil, 0, func(r *resultfile.Result) { r.Events.OtherType = 4 }),
			VerdictExplained, 0, "unreadable"},
		{"unreadable covers part", attributed(map[string]int64{"silent_gap": 4}, nil, 0, func(r *resultfile.Result) { r.Events.Malformed = 1 }),
			VerdictNotBalanced, 3, "unreadable"},
		{"delivered after a timeout", attributed(nil, map[string]int64{"publish_outcome_unknown": 14}, 0, nil), VerdictExplained, 0, "publish_outcome_unknown"},
		{"delivered after a 503", attributed(nil, map[string]int64{"publish_refused": 14}, 0, nil), VerdictNotBalanced, 14, ""},
		{"duplicates", attributed(nil, nil, 2, nil), VerdictNotBalanced, 2, ""},
		{"bookkeeping", attributed(nil, nil, 0, func(r *resultfile.Result) { r.Attribution.Residual = -3 }), VerdictNotBalanced, 3, ""},
		{"nothing owed", func() *resultfile.Result {
			r := attributed(nil, nil, 0, nil)
			r.Ledger = ledger.New(0)
			return r
		}(), VerdictNothingOwed, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := swarmLedger(tc.res)
			if l.Verdict != tc.verdict || l.Unexplained != tc.unexplained {
				t.Errorf("verdict %q unexplained %d (%s), want %q and %d", l.Verdict, l.Unexplained, l.Summary(), tc.verdict, tc.unexplained)
			}
			if l.Balanced != (tc.unexplained == 0 && tc.verdict != VerdictNothingOwed) {
				t.Errorf("balanced %v with verdict %s", l.Balanced, l.Verdict)
			}
			if tc.explained != "" {
				found := false
				for _, e := range l.Explained {
					found = found || e.Cause == tc.explained && e.Evidence != ""
				}
				if !found {
					t.Errorf("explained %+v: want cause %s with its evidence", l.Explained, tc.explained)
				}
			}
			for _, e := range append(l.Explained, l.UnexplainedBy...) {
				if e.Count <= 0 || e.Evidence == "" {
					t.Errorf("explanation %+v: want a count and evidence", e)
				}
			}
		})
	}
}

// TestDefaultGates: a run that owed nothing, or whose publishes failed,
// never passes, with or without gates; a gate on the same metric replaces
// the default.
func TestDefaultGates(t *testing.T) {
	t.Parallel()
	failed := attributed(nil, nil, 0, func(r *resultfile.Result) {
		r.Ledger = ledger.New(0)
		r.Publish = resultfile.PublishInfo{Attempted: 200, Failed: 200, Errors: map[string]int64{"status 401": 200}}
	})
	rep, err := Build(Inputs{Results: []*resultfile.Result{failed}})
	if err != nil {
		t.Fatal(err)
	}
	results, err := rep.Evaluate(nil)
	if err != nil {
		t.Fatal(err)
	}
	var failedGates []string
	for _, g := range results {
		if !g.Pass {
			failedGates = append(failedGates, g.Expr)
		}
		if !g.Default {
			t.Errorf("gate %s not marked default", g.Expr)
		}
	}
	if got := strings.Join(failedGates, "; "); got != "expected > 0; publish_errors == 0" {
		t.Errorf("failed default gates %q, want expected > 0 and publish_errors == 0", got)
	}
	gates, _ := ParseGates([]string{"publish_errors < 1000"})
	results, err = rep.Evaluate(gates)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range results {
		if g.Metric == "publish_errors" && (g.Default || !g.Pass) {
			t.Errorf("the user's publish_errors gate should replace the default: %+v", g)
		}
	}
	if len(results) != len(DefaultGates) {
		t.Errorf("%d gates, want the user's one and %d defaults", len(results), len(DefaultGates)-1)
	}
}
