package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/pgtest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/report/history"
)

// goldenHistory is report/history's synthetic history: 30 runs of
// ci-smoke whose p99 steps up 10% at run 21.
const goldenHistory = "../../report/history/testdata/history.jsonl"

// records lists a history's records.
func records(t *testing.T, location string) []history.Record {
	t.Helper()
	st, err := history.Open(context.Background(), location, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.List(context.Background(), history.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestReportHistory(t *testing.T) {
	code, out := reportCmd(t, "history", goldenHistory)
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	tstest.Golden(t, "testdata/report-history.txt", []byte(out))

	dir := t.TempDir()
	jsonOut := filepath.Join(dir, "changes.json")
	bad := tstest.WriteFile(t, dir, "bad.jsonl", "{\"schema\":\"darktime.history/v1\"}\n{}\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{goldenHistory, "--fail-on-regression"}, 1, "REGRESSION ci-smoke p99_delivery_ms: 19.8597 -> 21.7556 (+9.5%) from run run-021"},
		{[]string{goldenHistory, "--fail-on-regression", "--recent", "5"}, 0, "REGRESSION at run 21/30"},
		{[]string{goldenHistory, "--fail-on-regression", "--metric", "p50_delivery_ms"}, 0, "p50_delivery_ms (lower is better): 30 run(s)"},
		{[]string{goldenHistory, "--scenario", "other"}, 0, "the history has no run that matches"},
		{[]string{goldenHistory, "--json", jsonOut, "--last", "15"}, 0, "== ci-smoke: 15 run(s) from 2026-01-16"},
		{[]string{goldenHistory, "--metric", "p99"}, 2, `unknown metric "p99"`},
		{[]string{goldenHistory, "--p-value", "0.0001"}, 2, "499 permutations cannot give a p-value of 0.0001"},
		{[]string{goldenHistory, "--last", "0"}, 2, "--last 0"},
		{[]string{filepath.Join(dir, "none")}, 2, "no history at"},
		{[]string{bad}, 2, "bad.jsonl:1: bad history: malformed record: no run_id"},
		{[]string{"mysql://db/perf"}, 2, "a history is a folder or a postgres:// URL"},
		{[]string{"postgres://u@127.0.0.1:1/x?connect_timeout=2&sslmode=disable"}, 2, "connect to PostgreSQL at 127.0.0.1:1"},
		{[]string{}, 2, "give one history"},
	} {
		code, out := reportCmd(t, append([]string{"history"}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("report history %v: exit %d, want %d; output:\n%s\nwant it to hold %q", c.args, code, c.code, out, c.want)
		}
	}
	var a history.Analysis
	if b, err := os.ReadFile(jsonOut); err != nil || json.Unmarshal(b, &a) != nil || a.Schema != history.AnalysisSchema {
		t.Errorf("--json wrote %v, %+v", err, a)
	}
	code, out = reportCmd(t, "history", goldenHistory, "--json", "-")
	if code != 0 || json.Unmarshal([]byte(out), &a) != nil || len(a.Regressions) != 1 {
		t.Errorf("--json -: exit %d, %s", code, out)
	}
}

// TestReportAppendsToHistory: darktime report --history appends each run
// once, with its verdict; report compare --history takes its base there.
func TestReportAppendsToHistory(t *testing.T) {
	testAppendAndCompare(t, filepath.Join(t.TempDir(), "history"))
}

// TestReportHistoryPostgres is the same on a private PostgreSQL server.
func TestReportHistoryPostgres(t *testing.T) {
	testAppendAndCompare(t, pgtest.Start(t).URL)
}

func testAppendAndCompare(t *testing.T, loc string) {
	const td = "../../report/testdata/"
	for _, f := range []string{"base-1.json", "base-2.json", "base-3.json"} {
		if code, out := reportCmd(t, td+f, "-q", "--history", loc, "--scenario", "cmp", "--commit", "c-"+f); code != 0 || !strings.Contains(out, "appended to") {
			t.Fatalf("report %s --history: exit %d:\n%s", f, code, out)
		}
	}
	if code, out := reportCmd(t, td+"base-1.json", "-q", "--history", loc, "--scenario", "cmp"); code != 0 || !strings.Contains(out, "not appended again") {
		t.Errorf("the same run again: exit %d:\n%s", code, out)
	}
	// A failed gate is a run of the history too, with its verdict.
	if code, out := reportCmd(t, td+"clean.json", "-q", "--history", loc, "--scenario", "other", "--gate", "p99_delivery_ms < 0.001"); code != 1 {
		t.Errorf("a failed gate: exit %d, want 1:\n%s", code, out)
	}
	// A run without a scenario names no series: bad input.
	if code, out := reportCmd(t, td+"clean.json", "-q", "--history", loc); code != 2 || !strings.Contains(out, "--scenario") {
		t.Errorf("no scenario: exit %d, want 2:\n%s", code, out)
	}
	recs := records(t, loc)
	if len(recs) != 4 || recs[0].Commit != "c-base-1.json" || recs[0].Scenario != "cmp" || recs[3].Verdict != history.VerdictFail ||
		recs[0].Machine.Cores == 0 || recs[0].Metrics["p99_delivery_ms"] == 0 {
		t.Fatalf("records: %+v", recs)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		// The same comparison as base-1..3 -- cand-1..3 in TestReportExitCodes.
		{[]string{"--history", loc, "--scenario", "cmp", "--", td + "cand-1.json", td + "cand-2.json", td + "cand-3.json"}, 1, "base: the last 3 run(s) of cmp in the history"},
		{[]string{"--history", loc, "--scenario", "cmp", "--history-runs", "2", td + "cand-1.json"}, 1, "base: the last 2 run(s) of cmp"},
		// The candidate is in the history: it is left out of the base.
		{[]string{"--history", loc, "--scenario", "cmp", td + "base-3.json"}, 0, "base: the last 2 run(s) of cmp"},
		{[]string{"--history", loc, td + "cand-1.json"}, 2, "several series (cmp, other)"},
		{[]string{"--history", loc, "--scenario", "cmp", "--base", td + "base-1.json", td + "cand-1.json"}, 2, "give no --base files"},
		{[]string{"--history", loc, "--scenario", "cmp"}, 2, "give the candidate result files"},
		{[]string{"--history", loc, "--scenario", "nope", td + "cand-1.json"}, 2, "no run of scenario nope"},
	} {
		code, out := reportCmd(t, append([]string{"compare"}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("report compare %v: exit %d, want %d; output:\n%s\nwant it to hold %q", c.args, code, c.code, out, c.want)
		}
	}
	if code, out := reportCmd(t, "history", loc, "--scenario", "cmp"); code != 0 || !strings.Contains(out, "== cmp: 3 run(s)") {
		t.Errorf("report history: exit %d:\n%s", code, out)
	}
}

// TestRunAppendsToHistory: darktime run --history appends one record per
// run, named by the scenario and its target, with the commit given.
func TestRunAppendsToHistory(t *testing.T) {
	tstest.Long(t, "two whole darktime runs of a few seconds")
	hist := filepath.Join(t.TempDir(), "history")
	for i, commit := range []string{"aaa", "bbb"} {
		code, out := darktime(t, t.Context(), "run", "--quiet", "--out", filepath.Join(t.TempDir(), "out"), "--history", hist, "--commit", commit, "testdata/history-small.yaml")
		if code != 0 || !strings.Contains(out, "of history-small/primary (pass) appended to "+hist) {
			t.Fatalf("run %d: exit %d:\n%s", i, code, out)
		}
	}
	recs := records(t, hist)
	if len(recs) != 2 || recs[0].Scenario != "history-small" || recs[0].Target != "primary" || recs[1].Commit != "bbb" ||
		recs[0].Verdict != history.VerdictPass || recs[0].Metrics["deliveries"] == 0 || recs[0].RunID == recs[1].RunID {
		t.Fatalf("records: %+v", recs)
	}
	if code, out := runCmd(t, "--history", "mysql://x", "testdata/history-small.yaml"); code != 2 || !strings.Contains(out, "postgres:// URL") {
		t.Errorf("a bad history: exit %d, want 2 before running:\n%s", code, out)
	}
}
