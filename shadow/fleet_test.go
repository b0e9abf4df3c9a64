package shadow

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/shadow/ledgerfile"
)

type member struct {
	p          *Proxy
	url, admin string
}

// startFleet runs n proxies of one fleet on a private Redis.
func startFleet(t *testing.T, n int, redisURL string, cfg Config) []member {
	t.Helper()
	cfg.Fleet = FleetConfig{Redis: redisURL, Name: "test"}
	var ms []member
	for range n {
		p, url, admin := startProxy(t, cfg)
		ms = append(ms, member{p, url, admin})
	}
	return ms
}

// waitConfig waits until every member's GET /_darktime/config shows ok.
func waitConfig(t *testing.T, ms []member, what string, ok func(Config) bool) {
	t.Helper()
	for i, m := range ms {
		waitFor(t, 5*time.Second, fmt.Sprintf("instance %d: %s", i, what), func() bool {
			var c Config
			return getJSON(t, m.admin+"/_darktime/config", &c) == http.StatusOK && ok(c)
		})
	}
}

func postForm(t *testing.T, url, form string) int {
	t.Helper()
	resp, err := http.Post(url, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitEpoch(t *testing.T, ms []member, n int64) {
	t.Helper()
	for i, m := range ms {
		waitFor(t, 5*time.Second, fmt.Sprintf("instance %d on epoch %d", i, n), func() bool { return cohortsOf(t, m.admin, "").Epoch == n })
	}
}

// TestFleet: three proxy instances on one Redis, users spread across
// them. A step posted on instance 1 is in force on 2 and 3; the merged
// ledger and the cohorts' union equal the sums of the parts; one
// rollback on instance 2 cuts the candidate's streams on all three —
// diverted and mirrored — and no primary stream, and the users it cut
// land on the primary wherever they come back.
//
// It runs alone, as TestCohortEvidence does.
func TestFleet(t *testing.T) {
	tstest.Long(t, "three proxies and a Redis")
	rs := redistest.Start(t)
	h := newHub()
	prim, cand := &hubServer{h: h}, &hubServer{h: h}
	cfg := cohortConfig(serve(t, prim), serve(t, cand), ModeOff)
	cfg.Percent = 0
	ms := startFleet(t, 3, rs.URL, cfg)

	var res StepResult
	if st := postJSON(t, ms[0].admin+"/_darktime/step", `{"name": "mirror-50", "mode": "mirror", "percent": 50}`, &res); st != 200 || res.Epoch != 1 {
		t.Fatalf("step: %d %+v", st, res)
	}
	waitConfig(t, ms, "mirror 50%", func(c Config) bool { return c.Mode == ModeMirror && c.Percent == 50 })
	waitEpoch(t, ms, 1)

	sel, others := usersOf(6)
	users := append(append([]int{}, sel...), others...)
	var streams []*stream
	for i, u := range users {
		streams = append(streams, subscribe(t, fmt.Sprintf("%s/sub/ch%d?user=%d", ms[i%3].url, i%2, u), nil))
	}
	waitFor(t, 5*time.Second, "the mirrors open", func() bool {
		n := int64(0)
		for _, m := range ms {
			n += m.p.nstreams.Load()
		}
		return prim.active.Load() == 12 && cand.active.Load() == 6 && n == 6
	})
	time.Sleep(150 * time.Millisecond) // past the edge
	const events = 60
	for i := range events {
		h.publish(fmt.Sprintf("ch%d", i%2), fmt.Sprintf("ch%d event %d", i%2, i))
	}
	for _, s := range streams {
		for range events / 2 {
			s.next(10 * time.Second)
		}
	}

	// The ledger: the fleet's is the merge of the three, exactly.
	var parts []Report
	waitFor(t, 10*time.Second, "the ledgers settled", func() bool {
		parts, parts = parts[:0], nil
		matched := int64(0)
		for _, m := range ms {
			tot := targetOf(m.p.Report(), "candidate").Totals
			if tot.PendingPrimary != 0 || tot.PendingCandidate != 0 {
				return false
			}
			matched += tot.Matched
			parts = append(parts, m.p.Report())
		}
		return matched == 6*events/2
	})
	busy := 0
	for _, r := range parts {
		if targetOf(r, "candidate").Totals.Matched > 0 {
			busy++
		}
	}
	if busy != 3 {
		t.Errorf("%d of 3 instances reconciled events", busy)
	}
	want, err := ledgerfile.Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	wantT := targetOf(want, "candidate")
	var got Report
	var instances string
	waitFor(t, 5*time.Second, "the fleet's ledger to be the sum of the parts", func() bool {
		resp, err := http.Get(ms[2].admin + "/_darktime/ledger?scope=fleet")
		if err != nil {
			return false
		}
		got = Report{}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		instances = resp.Header.Get("X-Darktime-Instances")
		g := targetOf(got, "candidate")
		return withoutDelays(g.Totals) == withoutDelays(wantT.Totals) && g.Streams == wantT.Streams && len(g.Channels) == len(wantT.Channels)
	})
	g := targetOf(got, "candidate")
	for ch, c := range wantT.Channels {
		if withoutDelays(g.Channels[ch]) != withoutDelays(c) {
			t.Errorf("channel %s: fleet %+v, sum %+v", ch, g.Channels[ch], c)
		}
	}
	for b, c := range wantT.Buckets {
		if withoutDelays(g.Buckets[b]) != withoutDelays(c) {
			t.Errorf("bucket %s: fleet %+v, sum %+v", b, g.Buckets[b], c)
		}
	}
	if n := len(strings.Split(instances, ",")); n != 3 || g.Totals.Matched != 6*events/2 || g.Totals.UnexplainedMissing != 0 {
		t.Errorf("fleet ledger of %q: %+v", instances, g.Totals)
	}

	// The cohorts: the union is the sum.
	var local []ledgerfile.Cohorts
	for _, m := range ms {
		local = append(local, m.p.Cohorts())
	}
	var sum ledgerfile.CohortStats
	for _, c := range local {
		sum = ledgerfile.SumCohorts(sum, c.Candidate)
	}
	var fc ledgerfile.Cohorts
	waitFor(t, 5*time.Second, "the fleet's cohorts to be the sum of the parts", func() bool {
		fc = cohortsOf(t, ms[1].admin, "?scope=fleet")
		c := fc.Candidate
		return len(fc.Instances) == 3 && fc.Epoch == 1 && c.Events == sum.Events && c.Streams == sum.Streams && c.DelaySamples == sum.DelaySamples &&
			fc.Primary.Events == int64(6*events/2)
	})
	if fc.Candidate.Events != 6*events/2 || int64(len(fc.Candidate.DelayMS)) != fc.Candidate.DelaySamples || fc.Candidate.Unexplained != 0 || fc.Primary.Streams != 6 {
		t.Errorf("fleet cohorts: primary %+v\ncandidate %+v", brief(fc.Primary), brief(fc.Candidate))
	}

	// A percent change on instance 3 is the fleet's too, and an instance
	// that starts now reads the state before it serves.
	if st := postForm(t, ms[2].admin+"/_darktime/percent", "percent=25"); st != 200 {
		t.Fatalf("percent: %d", st)
	}
	waitConfig(t, ms, "mirror 25%", func(c Config) bool { return c.Mode == ModeMirror && c.Percent == 25 })
	lateCfg := cfg
	lateCfg.Fleet = ms[0].p.Config().Fleet
	late, _, _ := startProxy(t, lateCfg)
	if c := late.Config(); c.Mode != ModeMirror || c.Percent != 25 || late.Cohorts().Epoch != 1 {
		t.Errorf("a late instance started with %s %v%% on epoch %d", c.Mode, c.Percent, late.Cohorts().Epoch)
	}

	// Divert: new selected users go to the candidate on every instance.
	if st := postJSON(t, ms[0].admin+"/_darktime/step", `{"name": "divert-50", "mode": "divert", "percent": 50}`, &res); st != 200 || res.Epoch != 2 {
		t.Fatalf("step: %d %+v", st, res)
	}
	waitConfig(t, ms, "divert 50%", func(c Config) bool { return c.Mode == ModeDivert && c.Percent == 50 })
	var diverted []*stream
	for i := range 3 {
		diverted = append(diverted, subscribe(t, fmt.Sprintf("%s/sub/ch0?user=%d", ms[i].url, sel[i]), nil))
	}
	waitFor(t, 5*time.Second, "the diverted streams open", func() bool { return cand.active.Load() == 6+3 })
	opened := cand.opened.Load()

	// One rollback, on instance 2, cuts every candidate stream everywhere.
	if st := postJSON(t, ms[1].admin+"/_darktime/rollback", `{}`, &res); st != 200 || res.Epoch != 3 || res.Step != RollbackStep {
		t.Fatalf("rollback: %d %+v", st, res)
	}
	for _, s := range diverted {
		waitEnded(t, s, 5*time.Second)
	}
	waitFor(t, 5*time.Second, "no candidate stream open", func() bool { return cand.active.Load() == 0 })
	waitConfig(t, ms, "0%", func(c Config) bool { return c.Percent == 0 })
	waitEpoch(t, ms, 3)
	if n := prim.active.Load(); n != 12 {
		t.Errorf("%d primary streams open after the rollback, want the 12", n)
	}
	h.publish("ch0", "after")
	h.publish("ch1", "after")
	for i, s := range streams {
		if ev := s.next(5 * time.Second); string(ev.Data) != "after" {
			t.Errorf("user %d got %q", i, ev.Data)
		}
	}
	for i := range 3 {
		back := subscribe(t, fmt.Sprintf("%s/sub/ch0?user=%d", ms[i].url, sel[i]), map[string]string{"Last-Event-ID": "9"})
		h.publish("ch0", fmt.Sprintf("back %d", i))
		for {
			if ev := back.next(5 * time.Second); string(ev.Data) == fmt.Sprintf("back %d", i) {
				break
			}
		}
	}
	if n := cand.opened.Load(); n != opened {
		t.Errorf("the candidate got %d new streams after the rollback", n-opened)
	}
	if c := cohortsOf(t, ms[2].admin, "?scope=fleet"); c.Epoch != 3 || c.Step != RollbackStep || c.Candidate.Streams != 0 {
		t.Errorf("fleet cohorts after the rollback: epoch %d %q, candidate streams %d", c.Epoch, c.Step, c.Candidate.Streams)
	}
}

// TestFleetWithoutRedis: Redis gone, the instances go on proxying with
// what they knew, scope=fleet and steps answer 503 with the reason; once
// Redis is back (empty), a step reaches the other instance again.
func TestFleetWithoutRedis(t *testing.T) {
	tstest.Long(t, "a Redis restart")
	rs := redistest.Start(t)
	h := newHub()
	prim, cand := &hubServer{h: h}, &hubServer{h: h}
	cfg := cohortConfig(serve(t, prim), serve(t, cand), ModeOff)
	cfg.Percent = 0
	ms := startFleet(t, 2, rs.URL, cfg)
	if st := postJSON(t, ms[0].admin+"/_darktime/step", `{"name": "divert-50", "mode": "divert", "percent": 50}`, nil); st != 200 {
		t.Fatalf("step: %d", st)
	}
	waitConfig(t, ms, "divert 50%", func(c Config) bool { return c.Mode == ModeDivert && c.Percent == 50 })

	rs.Stop()
	for _, path := range []string{"/_darktime/cohorts?scope=fleet", "/_darktime/ledger?scope=fleet"} {
		var v any
		if st := getJSON(t, ms[1].admin+path, &v); st != http.StatusServiceUnavailable {
			t.Errorf("GET %s without Redis: %d", path, st)
		}
	}
	if st := postJSON(t, ms[0].admin+"/_darktime/step", `{"name": "divert-100", "mode": "divert", "percent": 100}`, nil); st != http.StatusServiceUnavailable {
		t.Errorf("step without Redis: %d", st)
	}
	if c := ms[0].p.Config(); c.Percent != 50 {
		t.Errorf("a step refused by the fleet changed the share to %v", c.Percent)
	}
	sel, _ := usersOf(1)
	s := subscribe(t, fmt.Sprintf("%s/sub/x?user=%d", ms[1].url, sel[0]), nil)
	waitFor(t, 5*time.Second, "diverted without Redis", func() bool { return cand.active.Load() == 1 })
	h.publish("x", "still here")
	if ev := s.next(5 * time.Second); string(ev.Data) != "still here" {
		t.Fatalf("got %q", ev.Data)
	}
	if !strings.Contains(metricsText(t, ms[1].p), `darktime_shadow_fleet_errors_total{op="read"}`) {
		t.Errorf("no fleet error counted")
	}

	// A rollback without Redis rolls this instance back, and says so.
	resp, err := http.Post(ms[0].admin+"/_darktime/rollback", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "this instance only") || ms[0].p.Config().Percent != 0 {
		t.Errorf("rollback without Redis: %d %s, percent %v", resp.StatusCode, body, ms[0].p.Config().Percent)
	}
	lone := ms[0].p.Cohorts().Epoch

	rs.StartAgain() // empty: the state is gone with the old process
	waitFor(t, 10*time.Second, "a step through the restarted Redis", func() bool {
		return postJSON(t, ms[0].admin+"/_darktime/step", `{"name": "divert-20", "mode": "divert", "percent": 20}`, nil) == 200
	})
	waitConfig(t, ms, "divert 20% after the restart", func(c Config) bool { return c.Percent == 20 })
	waitEpoch(t, ms, lone+1)
	if a, b := ms[0].p.Cohorts(), ms[1].p.Cohorts(); a.Step != "divert-20" || b.Step != "divert-20" || !a.Since.Equal(b.Since) {
		t.Errorf("after the restart: %d %q %v and %d %q %v", a.Epoch, a.Step, a.Since, b.Epoch, b.Step, b.Since)
	}
}
