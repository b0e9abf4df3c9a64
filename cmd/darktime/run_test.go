package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/report"
)

// inProcess runs `darktime ARGS...` in-process and returns the exit status
// main would give and what was printed.
func inProcess(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0, out.String()
	}
	return exitStatus(err), out.String() + err.Error()
}

// runCmd runs `darktime run --skip-binary-check ARGS...`.
func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return inProcess(t, append([]string{"run", "--skip-binary-check"}, args...)...)
}

func TestRunCheckExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--check", "../../scenarios/ci-smoke.yaml", "../../scenarios/vs-nchan.yaml"}, 0, "ok ../../scenarios/vs-nchan.yaml"},
		{[]string{"--check", "../../scenario/testdata/node-missing.yaml"}, 2, "node-missing.yaml:9:26: faults[0].kill_node: node 3 does not exist"},
		{[]string{"--check"}, 2, "give at least one scenario FILE"},
		{[]string{"--shadow", "101", "../../scenarios/ci-smoke.yaml"}, 2, "--shadow 101: want a share between 0 and 100"},
		{[]string{"--embedded", "../../scenarios/redis-restart.yaml"}, 2, "needs a Redis broker darktime starts: set target.broker: redis (with --embedded)"},
		{[]string{"--check", "--embedded", "--shadow", "10", "--clients", "5000", "--time-scale", "0.25", "../../scenarios/steady-state.yaml"}, 0, "ok ../../scenarios/steady-state.yaml: steady-state: 5000 clients"},
	} {
		code, out := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("darktime run %v: exit %d, want %d; output:\n%s\nwant it to hold %q", c.args, code, c.code, out, c.want)
		}
	}
}

// readReport reads a darktime.report/v1 file.
func readReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the run wrote no report: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

