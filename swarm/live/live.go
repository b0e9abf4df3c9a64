// Package live exports a swarm run's metrics while it runs, through
// Prometheus remote write 1.0 with native histograms: the counters, the
// open connections and the delivery, connect and publish latencies that
// the progress line shows, every Interval, and once more at the end with
// the +1/-1 ledger's totals (README "Live metrics").
//
// The swarm tells the Exporter of each second (swarm.Config.Tick); the
// Exporter keeps cumulative counters and native histograms built by
// client_golang (prometheus.NewHistogram with a bucket factor, fed from
// the second's HdrHistograms), and every Interval gathers them into one
// write request stamped with the second's end. Requests wait in a bounded
// queue for one sender, which posts them in order with client_golang's
// remote-write client (snappy, retries with backoff on 5xx, 429 and
// network errors): a slow or stalled receiver never blocks the swarm nor
// grows its memory; when the queue is full the oldest request is dropped
// and counted. Counters and histograms are cumulative, so the next request
// that gets through carries everything a dropped one had but its points
// in time.
package live

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/darktime/darktime/swarm"
)

// ErrConfig marks a Config that cannot work; the CLI reports it as a
// usage error.
var ErrConfig = swarm.ErrConfig

// Defaults for the zero values of Config.
const (
	DefaultInterval     = 5 * time.Second
	DefaultQueue        = 16
	DefaultTimeout      = 10 * time.Second
	DefaultRetries      = 4
	DefaultFlushTimeout = 15 * time.Second
	// BucketFactor is the native histograms' growth factor: client_golang
	// picks schema 3, buckets 2^(1/8) ≈ 1.09 wide.
	BucketFactor = 1.1
)

// Config configures an Exporter. The zero value but URL is a valid one.
// It travels as JSON to the worker processes of a split run
// (swarm.Procs.Live), without Client, Logger and Registerer.
type Config struct {
	// URL is the receiver's remote-write endpoint, as in Prometheus's
	// remote_write url (e.g. http://127.0.0.1:9090/api/v1/write); without
	// a path, /api/v1/write.
	URL string `json:"url"`
	// Interval is how often a write request is sent (DefaultInterval),
	// counted in the run's seconds.
	Interval time.Duration `json:"interval_ns,omitempty"`
	// Headers are added to every request (Authorization, a tenant
	// header); they cannot replace remote write's own.
	Headers http.Header `json:"headers,omitempty"`
	// Labels are put on every series.
	Labels Labels `json:"labels"`
	// Queue bounds the requests waiting for the sender (DefaultQueue).
	Queue int `json:"queue,omitempty"`
	// Timeout bounds one attempt of a request (DefaultTimeout); Retries
	// is how many times a request is tried again after a retryable
	// failure (DefaultRetries; negative: never).
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	Retries int           `json:"retries,omitempty"`
	// FlushTimeout bounds how long Close waits for the queue, the last
	// request included, to be sent (DefaultFlushTimeout).
	FlushTimeout time.Duration `json:"flush_timeout_ns,omitempty"`
	// Client sends the requests (default an http.Client with Timeout).
	Client *http.Client `json:"-"`
	// Logger receives failures (default discards them).
	Logger *slog.Logger `json:"-"`
	// Registerer, when set, gets the exporter's own counters
	// (darktime_live_requests_total by outcome, darktime_live_retries_total).
	Registerer prometheus.Registerer `json:"-"`
}

// Labels are the labels of every series; empty ones are left out.
type Labels struct {
	RunID    string `json:"run_id,omitempty"`   // run_id: swarm.Config.RunID
	Scenario string `json:"scenario,omitempty"` // scenario: the scenario's name under darktime run
	Target   string `json:"target,omitempty"`   // target: the target's label (darktime run) or URL
	Agent    string `json:"agent,omitempty"`    // agent: the swarm agent's name
	Part     string `json:"part,omitempty"`     // part: "INDEX/COUNT" of a split run
}

