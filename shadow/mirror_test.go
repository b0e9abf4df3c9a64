package shadow

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"
	"time"
)

// mirrorConfig mirrors every user's streams and publishes to candidate.
func mirrorConfig(primary, candidate string) Config {
	return Config{
		Primary: primary, Candidate: candidate, Mode: ModeMirror, Percent: 100,
		Key: KeyConfig{From: KeyCookie, Name: "uid", Salt: "test"},
		Routes: []Route{
			{Path: "/sub/"},
			{Path: "/pub", MirrorUnsafe: true},
		},
		Ledger: LedgerConfig{Settle: 300 * time.Millisecond, Late: time.Second},
	}
}

// TestMirrorIdenticalServersBalance is baseline mode: the primary
// mirrored against an identical second primary (and a candidate that is
// one too) balances to zero, per channel and per bucket.
func TestMirrorIdenticalServersBalance(t *testing.T) {
	t.Parallel()
	primary, candidate, second := startRef(t), startRef(t), startRef(t)
	cfg := mirrorConfig(primary.url, candidate.url)
	cfg.Baseline = second.url
	p, url, admin := startProxy(t, cfg)

	const users, events = 5, 40
	var streams []*stream
	for u := range users {
		streams = append(streams, subscribe(t, url+"/sub/room"+fmt.Sprint(u%2), userCookie(u)))
	}
	waitFor(t, 5*time.Second, "mirrored subscriptions", func() bool {
		return candidate.srv.Stats().Totals.Subscribers == users && second.srv.Stats().Totals.Subscribers == users
	})
	for i := range events {
		publish(t, url, "room"+fmt.Sprint(i%2), fmt.Sprintf("event %d", i))
	}
	for u, s := range streams {
		for range events / 2 {
			if ev := s.next(5 * time.Second); !strings.HasPrefix(string(ev.Data), "event ") {
				t.Fatalf("user %d got %q", u, ev.Data)
			}
		}
	}
	want := int64(users * events / 2)
	for _, name := range []string{"candidate", "baseline"} {
		waitFor(t, 5*time.Second, name+" matched", func() bool {
			return targetOf(p.Report(), name).Totals.Matched == want
		})
	}
	for _, s := range streams {
		s.close()
	}
	waitFor(t, 5*time.Second, "mirrors to close", func() bool { return p.nstreams.Load() == 0 })
	r := getReport(t, admin)
	if r.Schema != Schema {
		t.Fatalf("schema %q", r.Schema)
	}
	for _, name := range []string{"candidate", "baseline"} {
		tr := targetOf(r, name)
		tot := tr.Totals
		if tot.Primary != want || tot.Candidate != want || tot.Balance != 0 || tot.Missing != 0 || tot.Extra != 0 ||
			tot.Duplicated != 0 || tot.Reordered != 0 || tot.PendingPrimary != 0 || tot.PendingCandidate != 0 {
			t.Errorf("%s totals %+v, want %d matched and nothing else", name, tot, want)
		}
		if tr.Streams.Mirrored != users || tr.Streams.Active != 0 || tr.Streams.Failed != 0 {
			t.Errorf("%s streams %+v", name, tr.Streams)
		}
		if len(tr.Channels) != 2 || tr.Channels["room0"].Balance != 0 || tr.Channels["room0"].Matched != 3*events/2 || tr.Channels["room1"].Matched != 2*events/2 {
			t.Errorf("%s channels %+v", name, tr.Channels)
		}
		var sum int64
		for _, b := range tr.Buckets {
			sum += b.Matched
			if b.Balance != 0 {
				t.Errorf("%s bucket unbalanced: %+v", name, b)
			}
		}
		if sum != want {
			t.Errorf("%s buckets sum to %d", name, sum)
		}
	}
	// The mirrored publishes carried the mark.
	if st := candidate.srv.Stats(); st.Totals.Published != events {
		t.Errorf("candidate published %d, want %d", st.Totals.Published, events)
	}
}

