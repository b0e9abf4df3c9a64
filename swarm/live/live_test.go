package live

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/darktime/darktime/internal/histogram"
	"github.com/darktime/darktime/swarm"
)

// tick is a synthetic second: events received at latencies (ms), one
// publish ok.
func tick(at time.Time, phase string, latenciesMs ...float64) swarm.Tick {
	d := histogram.New()
	for _, ms := range latenciesMs {
		_ = d.RecordValue(int64(ms * 1e3))
	}
	return swarm.Tick{
		At: at, Phase: phase,
		Second:     swarm.Second{T: at.Unix() - 1, Open: 3, Events: int64(len(latenciesMs)), PublishesOK: 1},
		Clients:    swarm.Totals{Planned: 3, Connected: 3},
		Histograms: map[string]*hdrhistogram.Histogram{swarm.HistDelivery: d, swarm.HistConnect: histogram.New()},
	}
}

func series(req *prompb.WriteRequest, name string, match ...string) *prompb.TimeSeries {
	for i, ts := range req.Timeseries {
		all := map[string]string{}
		for _, l := range ts.Labels {
			all[l.Name] = l.Value
		}
		ok := all["__name__"] == name
		for j := 0; j+1 < len(match); j += 2 {
			ok = ok && all[match[j]] == match[j+1]
		}
		if ok {
			return &req.Timeseries[i]
		}
	}
	return nil
}

