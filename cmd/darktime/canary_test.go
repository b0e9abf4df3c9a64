package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/internal/tstest"
)

// adminStub answers the proxy admin API's step, rollback and cohorts
// with a fixed cohort, for the command's wiring: flags, token, exit codes
// and --out. The rollout logic is tested in package canary, against real
// proxies too.
func adminStub(t *testing.T, token string, unexplained int64) string {
	t.Helper()
	var epoch atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error": "wrong admin token", "status": 403}`))
			return
		}
		c := map[string]any{"events": 20000, "unexplained": unexplained, "streams": 100, "delay_ms": samples()}
		switch r.URL.Path {
		case "/_darktime/step", "/_darktime/rollback":
			_ = json.NewEncoder(w).Encode(map[string]any{"epoch": epoch.Add(1), "step": "s", "config": map[string]any{}})
		case "/_darktime/cohorts":
			_ = json.NewEncoder(w).Encode(map[string]any{"epoch": epoch.Load(), "primary": c, "candidate": c, "baseline": nil})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func samples() []float64 {
	s := make([]float64, 1500)
	for i := range s {
		s[i] = float64(i%100) / 10
	}
	return s
}

func writePlan(t *testing.T, admin, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.yaml")
	plan := "admin: [" + admin + "]\npoll: 10ms\nsteps:\n" +
		"  - {name: mirror-5, mode: mirror, percent: 5, max_duration: 2s}\n" +
		"  - {name: divert-5, mode: divert, percent: 5, max_duration: 2s}\n" + extra
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCanaryExitCodes(t *testing.T) {
	good := adminStub(t, "tok", 0)
	bad := adminStub(t, "tok", 100)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	t.Setenv("DARKTIME_SHADOW_ADMIN_TOKEN", "tok")
	for _, c := range []struct {
		name string
		args []string
		env  string // the token in the environment
		code int
		out  string
	}{
		{"promoted", []string{"--plan", writePlan(t, good, "")}, "tok", 0, "canary promoted: every step promoted"},
		{"rolled back", []string{"--plan", writePlan(t, bad, "")}, "tok", 1, "rolled back at step mirror-5: delivery"},
		{"unreachable", []string{"--plan", writePlan(t, closed, "")}, "tok", 3, "proxy unreachable"},
		{"token refused, from the environment", []string{"--plan", writePlan(t, good, "")}, "nope", 2, "the token from DARKTIME_SHADOW_ADMIN_TOKEN is not the proxy's"},
		{"token refused, from the flag", []string{"--plan", writePlan(t, good, ""), "--admin-token", "nope"}, "tok", 2, "the token from --admin-token is not the proxy's"},
		{"no plan", nil, "tok", 2, "--plan FILE is needed"},
		{"bad plan", []string{"--plan", writePlan(t, good, "  - {name: x, mode: divert, percent: 500, max_duration: 1s}\n")}, "tok", 2, "line 6"},
		{"missing plan", []string{"--plan", "/nonexistent/plan.yaml"}, "tok", 2, "no such file"},
		{"bad metrics address", []string{"--plan", writePlan(t, good, ""), "--metrics-listen", "256.0.0.1:1"}, "tok", 2, "--metrics-listen"},
		{"bad token", []string{"--plan", writePlan(t, good, ""), "--admin-token", "two words"}, "tok", 2, "visible ASCII only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("DARKTIME_SHADOW_ADMIN_TOKEN", c.env)
			code, out := darktime(t, t.Context(), append([]string{"canary"}, c.args...)...)
			if code != c.code || !strings.Contains(out, c.out) {
				t.Errorf("exit %d; want %d with %q:\n%s", code, c.code, c.out, out)
			}
			if strings.Contains(out, "tok\"") || strings.Contains(out, "Bearer") {
				t.Errorf("the output shows the token:\n%s", out)
			}
		})
	}
}

// TestCanaryInterrupted: SIGINT stops the rollout without a rollback,
// writes the document marked interrupted and exits 3.
func TestCanaryInterrupted(t *testing.T) {
	var rollbacks atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_darktime/rollback":
			rollbacks.Add(1)
			_, _ = w.Write([]byte(`{"epoch": 2, "step": "rollback"}`))
		case "/_darktime/step":
			_, _ = w.Write([]byte(`{"epoch": 1, "step": "s"}`))
		default: // too few events: holds
			_, _ = w.Write([]byte(`{"epoch": 1, "primary": {"events": 5}, "candidate": {"events": 5}}`))
		}
	}))
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "plan.yaml")
	plan := "admin: [" + srv.URL + "]\npoll: 10ms\nsteps:\n  - {name: a, mode: divert, percent: 1, max_duration: 1h}\n"
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "canary.json")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "canary", "--plan", path, "--out", out)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "step 1/1") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("exit %d (%v); want 3:\n%s", code, err, buf.String())
	}
	var doc struct {
		Outcome string `json:"outcome"`
		Steps   []struct {
			Decision string `json:"decision"`
		} `json:"steps"`
	}
	data, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(data, &doc) != nil || doc.Outcome != "interrupted" || len(doc.Steps) != 1 || doc.Steps[0].Decision != "interrupted" {
		t.Fatalf("document %s (%v)", data, err)
	}
	if rollbacks.Load() != 0 {
		t.Error("an interrupted rollout rolled back")
	}
}

// lockedBuffer is an output a child process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestCanaryMetricsListen(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "darktime_canary_step", Help: "h"})
	reg.MustRegister(g)
	g.Set(3)
	addr := tstest.FreeAddr(t)
	stop, err := serveMetrics(addr, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "darktime_canary_step 3") {
		t.Fatalf("GET /metrics:\n%s", body)
	}
	if _, err := serveMetrics(addr, reg); err == nil {
		t.Error("a second listener on the same address")
	}
}
