package canary

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAdmin is a scripted proxy for the step machine's tests: evidence
// returns the snapshot of each poll.
type fakeAdmin struct {
	mu        sync.Mutex
	epoch     int64
	steps     []StepRequest
	rollbacks int
	polls     int
	stepErr   error
	rollErr   error
	evidence  func(step StepRequest, epoch int64, poll int) (Cohorts, error)
}

func (f *fakeAdmin) Step(_ context.Context, req StepRequest) (StepAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stepErr != nil {
		return StepAnswer{}, f.stepErr
	}
	f.epoch++
	f.steps = append(f.steps, req)
	f.polls = 0
	return StepAnswer{Epoch: f.epoch, Step: req.Name}, nil
}

func (f *fakeAdmin) Rollback(context.Context, string) (StepAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rollErr != nil {
		return StepAnswer{}, f.rollErr
	}
	f.epoch++
	f.rollbacks++
	return StepAnswer{Epoch: f.epoch, Step: "rollback"}, nil
}

func (f *fakeAdmin) Cohorts(context.Context) (Cohorts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	step := f.steps[len(f.steps)-1]
	c, err := f.evidence(step, f.epoch, f.polls)
	if c.Epoch == 0 && err == nil {
		c.Epoch = f.epoch
	}
	return c, err
}

func (f *fakeAdmin) stepNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, s := range f.steps {
		names = append(names, s.Name)
	}
	return names
}

// cohort is deterministic evidence: n delay samples spread over 1-11 ms
// plus shift, events reconciled, bad of them unexplained.
func cohort(n int, shift float64, events, bad int64) CohortStats {
	c := CohortStats{Events: events, Unexplained: bad, Streams: 100}
	for i := range n {
		c.DelayMS = append(c.DelayMS, 1+float64((i*7919)%1000)/100+shift)
	}
	c.DelaySamples = int64(n)
	return c
}

func same(events int64) Cohorts {
	return Cohorts{Primary: cohort(2000, 0, events, 0), Candidate: cohort(2000, 0, events, 0)}
}

// testPlan is a plan of fast steps.
func testPlan(steps ...string) Plan {
	p := Plan{Admin: []string{"http://127.0.0.1:1"}, Poll: 2 * time.Millisecond}
	for _, s := range steps {
		mode, pct := "divert", 5.0
		if strings.HasPrefix(s, "mirror") {
			mode = "mirror"
		}
		p.Steps = append(p.Steps, Step{Name: s, Mode: mode, Percent: pct, MaxDuration: 200 * time.Millisecond})
	}
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// hook is a webhook that records its calls and answers status(n) to the
// n-th (from 1).
type hook struct {
	mu     sync.Mutex
	calls  []hookPayload
	status func(n int) int
	url    string
}

func newHook(t *testing.T, status func(n int) int) *hook {
	t.Helper()
	h := &hook{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var p hookPayload
		if err := json.Unmarshal(data, &p); err != nil {
			t.Errorf("webhook body %q: %v", data, err)
		}
		h.mu.Lock()
		h.calls = append(h.calls, p)
		n := len(h.calls)
		h.mu.Unlock()
		w.WriteHeader(h.status(n))
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *hook) got() []hookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookPayload(nil), h.calls...)
}
