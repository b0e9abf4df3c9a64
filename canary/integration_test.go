package canary

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/internal/defect"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/shadow"
	"github.com/darktime/darktime/shadow/judge"
	"github.com/darktime/darktime/swarm"
)

// The integration tests run real rollouts on loopback: reference
// servers (package server) as the primary, the candidate and the
// baseline, the candidate (and the baseline) behind internal/defect, a
// real shadow.Proxy in front with its admin API, and a swarm of users
// keyed by the X-User header. They need the proxy's step API (POST
// /_darktime/step, GET /_darktime/cohorts), and skip while it answers
// 404.

const rigToken = "rig-token"

// serveRef runs a reference server's handler behind a defect on a
// loopback port until the test ends.
func serveRef(t *testing.T, d defect.Config) string {
	t.Helper()
	srv, err := server.New(server.Config{Logger: testLogger(t), KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return serveHandler(t, defect.Middleware(srv.Handler(), d), func(ctx context.Context) { _ = srv.Shutdown(ctx) })
}

func serveHandler(t *testing.T, h http.Handler, before func(context.Context)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if before != nil {
			before(ctx) // ends the streams
		}
		_ = hs.Shutdown(ctx)
		_ = hs.Close()
		<-done
	})
	return "http://" + l.Addr().String()
}

// rig is one rollout's world.
type rig struct {
	proxy, admin string
}

// startRig starts the primary (with noise: the environment's for every
// new instance), the candidate (noise plus its defect) and, when
// baseline, a baseline (noise only), and a proxy in front of them. It
// skips the test when the proxy has no step API yet.
func startRig(t *testing.T, noise, cand defect.Config, baseline bool) rig {
	t.Helper()
	r := buildRig(t, noise, cand, baseline, shadow.Route{Path: "/sub/"})
	a := &HTTPAdmin{URLs: []string{r.admin}, Token: rigToken}
	if _, err := a.Step(t.Context(), StepRequest{Name: "probe", Mode: "off", Route: "/sub/"}); err != nil {
		if strings.Contains(err.Error(), ": 404") {
			t.Skip("waits for the proxy's /_darktime/step")
		}
		t.Fatalf("the proxy's step API: %v", err)
	}
	return r
}

