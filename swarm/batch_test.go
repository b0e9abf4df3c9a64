package swarm

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/server"
)

// batchProfile publishes to the reference server's JSON batch form of
// POST /pub, {"events":[{"channel":…,"data":{…}}, …]}, which it takes
// whole or not at all.
func batchProfile(batch int) Profile {
	p := builtinProfiles["darktime"]
	p.Name = "darktime-batch"
	p.Publish = PublishTemplate{
		Method:    "POST",
		URL:       "{target}/pub",
		Headers:   []string{"Content-Type: application/json"},
		Body:      `{"channel":"{channel}","data":{"ch":"{channel}","seq":{seq},"ts":{ts}}}`,
		Batch:     batch,
		BatchBody: `{"events":[{events}]}`,
	}
	return p
}

// countingServer counts the requests to POST /pub and the bodies' events
// before handing them to the reference server.
type countingServer struct {
	mu       sync.Mutex
	requests int
	events   []int // per request, the number of "channel" keys
}

func (c *countingServer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/pub" {
			body, _ := io.ReadAll(r.Body)
			c.mu.Lock()
			c.requests++
			c.events = append(c.events, strings.Count(string(body), `"channel":`))
			c.mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		next.ServeHTTP(w, r)
	})
}

// TestRunBatches publishes at a constant rate in batches of 7: the rate
// counts events, every event of a batch is owed and arrives once.
func TestRunBatches(t *testing.T) {
	t.Parallel()
	var cs countingServer
	n := startNode(t, server.Config{}, nodeOptions{wrap: cs.wrap})
	cfg := quickConfig(t, n.url)
	cfg.Profile = batchProfile(7)
	cfg.Distribution = Distribution{Kind: DistRoundRobin}
	cfg.Rate = 280 // 40 requests/s
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if int64(cs.requests) != res.Publish.Attempted || res.Publish.EventsOK != 7*res.Publish.OK || res.Publish.EventsFailed != 0 {
		t.Errorf("server saw %d requests; publish %+v: want every request of 7 events, all ok", cs.requests, res.Publish)
	}
	for i, e := range cs.events {
		if e != 7 {
			t.Fatalf("request %d carried %d events, want 7", i, e)
		}
	}
	// 1.5 s at 40 requests/s; 10 clients on each of 4 channels.
	if res.Publish.OK < 50 || res.Publish.OK > 70 {
		t.Errorf("%d requests in 1.5 s at 40/s", res.Publish.OK)
	}
	if got, want := res.Ledger.Totals().Credit, res.Publish.EventsOK*10; got != want {
		t.Errorf("ledger credits %d, want %d events × 10 clients", got, want)
	}
}

// TestRunMaxRateEvents publishes 1,003 events as fast as the server
// answers, from 2 requests in flight, in batches of 50: 21 requests, the
// last of 3 events, then AfterPublish, then the drain.
func TestRunMaxRateEvents(t *testing.T) {
	t.Parallel()
	var cs countingServer
	n := startNode(t, server.Config{}, nodeOptions{wrap: cs.wrap})
	cfg := quickConfig(t, n.url)
	cfg.Profile = batchProfile(50)
	cfg.Distribution = Distribution{Kind: DistRoundRobin}
	cfg.MaxRate, cfg.Publishers, cfg.Events = true, 2, 1003
	cfg.Duration = time.Minute // the events end it first
	var after Published
	var stages []string
	cfg.Stages = func(s Stage) { stages = append(stages, s.Name) }
	cfg.AfterPublish = func(_ context.Context, p Published) {
		after = p
		stages = append(stages, "after")
		deadline := time.Now().Add(5 * time.Second)
		for p.Received() < p.EventsOK*10 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	began := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("run took %v: publishing did not stop after the events", took)
	}
	if res.Publish.Attempted != 21 || res.Publish.EventsOK != 1003 || after.EventsOK != 1003 || after.Info.OK != 21 {
		t.Errorf("publish %+v, after publish %+v: want 21 requests, 1,003 events", res.Publish, after)
	}
	cs.mu.Lock()
	short, sum := 0, 0
	for _, e := range cs.events {
		sum += e
		if e != 50 {
			short++
		}
	}
	if short != 1 || sum != 1003 {
		t.Errorf("events per request %v: want 50s and one 3", cs.events)
	}
	cs.mu.Unlock()
	if want := "connected publish published after drained"; strings.Join(stages, " ") != want {
		t.Errorf("stages %v, want %s", stages, want)
	}
	if got := res.Ledger.Totals().Credit; got != 1003*10 {
		t.Errorf("ledger credits %d, want 10,030", got)
	}
	if !res.Config.MaxRate || res.Config.Publishers != 2 || res.Config.Events != 1003 || res.Config.ProfileDetail.Publish.Batch != 50 {
		t.Errorf("config echo %+v", res.Config)
	}
}

