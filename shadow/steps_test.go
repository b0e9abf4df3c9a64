package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/shadow/ledgerfile"
)

// keysOf returns the sorted keys of a JSON object.
func keysOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// waitEnded waits until a test stream's events end (the proxy cut it).
func waitEnded(t *testing.T, s *stream, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the stream was not cut within %v", timeout)
		}
	}
}

// TestStepAndRollback: a step puts a mode and share in force and starts
// epoch 1, whose cohorts count the diverted and the control user; the
// rollback answers epoch 2, cuts the diverted stream and no primary
// stream, and the diverted user, resuming, lands on the primary.
func TestStepAndRollback(t *testing.T) {
	t.Parallel()
	h := newHub()
	prim, cand := &hubServer{h: h}, &hubServer{h: h}
	cfg := cohortConfig(serve(t, prim), serve(t, cand), ModeOff)
	cfg.Percent = 0
	cfg.Routes = []Route{{Path: "/sub/"}, {Path: "/other/", Mode: ModeOff}}
	_, url, admin := startProxy(t, cfg)

	var raw json.RawMessage
	if st := postJSON(t, admin+"/_darktime/step", `{"name": "divert-50", "mode": "divert", "percent": 50, "route": "/sub/"}`, &raw); st != 200 {
		t.Fatalf("step: %d", st)
	}
	if got := keysOf(t, raw); !slices.Equal(got, []string{"config", "epoch", "step"}) {
		t.Errorf("step answer keys %v", got)
	}
	var res StepResult
	_ = json.Unmarshal(raw, &res)
	if res.Epoch != 1 || res.Step != "divert-50" || res.Config.Routes[0].Mode != ModeDivert || *res.Config.Routes[0].Percent != 50 || res.Config.Percent != 0 {
		t.Fatalf("step answered %+v", res)
	}

	sel, others := usersOf(1)
	diverted := subscribe(t, fmt.Sprintf("%s/sub/a?user=%d", url, sel[0]), nil)
	control := subscribe(t, fmt.Sprintf("%s/sub/a?user=%d", url, others[0]), nil)
	waitFor(t, 5*time.Second, "both streams open", func() bool { return prim.active.Load() == 1 && cand.active.Load() == 1 })
	h.publish("a", "one")
	for _, s := range []*stream{diverted, control} {
		if ev := s.next(5 * time.Second); string(ev.Data) != "one" {
			t.Fatalf("got %q", ev.Data)
		}
	}

	resp, err := http.Get(admin + "/_darktime/cohorts")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for k := range doc {
		top = append(top, k)
	}
	slices.Sort(top)
	if want := []string{"baseline", "candidate", "delay_rule", "epoch", "instances", "primary", "since", "step"}; !slices.Equal(top, want) {
		t.Errorf("cohorts keys %v, want %v", top, want)
	}
	if string(doc["baseline"]) != "null" || string(doc["step"]) != `"divert-50"` || string(doc["epoch"]) != "1" || string(doc["delay_rule"]) != `"sighting"` {
		t.Errorf("cohorts: baseline %s, step %s, epoch %s, delay rule %s", doc["baseline"], doc["step"], doc["epoch"], doc["delay_rule"])
	}
	var since string
	_ = json.Unmarshal(doc["since"], &since)
	if _, err := time.Parse(time.RFC3339Nano, since); err != nil {
		t.Errorf("since %q: %v", since, err)
	}
	wantC := []string{"delay_from_send", "delay_from_sighting", "delay_ms", "delay_samples", "duplicated", "errors", "events", "first_event_ms", "first_event_samples", "reconnects", "reordered", "streams", "unexplained"}
	for _, side := range []string{"primary", "candidate"} {
		if got := keysOf(t, doc[side]); !slices.Equal(got, wantC) {
			t.Errorf("%s keys %v, want %v", side, got, wantC)
		}
	}
	c := cohortsOf(t, admin, "")
	if c.Primary.Streams != 1 || c.Candidate.Streams != 1 || c.Primary.Events != 1 || c.Candidate.Events != 1 || len(c.Candidate.DelayMS) != 1 ||
		len(c.Primary.FirstEventMS) != 1 || len(c.Instances) != 1 {
		t.Errorf("cohorts of epoch 1: %+v", c)
	}

	if st := postJSON(t, admin+"/_darktime/rollback", ``, &res); st != 200 || res.Epoch != 2 || res.Step != RollbackStep ||
		*res.Config.Routes[0].Percent != 0 || *res.Config.Routes[1].Percent != 0 || res.Config.Percent != 0 {
		t.Fatalf("rollback: %d %+v", st, res)
	}
	waitEnded(t, diverted, 5*time.Second)
	waitFor(t, 5*time.Second, "the candidate's stream closed", func() bool { return cand.active.Load() == 0 })
	h.publish("a", "two")
	if ev := control.next(5 * time.Second); string(ev.Data) != "two" {
		t.Fatalf("the control user got %q", ev.Data)
	}
	// The diverted user comes back, resuming, and is on the primary.
	back := subscribe(t, fmt.Sprintf("%s/sub/a?user=%d", url, sel[0]), map[string]string{"Last-Event-ID": "1"})
	waitFor(t, 5*time.Second, "the user back on the primary", func() bool { return prim.active.Load() == 2 })
	h.publish("a", "three")
	if ev := back.next(5 * time.Second); string(ev.Data) != "three" || cand.opened.Load() != 1 {
		t.Fatalf("back: %q, candidate streams opened %d", ev.Data, cand.opened.Load())
	}
	if c := cohortsOf(t, admin, ""); c.Epoch != 2 || c.Step != RollbackStep || c.Candidate.Streams != 0 {
		t.Errorf("after the rollback: %+v", c)
	}
}

