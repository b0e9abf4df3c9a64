package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFlagsRefused: values that cannot mean anything exit 2 naming the
// flag, before anything listens (a TLS file that cannot be read is
// reported before "listening" is logged).
func TestFlagsRefused(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.pem")
	out := filepath.Join(t.TempDir(), "r.json")
	for _, tc := range []struct {
		args string
		says string
	}{
		{"server --listen 127.0.0.1:0 --max-body -1", "--max-body"},
		{"server --listen 127.0.0.1:0 --history-length -1", "--history-length"},
		{"server --listen 127.0.0.1:0 --history-age -1s", "--history-age"},
		{"server --listen 127.0.0.1:0 --max-queue -1", "--max-queue"},
		{"server --listen 127.0.0.1:0 --shutdown-timeout -1s", "--shutdown-timeout"},
		{"server --listen 127.0.0.1:0 --shutdown-jitter -1s", "--shutdown-jitter"},
		{"server --listen 127.0.0.1:0 --trusted-proxy not-an-address", "--trusted-proxy"},
		{"server --listen 127.0.0.1:0 --cors-origin app.example/x", "--cors-origin"},
		{"server --listen 127.0.0.1:0 --tls-cert " + missing + " --tls-key " + missing, "--tls-cert"},
		{"run --time-scale 0 scenarios/ci-smoke.yaml", "--time-scale"},
		{"run --time-scale NaN scenarios/ci-smoke.yaml", "--time-scale"},
		{"run --time-scale Inf scenarios/ci-smoke.yaml", "--time-scale"},
		{"run --time-scale -1 scenarios/ci-smoke.yaml", "--time-scale"},
		{"swarm --ramp NaN --target http://127.0.0.1:1 --out " + out, "--ramp"},
		{"swarm --rate NaN --target http://127.0.0.1:1 --out " + out, "--rate"},
		{"swarm --settle -1s --target http://127.0.0.1:1 --out " + out, "--settle"},
		{"swarm --join-timeout -1s --target http://127.0.0.1:1 --out " + out, "--join-timeout"},
		{"shadow --mode off --primary http://127.0.0.1:1 --listen 127.0.0.1:0 --admin 127.0.0.1:0 --shutdown-timeout -1s", "--shutdown-timeout"},
		{"shadow --mode off --primary http://127.0.0.1:1 --listen 127.0.0.1:0 --admin 127.0.0.1:0 --trusted-proxy nope", "trusted_proxies"},
		{"shadow --mode off --primary http://127.0.0.1:1 --listen 127.0.0.1:0 --admin 0.0.0.0:0", "--admin-token"},
		{"shadow --mode off --primary http://127.0.0.1:1 --listen 127.0.0.1:0 --admin 127.0.0.1:0 --redis http://127.0.0.1:6379", "fleet.redis"},
		{"shadow --mode off --primary http://127.0.0.1:1 --listen 127.0.0.1:0 --admin 127.0.0.1:0 --redis redis://127.0.0.1:6379/0 --fleet a:b", "fleet.name"},
		{"shadow --mode off --primary http://127.0.0.1:1 --listen 127.0.0.1:0 --admin 127.0.0.1:0 --tls-cert /nonexistent/c.pem --tls-key /nonexistent/k.pem", "--tls-cert"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := strings.Fields(tc.args)
			if args[0] == "run" {
				args[len(args)-1] = filepath.Join("..", "..", args[len(args)-1])
			}
			code, output := darktime(t, ctx, args...)
			if code != 2 || !strings.Contains(output, tc.says) || strings.Contains(output, "listening") {
				t.Fatalf("darktime %s: exit %d, output %q; want exit 2 naming %s, before listening", tc.args, code, output, tc.says)
			}
		})
	}
}

// TestHelpShowsNoSecret: tokens taken from the environment are not flag
// defaults, which --help would print.
func TestHelpShowsNoSecret(t *testing.T) {
	t.Setenv("DARKTIME_PUBLISH_TOKEN", "publish-sekrit")
	t.Setenv("DARKTIME_ADMIN_TOKEN", "admin-sekrit")
	t.Setenv("DARKTIME_SHADOW_ADMIN_TOKEN", "shadow-sekrit")
	for _, cmd := range []string{"server", "shadow", "worker", "swarm", "run", "canary"} {
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{cmd, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		if strings.Contains(out.String(), "sekrit") {
			t.Errorf("%s --help prints a secret from the environment:\n%s", cmd, out.String())
		}
	}
}