func buildRig(t *testing.T, noise, cand defect.Config, baseline bool, sub shadow.Route) rig {
	t.Helper()
	cfg := shadow.Config{
		Primary:    serveRef(t, defect.Config{}),
		Candidate:  serveRef(t, merge(noise, cand)),
		Mode:       shadow.ModeOff,
		Key:        shadow.KeyConfig{From: shadow.KeyHeader, Name: "X-User", Salt: "canary"},
		AdminToken: rigToken,
		Logger:     testLogger(t),
		Routes: []shadow.Route{
			sub,
			// Every publish reaches every side, so each world has every event.
			{Path: "/pub", Mode: shadow.ModeMirror, Percent: ptr(100.0), MirrorUnsafe: true},
		},
		Ledger: shadow.LedgerConfig{Settle: time.Second, Late: 250 * time.Millisecond},
	}
	if baseline {
		cfg.Baseline = serveRef(t, noise)
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer, cfg.Gatherer = reg, reg
	p, err := shadow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return rig{proxy: serveHandler(t, p, nil), admin: serveHandler(t, p.AdminHandler(), nil)}
}

func merge(a, b defect.Config) defect.Config {
	a.Drop += b.Drop
	a.Delay += b.Delay
	a.Jitter += b.Jitter
	if b.TailDelay > 0 {
		a.TailFraction, a.TailDelay = b.TailFraction, b.TailDelay
	}
	return a
}

func ptr[T any](v T) *T { return &v }

// TestRigCarriesEvents checks the rig itself, which needs no step API:
// users keyed by X-User are split between the primary and a candidate
// that drops 5% of events (a divert route at 50%), and every publish
// reaches both.
func TestRigCarriesEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3 s swarm through the proxy")
	}
	r := buildRig(t, defect.Config{}, defect.Config{Drop: 0.05, Salt: "rig"}, false,
		shadow.Route{Path: "/sub/", Mode: shadow.ModeDivert, Percent: ptr(50.0)})
	prof, _ := swarm.LookupProfile("darktime")
	prof.SubscribeHeaders = append(prof.SubscribeHeaders, "X-User: user-{client}")
	res, err := swarm.Run(t.Context(), swarm.Config{
		Target: r.proxy, Profile: prof, Clients: 100, Channels: 5, Ramp: 1000, Rate: 100,
		Settle: 300 * time.Millisecond, Duration: 2 * time.Second, Drain: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	owed := res.Publish.OK * 20 // 100 clients over 5 channels
	t.Logf("publishes %d, events %d of about %d, errors %v, delivery %+v", res.Publish.OK, res.Events.Events, owed, res.Errors, res.Summary["delivery"])
	if res.Events.Events < owed*9/10 || res.Events.Events > owed {
		t.Fatalf("%d events received of about %d owed", res.Events.Events, owed)
	}
	if res.Events.Events > owed-int64(float64(owed)*0.01) {
		t.Errorf("%d events of %d: the candidate's half lost none of its 5%%", res.Events.Events, owed)
	}
}

// users runs a swarm through the proxy until the returned stop: clients
// with their own X-User key (so they fall in their own buckets), 10
// channels, 300 events/s.
func users(t *testing.T, proxy string) (stop func()) {
	t.Helper()
	prof, _ := swarm.LookupProfile("darktime")
	prof.SubscribeHeaders = append(prof.SubscribeHeaders, "X-User: user-{client}")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := swarm.Run(ctx, swarm.Config{
			Target: proxy, Profile: prof, Clients: 300, Channels: 10, Ramp: 1000, Rate: 300,
			Settle: 500 * time.Millisecond, Duration: time.Minute, Drain: 100 * time.Millisecond,
			Logger: testLogger(t),
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("swarm: %v", err)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// rigPlan is a rollout short enough for a test: mirror, then divert
// 10% → 50% → 100%, each step judged once it has a few thousand events.
func rigPlan(r rig, baseline bool) Plan {
	step := func(name, mode string, pct float64) Step {
		return Step{Name: name, Mode: mode, Percent: pct, MinDuration: 2 * time.Second, MinEvents: 2000, MaxDuration: 8 * time.Second}
	}
	return Plan{
		Admin: []string{r.admin}, Route: "/sub/", Baseline: baseline, Poll: 250 * time.Millisecond,
		Thresholds: judge.Thresholds{MinEvents: 2000, MinSamples: 200, MinTailSamples: 1000},
		Steps: []Step{
			step("mirror-50", "mirror", 50), step("divert-10", "divert", 10),
			step("divert-50", "divert", 50), step("divert-100", "divert", 100),
		},
	}
}

func rollout(t *testing.T, noise, cand defect.Config, baseline bool) *Result {
	t.Helper()
	if testing.Short() {
		t.Skip("a real rollout: up to 30 s")
	}
	r := startRig(t, noise, cand, baseline)
	stop := users(t, r.proxy)
	defer stop()
	var out bytes.Buffer
	c, err := New(Config{Plan: rigPlan(r, baseline), Admin: &HTTPAdmin{URLs: []string{r.admin}, Token: rigToken},
		Out: &out, Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	res, err := c.Run(ctx)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("%s: %v", res.Outcome, err)
	}
	return res
}

// TestRolloutCatchesDefects: each defect is rolled back, with the check
// that caught it named, at the first step whose evidence sufficed.
func TestRolloutCatchesDefects(t *testing.T) {
	cases := []struct {
		name   string
		defect defect.Config
		check  string
	}{
		{"drops 0.1% of events", defect.Config{Drop: 0.001, Salt: "rig"}, "delivery"},
		{"40 ms slower", defect.Config{Delay: 40 * time.Millisecond}, "delay"},
		// Loopback delays are a few ms: 2% of events 25 ms late about
		// doubles the p99 or more and leaves the median.
		{"same median, wider tail", defect.Config{TailFraction: 0.02, TailDelay: 25 * time.Millisecond, Salt: "rig"}, "delay_tail"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := rollout(t, defect.Config{}, c.defect, false)
			if res.Outcome != RolledBack || !strings.Contains(res.Reason, c.check+":") {
				t.Fatalf("%s: %s; want rolled back by %s", res.Outcome, res.Reason, c.check)
			}
			last := res.Steps[len(res.Steps)-1]
			for _, s := range res.Steps[:len(res.Steps)-1] {
				if s.Decision != string(judge.Promote) {
					t.Errorf("step %s ended %s before the rollback", s.Name, s.Decision)
				}
			}
			if last.Verdict == nil || last.Judgements == 0 {
				t.Fatalf("rolled back at %s without a verdict: %s", last.Name, last.Reason)
			}
			if strings.Contains(last.Reason, "evidence never sufficed") {
				t.Errorf("rolled back for want of evidence, not for the defect: %s", last.Reason)
			}
		})
	}
}

// TestRolloutPromotesIdentical: a candidate with no defect goes through
// every step.
func TestRolloutPromotesIdentical(t *testing.T) {
	res := rollout(t, defect.Config{}, defect.Config{}, false)
	if res.Outcome != Promoted || len(res.Steps) != 4 {
		t.Fatalf("%s after %d steps: %s", res.Outcome, len(res.Steps), res.Reason)
	}
}

// TestRolloutBaselineAbsorbsNoise: the candidate and the baseline share
// the new instances' noise (20 ms of jitter, 5 ms more delay); judged
// against the baseline, the candidate is not rolled back.
func TestRolloutBaselineAbsorbsNoise(t *testing.T) {
	noise := defect.Config{Delay: 5 * time.Millisecond, Jitter: 20 * time.Millisecond, Salt: "noise"}
	res := rollout(t, noise, defect.Config{}, true)
	if res.Outcome == RolledBack {
		t.Fatalf("a noisy but identical candidate was rolled back: %s", res.Reason)
	}
	for _, s := range res.Steps {
		if s.Verdict != nil && (s.Verdict.Reference != "baseline" || len(s.Verdict.Noise) == 0) {
			t.Errorf("step %s judged against the %s, noise %v", s.Name, s.Verdict.Reference, s.Verdict.Noise)
		}
	}
}
