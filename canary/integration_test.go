package canary

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/internal/defect"
	"github.com/darktime/darktime/internal/tstest"
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
	p            *shadow.Proxy
}

// startRig starts the primary (with noise: the environment's for every
// new instance), the candidate (noise plus its defect) and, when
// baseline, a baseline (noise only), and a proxy in front of them. It
// opens the rollout's first epoch with a probe step.
func startRig(t *testing.T, noise, cand defect.Config, baseline bool) rig {
	t.Helper()
	r := buildRig(t, noise, cand, baseline, shadow.Route{Path: "/sub/"})
	a := &HTTPAdmin{URLs: []string{r.admin}, Token: rigToken}
	if _, err := a.Step(t.Context(), StepRequest{Name: "probe", Mode: "off", Route: "/sub/"}); err != nil {
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
	return rig{proxy: serveHandler(t, p, nil), admin: serveHandler(t, p.AdminHandler(), nil), p: p}
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

// load is the swarm of a rollout, sized for the judge. 400 users put
// 223 in a 50% mirror (their buckets are fixed by the salt and their
// names), whose first connects give that step's first_event check a
// sample per stream. A step changes where new streams go, not open
// ones, so the users churn (each connection lives 4 to 8 s, then a fresh
// one takes its place): every divert step gets streams of its own, about
// 17 new candidate streams a second at 25%. Ten users per channel and
// 300 events/s keep the servers' own delays, which the judge compares,
// to a few ms on a quiet machine (30 users per channel put them past
// 100 ms on a busy one).
type load struct {
	clients, channels, rate int
}

var rigLoad = load{clients: 400, channels: 40, rate: 300}

// users runs a swarm through the proxy until the returned stop: clients
// with their own X-User key (so they fall in their own buckets).
func users(t *testing.T, proxy string, l load) (stop func()) {
	t.Helper()
	prof, _ := swarm.LookupProfile("darktime")
	prof.SubscribeHeaders = append(prof.SubscribeHeaders, "X-User: user-{client}")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := swarm.Run(ctx, swarm.Config{
			Target: proxy, Profile: prof, Clients: l.clients, Channels: l.channels, Ramp: 1000, Rate: float64(l.rate),
			Settle: 500 * time.Millisecond, Duration: 2 * time.Minute, Drain: 100 * time.Millisecond,
			Churn:  swarm.Lifetime{Kind: swarm.LifeUniform, Min: 4 * time.Second, Max: 8 * time.Second},
			Logger: testLogger(t),
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("swarm: %v", err)
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// rigStep is a step of a rollout sized for a test: judged once it has a
// few thousand reconciled events.
func rigStep(name, mode string, pct float64) Step {
	return Step{Name: name, Mode: mode, Percent: pct, MinDuration: 2 * time.Second, MinEvents: 2000, MaxDuration: 8 * time.Second}
}

// rigPlan is a rollout short enough for a test: mirror, then divert
// 25% → 50%. Its thresholds suit the rig's size: MinSamples 50 (not 200)
// because a divert step's first_event check has one sample per stream
// opened in the step, about 17 a second at 25%; the delay checks have
// thousands of samples. There is no divert-100 step: at 100% no user is
// left for the control cohort (the primary's streams in divert mode), so
// the reference has no new streams and no step there could be judged.
func rigPlan(r rig, baseline bool) Plan {
	return Plan{
		Admin: []string{r.admin}, Route: "/sub/", Baseline: baseline, Poll: 250 * time.Millisecond,
		Thresholds: judge.Thresholds{MinEvents: 2000, MinSamples: 50, MinTailSamples: 1000},
		Steps: []Step{
			rigStep("mirror-50", "mirror", 50), rigStep("divert-25", "divert", 25), rigStep("divert-50", "divert", 50),
			{Name: "divert-100", Mode: "divert", Percent: 100}, // the full promotion: not judged
		},
	}
}

func rollout(t *testing.T, noise, cand defect.Config, baseline bool) *Result {
	t.Helper()
	return rolloutPlan(t, noise, cand, baseline, nil)
}

// rolloutPlan runs a rollout of rigPlan, changed by edit when set. The
// users connect once the first step is in force, so that all of them are
// in its cohorts.
func rolloutPlan(t *testing.T, noise, cand defect.Config, baseline bool, edit func(*Plan)) *Result {
	t.Helper()
	if testing.Short() {
		t.Skip("a real rollout: up to a minute")
	}
	if raceBuild {
		// The judge compares delays of a few ms; the detector's stalls
		// are tens to hundreds (a p99 of 30 ms in the mirror step, 270 in
		// a divert step, measured), and pass the divert reconciliation's
		// settle window. The proxy's and the canary's code runs under the
		// detector in their unit tests and TestRigCarriesEvents.
		t.Skip("a rollout judges timing, which the race detector's stalls swamp: make test runs it without -race")
	}
	r := startRig(t, noise, cand, baseline)
	plan := rigPlan(r, baseline)
	if edit != nil {
		edit(&plan)
	}
	var out bytes.Buffer
	c, err := New(Config{Plan: plan, Admin: &HTTPAdmin{URLs: []string{r.admin}, Token: rigToken},
		Out: &out, Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	type ran struct {
		res *Result
		err error
	}
	done := make(chan ran, 1)
	probe := r.p.Cohorts().Epoch
	go func() { res, err := c.Run(ctx); done <- ran{res, err} }()
	tstest.WaitFor(t, 10*time.Second, "the first step", func() bool { return r.p.Cohorts().Epoch > probe })
	stop := users(t, r.proxy, rigLoad)
	defer stop()
	got := <-done
	t.Log(out.String())
	for _, s := range got.res.Steps {
		// What each verdict needed (BENCHMARKS.md, "Canary verdicts").
		var events, delays int64
		if s.Evidence != nil {
			events, delays = s.Evidence.Candidate.Events, int64(len(s.Evidence.Candidate.DelayMS))
		}
		t.Logf("verdict %s %s after %.1fs, %d judgements: %d candidate events, %d delay samples", s.Name, s.Decision, s.Ended.Sub(s.Started).Seconds(), s.Judgements, events, delays)
	}
	if got.err != nil {
		t.Fatalf("%s: %v", got.res.Outcome, got.err)
	}
	return got.res
}

// TestRolloutCatchesDefects: each defect is rolled back, with the check
// that caught it named, at the first step whose evidence sufficed.
func TestRolloutCatchesDefects(t *testing.T) {
	cases := []struct {
		name   string
		defect defect.Config
		check  string
		plan   func(*Plan)
	}{
		// The defect drops publishes (each of a channel's streams loses
		// the same events), so the evidence is the publishes the step
		// saw: 0.1% of them shows with 99% odds in about 4,600, which
		// the mirror step (some 5.6 mirrored streams per channel) has in
		// 28,000 reconciled events, 17 s at 300 events/s. The rig's
		// 2,000 would promote it two times in three, as a real plan's
		// min_events should not.
		{"drops 0.1% of events", defect.Config{Drop: 0.001, Salt: "rig"}, "delivery", func(p *Plan) {
			p.Thresholds.MinEvents = 28000
			for i := range p.Steps {
				p.Steps[i].MinEvents, p.Steps[i].MaxDuration = 28000, 40*time.Second
			}
		}},
		{"40 ms slower", defect.Config{Delay: 40 * time.Millisecond}, "delay", nil},
		// 2% of events late by defect.DoubleP99 of the rig's own delays,
		// measured first: the p99 about doubles, the median stays.
		{"same median, wider tail", defect.Config{TailFraction: 0.02, Salt: "rig"}, "delay_tail", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.defect.TailFraction > 0 && c.defect.TailDelay == 0 {
				c.defect.TailDelay = doubledP99(t)
			}
			res := rolloutPlan(t, defect.Config{}, c.defect, false, c.plan)
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
			t.Logf("rolled back at step %d of %d (%s) by: %s", len(res.Steps), len(rigPlan(rig{}, false).Steps), last.Name, res.Reason)
		})
	}
}

// doubledP99 measures the delays of an identical candidate in the rig's
// mirror step (a rig of its own, ended before the return) and returns the
// tail delay that doubles their p99 at this machine's load (at least
// 25 ms: a loopback p99 of a few ms is too close to the judge's 5 ms
// tolerance to double in its ratio).
func doubledP99(t *testing.T) time.Duration {
	t.Helper()
	var tail time.Duration
	t.Run("calibrate", func(t *testing.T) {
		if testing.Short() || raceBuild {
			t.Skip("no rollout")
		}
		r := startRig(t, defect.Config{}, defect.Config{}, false)
		a := &HTTPAdmin{URLs: []string{r.admin}, Token: rigToken}
		if _, err := a.Step(t.Context(), StepRequest{Name: "calibrate", Mode: "mirror", Percent: 50, Route: "/sub/"}); err != nil {
			t.Fatal(err)
		}
		stop := users(t, r.proxy, rigLoad)
		defer stop()
		var d []float64
		tstest.WaitFor(t, 20*time.Second, "2,000 candidate delays", func() bool {
			c := r.p.Cohorts()
			d = c.Candidate.DelayMS
			return len(d) >= 2000 && len(c.Primary.DelayMS) >= 2000
		})
		slices.Sort(d)
		ms := func(q float64) time.Duration {
			return time.Duration(d[int(q*float64(len(d)-1))] * float64(time.Millisecond))
		}
		tail = max(25*time.Millisecond, defect.DoubleP99(ms(0.5), ms(0.99)))
		t.Logf("the rig's delays: p50 %v, p99 %v: tail delay %v", ms(0.5), ms(0.99), tail)
	})
	if tail == 0 {
		t.Skip("no calibration")
	}
	return tail
}

// TestRolloutPromotesIdentical: a candidate with no defect goes through
// every step.
func TestRolloutPromotesIdentical(t *testing.T) {
	res := rollout(t, defect.Config{}, defect.Config{}, false)
	if res.Outcome != Promoted || len(res.Steps) != 4 || res.Steps[3].Judgements != 0 {
		t.Fatalf("%s after %d steps: %s", res.Outcome, len(res.Steps), res.Reason)
	}
}

// TestRolloutBaselineAbsorbsNoise: the candidate and the baseline share
// the new instances' noise (20 ms of jitter, 5 ms more delay); judged
// against the baseline, the candidate is not rolled back.
func TestRolloutBaselineAbsorbsNoise(t *testing.T) {
	noise := defect.Config{Delay: 5 * time.Millisecond, Jitter: 20 * time.Millisecond, Salt: "noise"}
	// The baseline's streams are the mirrors of the mirrored users' (a
	// diverted user has no baseline twin), so a rollout judged against a
	// baseline grows its mirror: in a divert step the baseline would have
	// no streams of its own and the step no reference.
	res := rolloutPlan(t, noise, defect.Config{}, true, func(p *Plan) {
		p.Steps = []Step{rigStep("mirror-50", "mirror", 50), rigStep("mirror-100", "mirror", 100)}
	})
	if res.Outcome == RolledBack {
		t.Fatalf("a noisy but identical candidate was rolled back: %s", res.Reason)
	}
	for _, s := range res.Steps {
		if s.Verdict != nil && (s.Verdict.Reference != "baseline" || len(s.Verdict.Noise) == 0) {
			t.Errorf("step %s judged against the %s, noise %v", s.Name, s.Verdict.Reference, s.Verdict.Noise)
		}
	}
}