// TestCandidateKilledMidStream: the primary's streams go on untouched,
// and the failures are counted and open the breaker.
func TestCandidateKilledMidStream(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	cfg := mirrorConfig(primary.url, candidate.url)
	cfg.Breaker = BreakerConfig{Failures: 2, Cooldown: time.Hour}
	cfg.Mirror.Timeout = time.Second
	p, url, admin := startProxy(t, cfg)

	s := subscribe(t, url+"/sub/live", userCookie(1))
	waitFor(t, 5*time.Second, "mirror", func() bool { return candidate.srv.Stats().Totals.Subscribers == 1 })
	for i := range 5 {
		publish(t, url, "live", fmt.Sprint("before ", i))
		s.next(5 * time.Second)
	}
	candidate.stop()
	for i := range 20 {
		publish(t, url, "live", fmt.Sprint("after ", i))
		if ev := s.next(5 * time.Second); string(ev.Data) != fmt.Sprint("after ", i) {
			t.Fatalf("primary stream got %q after the candidate died", ev.Data)
		}
	}
	waitFor(t, 5*time.Second, "failure counted", func() bool { return targetOf(p.Report(), "candidate").Streams.Failed == 1 })
	if !p.breakerOpen("candidate") {
		t.Error("breaker still closed after the candidate died")
	}
	body := metricsText(t, p)
	for _, want := range []string{`darktime_shadow_candidate_errors_total{kind="stream_ended",target="candidate"}`, `darktime_shadow_circuit_open_total{target="candidate"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	// A new user while the circuit is open: served by the primary, not mirrored.
	s2 := subscribe(t, url+"/sub/live", userCookie(2))
	publish(t, url, "live", "x")
	s2.next(5 * time.Second)
	if r := getReport(t, admin); targetOf(r, "candidate").Streams.Mirrored != 1 {
		t.Errorf("mirrored with the circuit open: %+v", targetOf(r, "candidate").Streams)
	}
}

func metricsText(t *testing.T, p *Proxy) string {
	t.Helper()
	var b strings.Builder
	mfs, err := p.gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), v)
		}
	}
	return b.String()
}

// TestLivePercentChange: raising the share through the admin API and
// reloading a config neither drops nor disturbs established streams; a
// bad config is refused and the old one stays.
func TestLivePercentChange(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	cfg := mirrorConfig(primary.url, candidate.url)
	cfg.Percent = 0
	p, url, admin := startProxy(t, cfg)

	old := subscribe(t, url+"/sub/c", userCookie(1))
	publish(t, url, "c", "one")
	old.next(5 * time.Second)
	if n := candidate.srv.Stats().Totals.Subscribers; n != 0 {
		t.Fatalf("mirrored at 0%%: %d", n)
	}

	resp, err := http.Post(admin+"/_darktime/percent?percent=100", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set percent: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	if got := p.Config().Percent; got != 100 {
		t.Fatalf("percent %v", got)
	}
	newer := subscribe(t, url+"/sub/c", userCookie(1))
	waitFor(t, 5*time.Second, "new stream mirrored", func() bool { return candidate.srv.Stats().Totals.Subscribers == 1 })

	// A bad config through the API and through Reload: refused, old kept.
	req, err := http.NewRequest(http.MethodPut, admin+"/_darktime/config", strings.NewReader("primary: ftp://x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad config accepted: %v", err)
	} else {
		r.Body.Close()
	}
	bad := p.Config()
	bad.Percent = 12.345
	if err := p.Reload(bad); err == nil || !strings.Contains(err.Error(), "two decimals") {
		t.Fatalf("Reload(bad) = %v", err)
	}
	if p.Config().Percent != 100 {
		t.Fatal("bad reload changed the config")
	}
	// A good reload back to 0%: both streams stay up.
	good := p.Config()
	good.Percent = 0
	if err := p.Reload(good); err != nil {
		t.Fatal(err)
	}
	publish(t, url, "c", "two")
	for _, s := range []*stream{old, newer} {
		if ev := s.next(5 * time.Second); string(ev.Data) != "two" {
			t.Fatalf("got %q", ev.Data)
		}
	}
	if n := candidate.srv.Stats().Totals.Subscribers; n != 1 {
		t.Errorf("the established mirror was dropped by the reload: %d", n)
	}
}

// TestDivert: selected users are served by the candidate; when it is
// down they fall back to the primary.
func TestDivert(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	cfg := mirrorConfig(primary.url, candidate.url)
	cfg.Mode = ModeDivert
	cfg.Routes = nil
	_, url, _ := startProxy(t, cfg)
	s := subscribe(t, url+"/sub/d", userCookie(1))
	waitFor(t, 5*time.Second, "diverted", func() bool { return candidate.srv.Stats().Totals.Subscribers == 1 })
	if n := primary.srv.Stats().Totals.Subscribers; n != 0 {
		t.Fatalf("primary has %d subscribers", n)
	}
	publish(t, candidate.url, "d", "from candidate")
	if ev := s.next(5 * time.Second); string(ev.Data) != "from candidate" {
		t.Fatalf("got %q", ev.Data)
	}
	s.close()
	candidate.stop()
	s2 := subscribe(t, url+"/sub/d", userCookie(1))
	waitFor(t, 5*time.Second, "fallback", func() bool { return primary.srv.Stats().Totals.Subscribers == 1 })
	publish(t, primary.url, "d", "from primary")
	if ev := s2.next(5 * time.Second); string(ev.Data) != "from primary" {
		t.Fatalf("got %q", ev.Data)
	}
}

// TestSlowCandidateAnswersDoNotStallTheMirror: a candidate that takes
// 60 ms to answer each publish gets every mirrored publish of 200/s on
// one channel (one lane) in time — the lane keeps several requests in
// flight instead of one at a time (which mirrored 16 publishes/s and
// dropped the rest as unmirrored) — and the ledger balances.
func TestSlowCandidateAnswersDoNotStallTheMirror(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	up := mustURL(t, candidate.url)
	rp := httputil.NewSingleHostReverseProxy(up)
	slow := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pub" {
			defer time.Sleep(60 * time.Millisecond) // published at once, answered late
		}
		rp.ServeHTTP(w, r)
	}))
	cfg := mirrorConfig(primary.url, slow)
	cfg.Mirror.MaxInflight = 400 // 50 per lane: a serial lane overflows within the burst
	p, url, _ := startProxy(t, cfg)

	s := subscribe(t, url+"/sub/burst", userCookie(1))
	waitFor(t, 5*time.Second, "the mirrored subscription", func() bool { return candidate.srv.Stats().Totals.Subscribers == 1 })
	const events, publishers = 300, 10
	var wg sync.WaitGroup
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < events; i += publishers {
				publish(t, url, "burst", fmt.Sprintf("event %d", i))
				time.Sleep(50 * time.Millisecond) // 200 publishes/s in all
			}
		}()
	}
	wg.Wait()
	for range events {
		s.next(5 * time.Second)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("candidate published %d; totals %+v", candidate.srv.Stats().Totals.Published, targetOf(p.Report(), "candidate").Totals)
		}
	})
	waitFor(t, 10*time.Second, "every mirrored publish at the candidate", func() bool {
		return candidate.srv.Stats().Totals.Published == events
	})
	waitFor(t, 5*time.Second, "the candidate's copies matched", func() bool {
		return targetOf(p.Report(), "candidate").Totals.Matched == events
	})
	tot := targetOf(p.Report(), "candidate").Totals
	if tot.Unmirrored != 0 || tot.Missing != 0 || tot.Extra != 0 || tot.UnexplainedMissing != 0 || tot.UnexplainedExtra != 0 {
		t.Errorf("candidate totals %+v: want all %d matched, nothing unmirrored, missing or extra", tot, events)
	}
}