// TestRunNodeFailure runs a fault scenario end to end in child processes:
// three Redis-backed nodes, slow consumers, node 0's pub/sub connection
// closed on the Redis side (kill_redis_link), one node killed with SIGKILL,
// Redis restarted and a reconnect storm; every client resumes on a node
// left with nothing lost, and the swarm's ledger reconciles.
func TestRunNodeFailure(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	requireRedis(t)
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/node-failure-small.yaml")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	for _, want := range []string{"PASS: 7 gate(s) passed, 0 failed", "HTML report:", "a node was killed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	m := r.Metrics
	if m["lost"] != 0 || m["duplicated"] != 0 || m["clients_failed"] != 0 || m["unbalanced_ledgers"] != 0 {
		t.Errorf("lost %v, duplicated %v, clients_failed %v, unbalanced ledgers %v: want 0", m["lost"], m["duplicated"], m["clients_failed"], m["unbalanced_ledgers"])
	}
	// Publishes to the killed node that got no answer may still be
	// delivered: extra deliveries, explained by their failed publish.
	var extra float64
	for _, e := range r.Ledgers[0].Explained {
		if strings.HasPrefix(e.Cause, "publish_") {
			extra += float64(e.Count)
		}
	}
	if m["deliveries"] == 0 || m["expected"]+extra != m["deliveries"] {
		t.Errorf("deliveries %v, expected %v + %v extra explained by unanswered publishes: want equal and positive", m["deliveries"], m["expected"], extra)
	}
	if r.Scenario == nil || len(r.Scenario.Faults) != 5 {
		t.Fatalf("faults in the report: %+v", r.Scenario)
	}
	for i, kind := range []string{"slow_consumers", "kill_redis_link", "kill_node", "restart_redis", "storm"} {
		if f := r.Scenario.Faults[i]; f.Kind != kind || f.Error != "" {
			t.Errorf("fault %d: %+v, want %s injected", i, f, kind)
		}
	}
	// On one Redis too: node 0 counted the closed connection and was
	// healthy again, subscribed anew.
	if f := r.Scenario.Faults[1]; f.Recovery == nil || !f.Recovery.Done || !strings.Contains(f.Detail, "broker_errors +") {
		t.Errorf("kill_redis_link: %+v (recovery %+v), want it recovered, with node 0's broker_errors", f, f.Recovery)
	}
	if len(r.Phases) != 2 || r.Phases[1].Name != "steady" {
		t.Errorf("phases in the report: %+v", r.Phases)
	}
	for _, f := range []string{"report.html", "junit.xml", "swarm.json", "scenario.yaml", "logs/primary-1.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
}

// TestRunProcs runs a scenario whose swarm is split over clients.procs
// worker processes: each gets the run as a swarm.RunSpec on its stdin
// (swarm.WorkerArgs), and their results merge into one balanced ledger.
func TestRunProcs(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/procs-small.yaml")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if !strings.Contains(out, "PASS: 7 gate(s) passed, 0 failed") {
		t.Errorf("summary:\n%s", out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if m := r.Metrics; m["deliveries"] == 0 || m["lost"] != 0 || m["expected"] != m["deliveries"] {
		t.Errorf("deliveries %v, expected %v, lost %v", m["deliveries"], m["expected"], m["lost"])
	}
	res := readSwarmResult(t, filepath.Join(dir, "swarm.json"))
	if len(res.Parts) != 2 || res.Missing() != nil {
		t.Errorf("parts %+v: want 2 of 2", res.Parts)
	}
	for _, log := range []string{"logs/swarm-0.log", "logs/swarm-1.log"} {
		if _, err := os.Stat(filepath.Join(dir, log)); err != nil {
			t.Errorf("no worker log: %v", err)
		}
	}
}

// TestRunShadowFaults runs the shadow proxy with an embedded candidate in
// front of a Redis-backed node that is paused, with a hot-channel spike;
// the shadow ledger and the server's /stats reconcile.
func TestRunShadowFaults(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	requireRedis(t)
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/shadow-small.yaml")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	sources := map[string]bool{}
	for _, l := range r.Ledgers {
		sources[l.Source] = true
		if !l.Balanced && l.Source != "server_fanout" {
			t.Errorf("ledger %s does not balance: %+v", l.Name, l)
		}
	}
	for _, want := range []string{"shadow_candidate", "server_written", "swarm"} {
		if !sources[want] {
			t.Errorf("no %s ledger in the report (have %v)", want, sources)
		}
	}
	if m := r.Metrics; m["shadow_lost"] != 0 || m["lost"] != 0 {
		t.Errorf("shadow_lost %v, lost %v", m["shadow_lost"], m["lost"])
	}
	if f := r.Scenario.Faults; len(f) != 1 || f[0].Kind != "pause_node" || f[0].Error != "" {
		t.Errorf("faults: %+v", f)
	}
}

// TestRunInterrupted stops a run with SIGINT: it still writes what it
// measured, marked interrupted, and exits 3.
func TestRunInterrupted(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "run", "--quiet", "--embedded", "--clients", "50", "--out", dir, "../../scenarios/steady-state.yaml")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once publishing is under way.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "logs", "primary-0.log")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run did not start a node within 30s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	_ = cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("output does not say it was interrupted:\n%s", out.String())
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if !r.Interrupted {
		t.Error("the report is not marked interrupted")
	}
}

// requireRedis fails the test when redis-server is missing (make test
// installs it); DARKTIME_SKIP_REDIS skips it instead.
func requireRedis(t *testing.T) {
	t.Helper()
	if os.Getenv("DARKTIME_SKIP_REDIS") != "" {
		t.Skip("DARKTIME_SKIP_REDIS is set")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: install it (apt-get install -y redis-server, or make deps)")
	}
}

// TestRunShadowDefect: shadow.defect puts internal/defect in front of
// the embedded candidate; the ledger sees its drops.
func TestRunShadowDefect(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/shadow-defect.yaml")
	if code != 0 {
		ledger, _ := os.ReadFile(filepath.Join(dir, "shadow-0-ledger.json"))
		t.Fatalf("exit %d, want 0:\n%s\nledger: %.1500s", code, out, ledger)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if m := r.Metrics; m["shadow_lost"] == 0 || m["lost"] != 0 {
		t.Errorf("shadow_lost %v (want the defect's drops), lost %v (want 0)", m["shadow_lost"], m["lost"])
	}
}

// TestRunCanary: shadow.canary runs the plan on the run's proxies from
// the first publish; its outcome is a gate and canary.json is written.
func TestRunCanary(t *testing.T) {
	tstest.Long(t, "a whole darktime run of 20 s")
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/canary-small.yaml")
	var doc struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "canary.json"))
	if err != nil || json.Unmarshal(data, &doc) != nil {
		t.Fatalf("no canary.json (%v); exit %d:\n%s", err, code, out)
	}
	if code != 0 || doc.Outcome != "rolled_back" || !strings.Contains(doc.Reason, "delay") {
		t.Fatalf("exit %d, canary %s: %s\n%s", code, doc.Outcome, doc.Reason, out)
	}
}

