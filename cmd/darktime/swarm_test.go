package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/swarm"
)

// asMainEnv makes the test binary run main() with its arguments, so that
// tests see the real exit codes; --procs re-executes this binary with the
// same environment, so its workers run main() too.
const asMainEnv = asMainEnvName

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) != "" {
		main()
		os.Exit(0)
	}
	// Under GitHub Actions the runs of the tests would append their
	// summaries to the job's; the tests that want one set their own.
	os.Unsetenv("GITHUB_STEP_SUMMARY")
	os.Exit(m.Run())
}

// darktime runs the command in a child process and returns its exit code
// and output.
func darktime(t *testing.T, ctx context.Context, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("darktime %v: %v", args, err)
	return -1, ""
}

func startTestServer(t *testing.T, cfg server.Config) string {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func readSwarmResult(t *testing.T, path string) *swarm.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := swarm.ReadResult(f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSwarmExitCodes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	out := filepath.Join(t.TempDir(), "r.json")
	quick := "--clients 2 --channels 2 --duration 200ms --settle 10ms --drain 10ms --quiet --out " + out
	tests := []struct {
		name, args string
		code       int
		says       string
	}{
		{"unknown flag", "swarm --clientz 3 --out " + out, 2, "unknown flag"},
		{"bad number", "swarm --clients many --out " + out, 2, "invalid argument"},
		{"no --out", "swarm", 2, "--out FILE is required"},
		{"bad placeholder", "swarm --subscribe {target}/sub/{chanel} " + quick, 2, "unknown placeholder {chanel}"},
		{"one extract marker for seq and ts", `swarm --extract-seq "ts": ` + quick, 2, "same marker"},
		{"bad distribution", "swarm --distribution pareto " + quick, 2, "distribution"},
		{"unknown profile", "swarm --profile apache " + quick, 2, "unknown --profile"},
		{"agents without redis", "swarm --agents 2 " + quick, 2, "needs --redis"},
		{"too many procs for the channels", "swarm --procs 3 --target " + closed + " " + quick, 2, "parts need at least as many channels"},
		{"unreachable target", "swarm --target " + closed + " " + quick, 1, "no client could subscribe"},
		{"agent without redis", "swarm agent", 2, "--redis URL is required"},
		{"batch with {channel} in the URL", "swarm --publish-batch 5 " + quick, 2, "may only be in the body"},
		{"max rate without events", "swarm --max-rate --publishers 2 " + quick, 2, "needs events (--events)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, output := darktime(t, context.Background(), strings.Fields(tt.args)...)
			if code != tt.code || !strings.Contains(output, tt.says) {
				t.Errorf("darktime %s: exit %d, output %q; want exit %d saying %q", tt.args, code, output, tt.code, tt.says)
			}
		})
	}
}

// TestSwarmBatchFlags publishes 40 events in batches of 4 to the JSON
// form of /pub, as fast as the server answers two requests at a time.
func TestSwarmBatchFlags(t *testing.T) {
	t.Parallel()
	target := startTestServer(t, server.Config{})
	out := filepath.Join(t.TempDir(), "r.json")
	code, output := darktime(t, context.Background(), "swarm", "--target", target, "--clients", "4", "--channels", "2", "--distribution", "round-robin",
		"--publish-url", "{target}/pub", "--publish-header", "Content-Type: application/json",
		"--publish-body", `{"channel":"{channel}","data":{"ch":"{channel}","seq":{seq},"ts":{ts}}}`,
		"--publish-batch", "4", "--publish-batch-body", `{"events":[{events}]}`,
		"--max-rate", "--publishers", "2", "--events", "40",
		"--settle", "10ms", "--drain", "300ms", "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, output)
	}
	res := readSwarmResult(t, out)
	if p := res.Publish; p.Attempted != 10 || p.OK != 10 || p.EventsOK != 40 || !res.Config.MaxRate || res.Config.Events != 40 {
		t.Errorf("publish %+v, config %+v: want 10 requests of 4 events", p, res.Config)
	}
	if tot := res.Ledger.Totals(); tot.Credit != 80 || tot.Lost != 0 {
		t.Errorf("ledger %+v: want 40 events × 2 clients each, nothing lost", tot)
	}
}

func TestSwarmProcs(t *testing.T) {
	t.Parallel()
	target := startTestServer(t, server.Config{})
	out := filepath.Join(t.TempDir(), "procs.json")
	code, output := darktime(t, context.Background(), "swarm", "--target", target, "--procs", "2", "--clients", "40", "--channels", "4",
		"--rate", "40", "--duration", "1s", "--settle", "200ms", "--drain", "500ms", "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, output)
	}
	if strings.Contains(output, "level=INFO") {
		t.Errorf("--quiet logged INFO lines:\n%s", output)
	}
	res := readSwarmResult(t, out)
	tot := res.Ledger.Totals()
	if len(res.Parts) != 2 || tot.Credit == 0 || tot.Balance() != 0 || tot.Lost != 0 {
		t.Errorf("parts %+v, ledger %+v: want 2 parts, balanced", res.Parts, tot)
	}
}

func TestSwarmAgents(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	t.Parallel()
	rs := redistest.Start(t)
	target := startTestServer(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	agents := make(chan int, 2)
	for _, name := range []string{"a1", "a2"} {
		go func() {
			code, output := darktime(t, ctx, "swarm", "agent", "--redis", rs.URL, "--name", name, "--runs", "1", "--quiet")
			if code != 0 {
				t.Errorf("agent %s: exit %d: %s", name, code, output)
			}
			agents <- code
		}()
	}
	out := filepath.Join(t.TempDir(), "agents.json")
	code, output := darktime(t, ctx, "swarm", "--agents", "2", "--redis", rs.URL, "--join-timeout", "20s", "--target", target,
		"--clients", "40", "--channels", "4", "--rate", "40", "--duration", "1s", "--settle", "200ms", "--drain", "500ms", "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("coordinator: exit %d: %s", code, output)
	}
	<-agents
	<-agents
	res := readSwarmResult(t, out)
	tot := res.Ledger.Totals()
	if len(res.Parts) != 2 || tot.Credit == 0 || tot.Balance() != 0 || tot.Lost != 0 {
		t.Errorf("parts %+v, ledger %+v: want 2 parts, balanced", res.Parts, tot)
	}
}

// TestSwarmWorkerRefusesSpecs: the hidden worker entry reads nothing but
// a run spec, and refuses one it cannot run with exit 2.
func TestSwarmWorkerRefusesSpecs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ args, says string }{
		{"swarm worker", "not a run spec"}, // stdin is empty
		{"swarm worker --spec " + spec("v2.json", `{"version":2}`), "version 2, and this darktime reads version 1 only"},
		{"swarm worker --spec " + spec("no-out.json", `{"version":1,"config":{},"part":{"index":0,"count":1}}`), `needs "out"`},
		{"swarm worker --spec " + spec("bad.json", `{"version":1,"config":{"Channels":1},"part":{"index":1,"count":2},"out":"`+dir+`/r.json"}`), "parts need at least as many channels"},
	} {
		code, output := darktime(t, context.Background(), strings.Fields(c.args)...)
		if code != 2 || !strings.Contains(output, c.says) {
			t.Errorf("darktime %s: exit %d, output %q; want exit 2 saying %q", c.args, code, output, c.says)
		}
	}
}