// FuzzStepBody: whatever the body, POST /_darktime/step answers 200 with
// a valid config, or 400/413 and changes nothing.
func FuzzStepBody(f *testing.F) {
	for _, s := range []string{`{"name": "divert-5", "mode": "divert", "percent": 5, "route": ""}`, `{"mode": "off"}`,
		`{"mode": "mirror", "percent": 100, "route": "/sub/"}`, `{"percent": 1e400}`, `{"mode": "divert", "percent": 5.005}`, `[]`, `null`, ``} {
		f.Add(s)
	}
	p, err := New(Config{Primary: "http://127.0.0.1:1", Candidate: "http://127.0.0.1:2", Routes: []Route{{Path: "/sub/"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	h := p.AdminHandler()
	f.Fuzz(func(t *testing.T, body string) {
		before := p.Config()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/_darktime/step", strings.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			if err := p.Config().Validate(); err != nil {
				t.Fatalf("%q put an invalid config in force: %v", body, err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if fmt.Sprintf("%+v", p.Config()) != fmt.Sprintf("%+v", before) {
				t.Fatalf("%q was refused and changed the config", body)
			}
		default:
			t.Fatalf("%q: status %d: %s", body, rec.Code, rec.Body)
		}
	})
}

// TestCohortErrors: a candidate that refuses streams (503) and one that
// ends them under the user count as the candidate cohort's errors, and a
// request with Last-Event-ID as a reconnect.
func TestCohortErrors(t *testing.T) {
	t.Parallel()
	h := newHub()
	prim := &hubServer{h: h}
	var refuse atomic.Bool
	refuse.Store(true)
	cand := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: only\n\n")) // and the stream ends
	})
	cfg := cohortConfig(serve(t, prim), serve(t, cand), ModeDivert)
	cfg.Breaker.Failures = 100
	_, url, admin := startProxy(t, cfg)
	sel, _ := usersOf(2)
	resp, err := http.Get(fmt.Sprintf("%s/sub/e?user=%d", url, sel[0]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	refuse.Store(false)
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/sub/e?user=%d", url, sel[1]), nil)
	req.Header.Set("Last-Event-ID", "7")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var c ledgerfile.CohortStats
	waitFor(t, 5*time.Second, "two errors", func() bool {
		c = cohortsOf(t, admin, "").Candidate
		return c.Errors == 2
	})
	if c.Streams != 2 || c.Reconnects != 1 || c.FirstEventSamples != 1 {
		t.Errorf("candidate %+v", brief(c))
	}
}