// TestRunClusterFailover runs scenarios/cluster-failover.yaml shortened
// (testdata/cluster-failover-small.yaml) against a private Redis Cluster
// of 3 masters and 3 replicas under two nodes: a master is killed, its
// replica takes over; node 1's pub/sub connections are closed on the
// Redis side. The ledgers balance with nothing lost unannounced, both
// faults are recorded with their recovery, and node 1 says it lost its
// links and made them again.
func TestRunClusterFailover(t *testing.T) {
	tstest.Long(t, "a whole darktime run over a Redis Cluster with a failover")
	requireRedis(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found (it comes with redis-server): a Redis Cluster needs it to be created")
	}
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/cluster-failover-small.yaml")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	m := r.Metrics
	if m["unexplained"] != 0 || m["unannounced_lost"] != 0 || m["duplicated"] != 0 || m["unbalanced_ledgers"] != 0 || m["deliveries"] == 0 {
		t.Errorf("unexplained %v, unannounced_lost %v, duplicated %v, unbalanced ledgers %v, deliveries %v", m["unexplained"], m["unannounced_lost"], m["duplicated"], m["unbalanced_ledgers"], m["deliveries"])
	}
	for _, l := range r.Ledgers {
		if !l.Balanced && l.Source != "publish" {
			t.Errorf("ledger %s: %+v", l.Name, l)
		}
	}
	if r.Scenario == nil || len(r.Scenario.Faults) != 2 {
		t.Fatalf("faults in the report: %+v", r.Scenario)
	}
	for i, want := range []struct{ kind, detail string }{
		{"kill_redis_master", "took over"},
		// Node 1's own account: each link made again after the kill,
		// saying why the one before went down.
		{"kill_redis_link", "(the one before: "},
	} {
		f := r.Scenario.Faults[i]
		if f.Kind != want.kind || f.Error != "" || f.Recovery == nil || !f.Recovery.Done || !strings.Contains(f.Detail, want.detail) {
			t.Errorf("fault %d: %+v (recovery %+v), want %s injected and recovered, its detail saying %q", i, f, f.Recovery, want.kind, want.detail)
		}
		t.Logf("%s at +%v, recovered after %v: %s", f.Kind, f.Offset, f.Recovery.After, f.Detail)
	}
	if f := r.Scenario.Faults[0]; !strings.Contains(f.Detail, "node 0: /healthz not 200") || !strings.Contains(f.Detail, "node 1: /healthz not 200") {
		t.Errorf("kill_redis_master: both nodes should have answered 503 while the shard had no live link: %s", f.Detail)
	}
	if _, err := os.Stat(filepath.Join(dir, "redis-cluster.json")); err != nil {
		t.Errorf("the cluster's layout was not recorded: %v", err)
	}
}

// Hooks through a Redis Cluster: the queue's partitions spread over the
// masters, each node's workers claim from all of them, and every hook
// answered 202 is delivered once.
func TestRunClusterHooks(t *testing.T) {
	tstest.Long(t, "a whole darktime run of model hooks over a Redis Cluster")
	requireRedis(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found (it comes with redis-server): a Redis Cluster needs it to be created")
	}
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/cluster-hooks-small.yaml")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	m := r.Metrics
	if m["deliveries"] == 0 || m["lost"] != 0 || m["unexplained"] != 0 || m["duplicated"] != 0 || m["unbalanced_ledgers"] != 0 {
		t.Errorf("deliveries %v, lost %v, unexplained %v, duplicated %v, unbalanced ledgers %v", m["deliveries"], m["lost"], m["unexplained"], m["duplicated"], m["unbalanced_ledgers"])
	}
	for _, l := range r.Ledgers {
		if !l.Balanced {
			t.Errorf("ledger %s: %+v", l.Name, l)
		}
	}
}
