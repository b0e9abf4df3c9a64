package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/server/auth"
)

const testJWTSecret = "cmd test secret of at least 32 bytes"

// The environment variable is set for the child processes, so these tests
// are not parallel.

func TestTokenCommand(t *testing.T) {
	t.Setenv("DARKTIME_TEST_JWT_SECRET", testJWTSecret)
	code, out := darktime(t, context.Background(), "token", "--secret-env", "DARKTIME_TEST_JWT_SECRET", "--sub", "42", "--channels", "user:42,thread:*", "--ttl", "1h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: []byte(testJWTSecret)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("minted token: %v (%q)", err, out)
	}
	if c.Subject != "42" || len(c.Channels) != 2 || time.Until(c.ExpiresAt.Time) < 59*time.Minute {
		t.Errorf("claims %+v", c)
	}
	for _, args := range [][]string{
		{"token", "--secret-env", "DARKTIME_TEST_JWT_SECRET"},                                 // no --sub
		{"token", "--secret-env", "DARKTIME_TEST_UNSET", "--sub", "1"},                        // unset variable
		{"token", "--secret-env", "DARKTIME_TEST_JWT_SECRET", "--sub", "1", "--alg", "RS256"}, // wrong family
		{"token", "--secret-env", "DARKTIME_TEST_JWT_SECRET", "--sub", "1", "--channels", "a b"},
	} {
		if code, out := darktime(t, context.Background(), args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, out)
		}
	}
}

func TestServerAuthConfigErrors(t *testing.T) {
	t.Setenv("DARKTIME_JWT_SECRET", testJWTSecret)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("channels:\n  - match: \"user:*\"\n    acces: private\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := darktime(t, context.Background(), "server", "--listen", "127.0.0.1:0", "--auth", bad)
	if code != 2 || !strings.Contains(out, bad+":3:") {
		t.Errorf("exit %d, want 2 with %s:3: %s", code, bad, out)
	}
	code, out = darktime(t, context.Background(), "server", "--listen", "127.0.0.1:0", "--auth", filepath.Join(dir, "missing.yaml"))
	if code != 2 {
		t.Errorf("missing file: exit %d, want 2: %s", code, out)
	}
}

// darktime swarm --token-secret-env against a server with private
// channels, tokens short enough to expire during the run.
func TestSwarmTokenFlags(t *testing.T) {
	t.Setenv("DARKTIME_TEST_JWT_SECRET", testJWTSecret)
	a, err := auth.Load([]byte("channels:\n  - match: \"cli*\"\n    access: private\njwt:\n  secret_env: DARKTIME_TEST_JWT_SECRET\n"), auth.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := startTestServer(t, server.Config{Authorizer: a, RetryHint: 100 * time.Millisecond})
	out := filepath.Join(t.TempDir(), "r.json")
	code, output := darktime(t, context.Background(), "swarm", "--target", target, "--clients", "6", "--channels", "2", "--channel-prefix", "cli",
		"--rate", "20", "--duration", "2500ms", "--settle", "100ms", "--drain", "500ms", "--quiet", "--out", out,
		"--token-secret-env", "DARKTIME_TEST_JWT_SECRET", "--token-ttl", "1s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, output)
	}
	res := readSwarmResult(t, out)
	tot := res.Ledger.Totals()
	if tot.Credit == 0 || tot.Credit != tot.Debit || res.Clients.Renewals == 0 || len(res.Errors) != 0 {
		t.Errorf("ledger %+v, renewals %d, errors %v", tot, res.Clients.Renewals, res.Errors)
	}
	if !strings.Contains(output, "auth      renewals") {
		t.Errorf("the summary has no auth line:\n%s", output)
	}
	if strings.Contains(output, testJWTSecret) {
		t.Error("the secret shows in the output")
	}
	raw, _ := os.ReadFile(out)
	if strings.Contains(string(raw), testJWTSecret) || !strings.Contains(string(raw), `"key": "env:DARKTIME_TEST_JWT_SECRET"`) {
		t.Errorf("result token echo: secret leaked or key source missing")
	}
}

// A scenario with an embedded target whose channels are all private and
// clients whose tokens expire during the run.
func TestRunPrivateScenario(t *testing.T) {
	tstest.Long(t, "a whole darktime run of several seconds")
	t.Setenv("DARKTIME_TEST_JWT_SECRET", testJWTSecret)
	dir := t.TempDir()
	code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "testdata/private-small.yaml")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	if m := r.Metrics; m["lost"] != 0 || m["clients_failed"] != 0 || m["deliveries"] == 0 || m["deliveries"] != m["expected"] {
		t.Errorf("lost %v, clients_failed %v, deliveries %v, expected %v", m["lost"], m["clients_failed"], m["deliveries"], m["expected"])
	}
	res := readSwarmResult(t, filepath.Join(dir, "swarm.json"))
	if res.Clients.Renewals == 0 || res.Errors["auth_unauthorized"]+res.Errors["auth_forbidden"] != 0 {
		t.Errorf("renewals %d, errors %v", res.Clients.Renewals, res.Errors)
	}
	// --check validates the schema; keys are read when the run starts.
	if code, out := runCmd(t, "--check", "testdata/private-small.yaml"); code != 0 {
		t.Errorf("--check: exit %d: %s", code, out)
	}
}