func TestBatchConfigErrors(t *testing.T) {
	t.Parallel()
	withPublish := func(f func(*PublishTemplate)) Profile {
		p := batchProfile(10)
		f(&p.Publish)
		return p
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"channel in the URL", Config{Profile: withPublish(func(p *PublishTemplate) { p.URL = "{target}/pub?id={channel}" })}, "may only be in the body"},
		{"seq in a header", Config{Profile: withPublish(func(p *PublishTemplate) { p.Headers = []string{"X-Seq: {seq}"} })}, "may only be in the body"},
		{"no events", Config{Profile: withPublish(func(p *PublishTemplate) { p.BatchBody = `{"events":[]}` })}, "{events} once"},
		{"events twice", Config{Profile: withPublish(func(p *PublishTemplate) { p.BatchBody = "{events}{events}" })}, "{events} once"},
		{"batch body without batch", Config{Profile: withPublish(func(p *PublishTemplate) { p.Batch = 0 })}, "without a batch size"},
		{"negative batch", Config{Profile: withPublish(func(p *PublishTemplate) { p.Batch = -2 })}, "publish batch"},
		{"huge batch", Config{Profile: withPublish(func(p *PublishTemplate) { p.Batch = MaxBatch + 1 })}, "publish batch"},
		{"max rate without publishers", Config{MaxRate: true, Events: 10}, "needs publishers"},
		{"max rate without events", Config{MaxRate: true, Publishers: 2}, "needs events"},
		{"max rate with phases", Config{MaxRate: true, Publishers: 2, Events: 10, Phases: []Phase{{Name: "a", Duration: time.Second}}}, "phases"},
		{"max rate with sine pacing", Config{MaxRate: true, Publishers: 2, Events: 10, Pacing: Pacing{Kind: PaceSine, Period: time.Second, Amplitude: 1}}, "sine pacing"},
		{"negative events", Config{Events: -1}, "events (--events)"},
		{"negative retry", Config{RetryUnavailable: -time.Second}, "retry unavailable"},
		{"too many events", Config{MaxRate: true, Publishers: 1, Events: maxPublishes + 1}, "events (--events)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.cfg)
			if !(errors.Is(err, ErrConfig) || errors.Is(err, ErrTemplate)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check: %v, want a config or template error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestRunRetryUnavailable: publishes answered 503 are sent again, and
// every event arrives once.
func TestRunRetryUnavailable(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	refused := 0
	n := startNode(t, server.Config{}, nodeOptions{wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			refuse := r.Method == http.MethodPost && refused < 3
			if refuse {
				refused++
			}
			mu.Unlock()
			if refuse {
				http.Error(w, "queue full", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	cfg := quickConfig(t, n.url)
	cfg.Profile = batchProfile(5)
	cfg.RetryUnavailable = 10 * time.Millisecond
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if res.Publish.Retried != 3 {
		t.Errorf("publish %+v: want 3 retried", res.Publish)
	}
}