func (l Labels) pairs() [][2]string {
	var out [][2]string
	for _, p := range [][2]string{{"agent", l.Agent}, {"part", l.Part}, {"run_id", l.RunID}, {"scenario", l.Scenario}, {"target", l.Target}} {
		if p[1] != "" {
			out = append(out, p)
		}
	}
	return out
}

// reservedHeaders are remote write's own: the client sets them.
var reservedHeaders = []string{"Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version"}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.FlushTimeout == 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Check refuses a Config that cannot work; errors wrap ErrConfig and
// name the flags.
func (c Config) Check() error {
	c = c.withDefaults()
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return fmt.Errorf("%w: --remote-write URL is required", ErrConfig)
	case err != nil:
		return fmt.Errorf("%w: --remote-write %q: %v", ErrConfig, c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%w: --remote-write %q: want an http or https URL, e.g. http://127.0.0.1:9090/api/v1/write", ErrConfig, c.URL)
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("%w: --remote-write-interval %v: at least 100ms (the swarm ticks every second)", ErrConfig, c.Interval)
	case c.Queue < 1 || c.Timeout < 0 || c.FlushTimeout < 0:
		return fmt.Errorf("%w: remote write queue %d, timeout %v, flush timeout %v: want positive values", ErrConfig, c.Queue, c.Timeout, c.FlushTimeout)
	}
	for name := range c.Headers {
		for _, r := range reservedHeaders {
			if strings.EqualFold(name, r) {
				return fmt.Errorf("%w: --remote-write-header %s: remote write sets it itself", ErrConfig, name)
			}
		}
	}
	return nil
}

// ParseHeader reads a --remote-write-header "Name: value" into h.
func ParseHeader(h http.Header, s string) error {
	name, value, ok := strings.Cut(s, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("%w: --remote-write-header %q: want \"Name: value\"", ErrConfig, s)
	}
	h.Add(name, value)
	return nil
}

// Stats counts what an Exporter did with its requests.
type Stats struct {
	// Queued counts the requests built; each is then sent, failed or
	// dropped (Close waits for the queue, so after it they add up).
	Queued int64
	// Sent were accepted (2xx); Failed were refused (4xx) or ran out of
	// retries or of time; Dropped were pushed out of the full queue by a
	// newer one, or never sent because Close timed out.
	Sent, Failed, Dropped int64
	// Retries counts the attempts repeated after a retryable failure.
	Retries int64
}

// Exporter exports one run (or one part of it). Tick is called from the
// swarm's ticking goroutine, Close once the run ended.
type Exporter struct {
	cfg    Config
	api    *remote.API
	m      *runMetrics
	own    ownMetrics
	ctx    context.Context // the sender's; Close cancels it when it times out
	cancel context.CancelFunc
	queue  chan *prompb.WriteRequest
	done   chan struct{}

	mu        sync.Mutex // guards below, and the queue's producer side
	stats     Stats
	lastBatch time.Time // At of the last Tick that built a request
	lastTS    int64     // its timestamp, ms
	ticked    bool
	closed    bool
	closeErr  error
}

// New starts an Exporter's sender; Close stops it.
func New(cfg Config) (*Exporter, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	if len(cfg.Headers) > 0 {
		c := *client
		c.Transport = headerTransport{base: client.Transport, headers: cfg.Headers.Clone()}
		client = &c
	}
	retries := max(cfg.Retries, 0)
	if retries == 0 {
		retries = -1 // the client's 0 is "forever"; its negative stops at once
	}
	apiPath := "" // URL is the whole endpoint
	if u, _ := url.Parse(cfg.URL); u.Path == "" || u.Path == "/" {
		apiPath = "api/v1/write"
	}
	api, err := remote.NewAPI(cfg.URL,
		remote.WithAPIPath(apiPath),
		remote.WithAPIHTTPClient(client),
		remote.WithAPILogger(cfg.Logger),
		remote.WithAPIBackoff(remote.BackoffConfig{Min: 250 * time.Millisecond, Max: 5 * time.Second, MaxRetries: retries}))
	if err != nil {
		return nil, fmt.Errorf("%w: --remote-write: %v", ErrConfig, err)
	}
	own, err := newOwnMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{
		cfg: cfg, api: api, m: newRunMetrics(cfg.Labels), own: own, ctx: ctx, cancel: cancel,
		queue: make(chan *prompb.WriteRequest, cfg.Queue), done: make(chan struct{}),
	}
	go e.send()
	return e, nil
}

