package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/promtest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/swarm"
	"github.com/darktime/darktime/swarm/live"
)

func TestRemoteWriteFlags(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "r.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"swarm", "--out", out, "--remote-write", "ftp://x/write"}, "want an http or https URL"},
		{[]string{"swarm", "--out", out, "--remote-write", "http://127.0.0.1:9/api/v1/write", "--agents", "2", "--redis", "redis://127.0.0.1:9"}, "give it to each `darktime swarm agent`"},
		{[]string{"swarm", "--out", out, "--remote-write", "http://127.0.0.1:9/api/v1/write", "--remote-write-header", "no colon"}, "want \"Name: value\""},
		{[]string{"swarm", "--out", out, "--remote-write", "http://127.0.0.1:9/api/v1/write", "--remote-write-interval", "1ms"}, "at least 100ms"},
		{[]string{"swarm", "agent", "--redis", "redis://127.0.0.1:9", "--remote-write", "x"}, "want an http or https URL"},
		{[]string{"run", "--check", "--remote-write", "x", "../../scenarios/ci-smoke.yaml"}, "want an http or https URL"},
	} {
		if code, got := inProcess(t, c.args...); code != 2 || !strings.Contains(got, c.want) {
			t.Errorf("darktime %v: exit %d, want 2; output:\n%s\nwant it to hold %q", c.args, code, got, c.want)
		}
	}
}

// queryEquals checks that query's one sample is want.
func queryEquals(t *testing.T, prom *promtest.Server, query string, want int64) {
	t.Helper()
	got, err := prom.Scalar(context.Background(), query, time.Time{})
	if err != nil {
		t.Errorf("%v\nprometheus log:\n%s", err, prom.Log())
		return
	}
	if got != float64(want) {
		t.Errorf("%s = %v, want %d (the result file's)", query, got, want)
	}
}

// darktime swarm --remote-write: the progress line stays (and --quiet
// silences it); Prometheus ends with the result file's counts, summed
// over the parts of a run split over --procs.
func TestSwarmRemoteWrite(t *testing.T) {
	tstest.Long(t, "three swarm runs exported to a private Prometheus")
	t.Parallel()
	prom := promtest.Start(t)
	target := startTestServer(t, server.Config{})
	for _, c := range []struct {
		quiet bool
		procs int
	}{{false, 1}, {true, 1}, {false, 2}} {
		quiet := c.quiet
		out := filepath.Join(t.TempDir(), "r.json")
		runID := "cli-quiet-" + strconv.FormatBool(quiet) + "-procs-" + strconv.Itoa(c.procs)
		args := []string{"swarm", "--target", target, "--clients", "20", "--channels", "2", "--rate", "100",
			"--duration", "2s", "--settle", "200ms", "--drain", "500ms", "--run-id", runID, "--out", out,
			"--procs", strconv.Itoa(c.procs),
			"--remote-write", prom.WriteURL, "--remote-write-interval", "1s", "--remote-write-header", "X-Scope-OrgID: darktime"}
		if quiet {
			args = append(args, "--quiet")
		}
		code, got := darktime(t, t.Context(), args...)
		if code != 0 {
			t.Fatalf("darktime %v: exit %d\n%s", args, code, got)
		}
		if progress := strings.Contains(got, "pub ok/s"); progress == quiet {
			t.Errorf("--quiet %v: progress lines printed: %v\n%s", quiet, progress, got)
		}
		res := readSwarmResult(t, out)
		sel := `{run_id="` + runID + `"}`
		sum := func(m string) string { return "sum(" + m + sel + ")" }
		queryEquals(t, prom, "count("+live.MetricEvents+sel+")", int64(c.procs)) // one series per part
		queryEquals(t, prom, sum(live.MetricEvents), res.Events.Events)
		queryEquals(t, prom, sum(live.MetricPublishesOK), res.Publish.OK)
		queryEquals(t, prom, sum(live.MetricLost), res.Ledger.Totals().Lost)
		queryEquals(t, prom, sum(live.MetricCredit), res.Ledger.Totals().Credit)
		queryEquals(t, prom, "histogram_count("+sum(live.MetricDelivery)+")", res.Summary[swarm.HistDelivery].Count)
		if res.Events.Events == 0 {
			t.Errorf("the run received nothing")
		}
	}
}

// darktime run --remote-write labels the series with the scenario and
// the target; with clients.procs each worker exports its part.
func TestRunRemoteWrite(t *testing.T) {
	tstest.Long(t, "two whole darktime runs exported to a private Prometheus")
	t.Parallel()
	prom := promtest.Start(t)
	for _, c := range []struct {
		name  string
		procs int64
	}{{"live-small", 1}, {"live-small-procs", 2}} {
		dir := t.TempDir()
		code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "--remote-write", prom.WriteURL, "--remote-write-interval", "1s", "testdata/"+c.name+".yaml")
		if code != 0 {
			t.Fatalf("%s: exit %d, want 0:\n%s", c.name, code, out)
		}
		if strings.Contains(out, "pub ok/s") || strings.Contains(out, "remote write") {
			t.Errorf("%s: --quiet printed progress lines or a note on remote write:\n%s", c.name, out)
		}
		res := readSwarmResult(t, filepath.Join(dir, "swarm.json"))
		sel := `{scenario="` + c.name + `",target="primary",run_id="` + res.RunID + `"}`
		sum := func(m string) string { return "sum(" + m + sel + ")" }
		queryEquals(t, prom, "count("+live.MetricEvents+sel+")", c.procs)
		queryEquals(t, prom, sum(live.MetricEvents), res.Events.Events)
		queryEquals(t, prom, sum(live.MetricCredit), res.Ledger.Totals().Credit)
		queryEquals(t, prom, "histogram_count("+sum(live.MetricDelivery)+")", res.Summary[swarm.HistDelivery].Count)
		for _, phase := range []string{"warm", "spike"} {
			q := `count(count_over_time(` + live.MetricPhase + `{scenario="` + c.name + `",phase="` + phase + `"}[10m]))`
			if n, err := prom.Scalar(context.Background(), q, time.Time{}); err != nil || n != float64(c.procs) {
				t.Errorf("%s = %v, %v: want the phase exported by every part", q, n, err)
			}
		}
	}
}