func TestExporterSendsIntervalsInOrder(t *testing.T) {
	t.Parallel()
	rc := &receiver{}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	reg := prometheus.NewRegistry()
	h := http.Header{}
	if err := ParseHeader(h, "Authorization: Bearer s3cret"); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{URL: hs.URL + "/api/v1/write", Interval: 2 * time.Second, Headers: h,
		Labels: Labels{RunID: "r1", Scenario: "smoke", Target: "primary"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 5 { // requests at t0, t0+2s, t0+4s
		phase := "warm"
		if i >= 3 {
			phase = "spike"
		}
		e.Tick(tick(t0.Add(time.Duration(i)*time.Second), phase, 1, 2, 3, 40))
	}
	if err := e.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background(), nil); err != nil { // twice is fine
		t.Fatal(err)
	}
	reqs, headers := rc.accepted()
	if len(reqs) != 4 { // three intervals and the last
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	if got := headers[0].Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if got := headers[0].Get("X-Prometheus-Remote-Write-Version"); got != "0.1.0" {
		t.Errorf("remote write version %q, want 0.1.0 (1.0 protocol)", got)
	}
	var last int64
	for i, req := range reqs {
		ev := series(req, MetricEvents)
		if ev == nil || len(ev.Samples) != 1 {
			t.Fatalf("request %d: no %s sample: %v", i, MetricEvents, req)
		}
		if ts := ev.Samples[0].Timestamp; ts <= last {
			t.Errorf("request %d: timestamp %d after %d", i, ts, last)
		} else {
			last = ts
		}
		for _, ts := range req.Timeseries {
			for j := 1; j < len(ts.Labels); j++ {
				if ts.Labels[j-1].Name >= ts.Labels[j].Name {
					t.Errorf("labels not sorted: %v", ts.Labels)
				}
			}
		}
	}
	if ts := reqs[0].Timeseries[0].Samples; len(ts) > 0 && ts[0].Timestamp != t0.UnixMilli() {
		t.Errorf("first request stamped %d, want the tick's end %d", ts[0].Timestamp, t0.UnixMilli())
	}
	final := reqs[3]
	if got := series(final, MetricEvents, "run_id", "r1", "scenario", "smoke", "target", "primary").Samples[0].Value; got != 20 {
		t.Errorf("events received %v, want 20 (cumulative)", got)
	}
	if got := series(final, MetricPublishesOK).Samples[0].Value; got != 5 {
		t.Errorf("publishes ok %v, want 5", got)
	}
	if got := series(final, MetricOpen).Samples[0].Value; got != 3 {
		t.Errorf("open %v, want 3", got)
	}
	d := series(final, MetricDelivery)
	if d == nil || len(d.Histograms) != 1 {
		t.Fatalf("no native delivery histogram in %v", final)
	}
	hg := d.Histograms[0]
	if hg.GetCountInt() != 20 || hg.Schema != 3 || math.Abs(hg.Sum-5*0.046) > 1e-4 {
		t.Errorf("delivery histogram count %d schema %d sum %v, want 20, 3 (factor 1.1), 0.23 s", hg.GetCountInt(), hg.Schema, hg.Sum)
	}
	// The phase moved from warm to spike between the second and third
	// requests: the third marks warm stale.
	if p := series(reqs[2], MetricPhase, "phase", "warm"); p == nil || !value.IsStaleNaN(p.Samples[0].Value) {
		t.Errorf("phase warm in the third request: %v, want a staleness marker", p)
	}
	if p := series(reqs[2], MetricPhase, "phase", "spike"); p == nil || p.Samples[0].Value != 1 {
		t.Errorf("phase spike in the third request: %v, want 1", p)
	}
	if got := testutil.ToFloat64(e.own.requests.WithLabelValues("sent")); got != 4 {
		t.Errorf("darktime_live_requests_total{outcome=sent} %v, want 4", got)
	}
}

func TestExporterRetriesOn5xxAnd429(t *testing.T) {
	t.Parallel()
	rc := &receiver{status: func(n int) int {
		switch n {
		case 0:
			return http.StatusServiceUnavailable
		case 1:
			return http.StatusTooManyRequests
		}
		return http.StatusNoContent
	}}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	e, err := New(Config{URL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.Tick(tick(time.Now(), "publish", 5))
	if err := e.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	reqs, _ := rc.accepted()
	if st.Retries != 2 || st.Sent != 2 || len(reqs) != 2 {
		t.Errorf("stats %+v, %d accepted: want 2 retries, the tick's and the last request sent", st, len(reqs))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.paths) == 0 || rc.paths[0] != "/api/v1/write" {
		t.Errorf("posted to %v: want /api/v1/write for a URL without a path", rc.paths)
	}
}

func TestExporterDoesNotRetry4xx(t *testing.T) {
	t.Parallel()
	rc := &receiver{status: func(int) int { return http.StatusBadRequest }}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	e, err := New(Config{URL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.Tick(tick(time.Now(), "publish", 5))
	err = e.Close(context.Background(), nil)
	if st := e.Stats(); err == nil || st.Failed != 2 || st.Retries != 0 {
		t.Errorf("stats %+v, err %v: want both requests failed without retries, and an error", st, err)
	}
}

// stalled is a receiver that holds every request until released.
type stalled struct {
	arrived chan struct{}
	release chan struct{}
	holding atomic.Int64
}

func newStalled(t *testing.T) (*stalled, string) {
	s := &stalled{arrived: make(chan struct{}, 100), release: make(chan struct{})}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.holding.Add(1)
		defer s.holding.Add(-1)
		s.arrived <- struct{}{}
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(s.release); hs.Close() })
	return s, hs.URL
}

func TestStalledReceiverDropsOldest(t *testing.T) {
	t.Parallel()
	s, url := newStalled(t)
	e, err := New(Config{URL: url, Interval: time.Second, Queue: 2, Timeout: time.Minute, FlushTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	e.Tick(tick(t0, "publish", 1))
	<-s.arrived // the first request is held by the receiver
	for i := 1; i <= 10; i++ {
		e.Tick(tick(t0.Add(time.Duration(i)*time.Second), "publish", 1))
	}
	st := e.Stats()
	if st.Queued != 11 || st.Dropped != 8 {
		t.Errorf("after 11 ticks with one request held and a queue of 2: %+v, want 11 queued, 8 dropped", st)
	}
	err = e.Close(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "not delivered") {
		t.Errorf("Close: %v, want an error saying requests were not delivered", err)
	}
	if st := e.Stats(); st.Queued != 12 || st.Dropped != 12 || st.Sent != 0 {
		t.Errorf("after Close: %+v, want all 12 dropped (the held one and the queue when Close gave up)", st)
	}
}

// A real swarm run against a receiver that never answers ends on time:
// the exporter never holds up the swarm's ticks.
func TestStalledReceiverDoesNotBlockSwarm(t *testing.T) {
	t.Parallel()
	s, url := newStalled(t)
	e, err := New(Config{URL: url, Interval: time.Second, Queue: 2, Timeout: time.Minute, FlushTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := quickRun(startServer(t))
	var ticks atomic.Int64
	cfg.Tick = func(tk swarm.Tick) { ticks.Add(1); e.Tick(tk) }
	res, err := swarm.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.holding.Load() == 0 {
		t.Fatal("the receiver holds no request: the test did not stall the exporter")
	}
	if int(ticks.Load()) != len(res.Series) {
		t.Errorf("%d ticks told, %d seconds in the series", ticks.Load(), len(res.Series))
	}
	closeErr := e.Close(context.Background(), res)
	st := e.Stats()
	if closeErr == nil || st.Sent != 0 || st.Dropped != st.Queued || st.Queued < 3 {
		t.Errorf("stats %+v, Close: %v: want every request dropped and counted, and an error", st, closeErr)
	}
}

func TestCheckAndParseHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "URL is required"},
		{Config{URL: "127.0.0.1:9090"}, "first path segment"},
		{Config{URL: "ftp://x/write"}, "want an http or https URL"},
		{Config{URL: "http://x/api/v1/write", Interval: time.Millisecond}, "at least 100ms"},
		{Config{URL: "http://x", Headers: http.Header{"Content-Encoding": {"gzip"}}}, "sets it itself"},
		{Config{URL: "https://x/api/v1/write"}, ""},
	} {
		err := tc.cfg.Check()
		if (tc.want == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig)) {
			t.Errorf("Check(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for in, want := range map[string]string{"X-Scope-OrgID: tenant-1": "tenant-1", "Authorization:Bearer a:b": "Bearer a:b"} {
		h := http.Header{}
		if err := ParseHeader(h, in); err != nil {
			t.Errorf("ParseHeader(%q): %v", in, err)
			continue
		}
		for _, v := range h {
			if v[0] != want {
				t.Errorf("ParseHeader(%q) = %v, want %q", in, h, want)
			}
		}
	}
	for _, in := range []string{"no colon", ": empty name", "Bad Name: v"} {
		if err := ParseHeader(http.Header{}, in); err == nil {
			t.Errorf("ParseHeader(%q) accepted", in)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	t.Parallel()
	h := http.Header{"Authorization": {"Bearer x"}}
	c := Config{URL: "http://127.0.0.1:9090/api/v1/write", Interval: 2 * time.Second, Headers: h, Labels: Labels{Scenario: "s", Target: "primary"}}
	raw, err := c.Spec()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromSpec(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.URL != c.URL || back.Interval != c.Interval || back.Headers.Get("Authorization") != "Bearer x" || back.Labels != c.Labels {
		t.Errorf("round trip: %+v, want %+v", back, c)
	}
	if got := back.Labels.For(swarm.Config{RunID: "r", Target: "http://x", Part: swarm.Part{Index: 1, Count: 2}}); got != (Labels{RunID: "r", Scenario: "s", Target: "primary", Part: "1/2"}) {
		t.Errorf("Labels.For: %+v", got)
	}
	for _, bad := range []string{`{"url": "http://x", "extra": 1}`, `{"url": "ftp://x"}`, `[`} {
		if _, err := FromSpec([]byte(bad), nil); !errors.Is(err, ErrConfig) {
			t.Errorf("FromSpec(%s) = %v, want ErrConfig", bad, err)
		}
	}
}