// Tick takes one second of the run (the swarm.Config.Tick hook) and, once
// per Interval, queues a write request. It never blocks on the receiver.
func (e *Exporter) Tick(t swarm.Tick) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.m.tick(t)
	if !e.ticked || t.At.Sub(e.lastBatch) >= e.cfg.Interval {
		e.lastBatch = t.At
		e.enqueue(t.At)
	}
	e.ticked = true
}

// Close adds the run's result, when there is one (the ledger's credit,
// debit, lost and extra deliveries are known only then), queues the last
// request and waits up to FlushTimeout or ctx for the queue to be sent.
// It returns an error when requests were lost; safe to call twice.
func (e *Exporter) Close(ctx context.Context, res *swarm.Result) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.done
		return e.closeErr
	}
	e.closed = true
	if res != nil {
		e.m.result(res)
	}
	at := time.Now()
	if res != nil && !res.Ended.IsZero() {
		at = res.Ended
	}
	if e.ticked || res != nil { // else nothing was measured
		e.enqueue(at)
	}
	close(e.queue)
	e.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, e.cfg.FlushTimeout)
	defer cancel()
	select {
	case <-e.done:
	case <-ctx.Done():
		e.cancel() // the sender fails what is left at once
		<-e.done
	}
	e.cancel()
	st := e.Stats()
	var err error
	if lost := st.Failed + st.Dropped; lost > 0 {
		err = fmt.Errorf("remote write to %s: %d of %d requests not delivered (%d failed, %d dropped); the receiver has the run's last state only if the last one arrived", e.cfg.URL, lost, st.Queued, st.Failed, st.Dropped)
	}
	e.mu.Lock()
	e.closeErr = err
	e.mu.Unlock()
	return err
}

// Stats says what happened to the requests so far.
func (e *Exporter) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// enqueue gathers the run's metrics stamped at and queues them, pushing
// out the oldest request when the queue is full. e.mu is held: Tick and
// Close are the only producers.
func (e *Exporter) enqueue(at time.Time) {
	ts := max(at.UnixMilli(), e.lastTS+1) // strictly increasing per series
	e.lastTS = ts
	req, err := e.m.gather(ts)
	if err != nil {
		e.cfg.Logger.Error("remote write: gather the run's metrics", "err", err)
		return
	}
	e.stats.Queued++
	for {
		select {
		case e.queue <- req:
			return
		default:
		}
		select {
		case <-e.queue:
			e.stats.Dropped++
			e.own.requests.WithLabelValues("dropped").Inc()
			e.m.dropped.Inc()
		default: // the sender took one meanwhile
		}
	}
}

// send posts the queued requests in order, until the queue is closed.
func (e *Exporter) send() {
	defer close(e.done)
	for req := range e.queue {
		if e.ctx.Err() != nil {
			e.count(func(s *Stats) { s.Dropped++ }, "dropped")
			continue
		}
		_, err := e.api.Write(e.ctx, remote.WriteV1MessageType, req, remote.WithWriteRetryCallback(func(error) {
			e.own.retries.Inc()
			e.count(func(s *Stats) { s.Retries++ }, "")
		}))
		switch {
		case err == nil:
			e.count(func(s *Stats) { s.Sent++ }, "sent")
		case e.ctx.Err() != nil: // Close gave up waiting
			e.count(func(s *Stats) { s.Dropped++ }, "dropped")
		default:
			e.cfg.Logger.Warn("remote write: request failed", "url", e.cfg.URL, "err", err)
			e.count(func(s *Stats) { s.Failed++ }, "failed")
		}
	}
}

func (e *Exporter) count(f func(*Stats), outcome string) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
	if outcome != "" {
		e.own.requests.WithLabelValues(outcome).Inc()
	}
}

// headerTransport adds the configured headers to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers http.Header
}

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for name, values := range t.headers {
		req.Header[name] = values
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
