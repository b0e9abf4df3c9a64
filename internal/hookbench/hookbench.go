// Package hookbench measures darktime's model-hook pipeline end to end:
// hooks posted to POST /hooks, enqueued in Redis, claimed and formatted by
// workers, published through Redis and delivered to SSE subscribers.
//
// A run holds Subscribers lean SSE connections, one per thread channel
// (thread:<prefix>_<i>), then measures in two phases:
//
//   - throughput: post Jobs hooks as fast as the server takes them, in
//     batches of Batch from Posters concurrent clients, and time them from
//     the first post to the last ack seen in GET /queue/stats;
//   - latency: post Rate hooks/s for Duration in batches of LatencyBatch
//     at a constant pace (vegeta), and measure, at the subscribers, the time
//     from each hook's intended send time to its event on the wire.
//
// Every hook carries its id and intended send time (in "message"); each has
// exactly one subscribed channel (its thread; forum and author are constant
// channels nobody subscribes to), so every accepted hook must arrive exactly
// once. With Processes set, the CPU time of each process (server, workers,
// Redis) is measured over each phase and reported per job.
package hookbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/ctxwait"
	"github.com/darktime/darktime/internal/histogram"
)

// Phase selects what a run measures.
type Phase string

// The phases.
const (
	PhaseThroughput Phase = "throughput"
	PhaseLatency    Phase = "latency"
	PhaseBoth       Phase = "both"
)

// Config describes one run. Zero values mean the defaults below.
type Config struct {
	// Target is the server's base URL (http only); default http://127.0.0.1:8080.
	Target string
	// Subscribers is how many SSE connections to hold, one per thread;
	// default 100.
	Subscribers int
	// Phase is throughput, latency or both (default).
	Phase Phase

	// Jobs is how many hooks the throughput phase posts; default 200,000.
	Jobs int
	// Batch is the hooks per request in the throughput phase; default 500
	// (the server takes up to 1,000 and 1 MiB).
	Batch int
	// Posters is how many requests the throughput phase keeps in flight;
	// default 4.
	Posters int

	// Rate is the latency phase's hooks/s; default 5,000.
	Rate float64
	// Duration is how long the latency phase posts; default 20 s.
	Duration time.Duration
	// LatencyBatch is the hooks per request in the latency phase; default
	// 10 (so 500 requests/s at the default rate).
	LatencyBatch int

	// Processes are measured (CPU time from /proc) over each phase.
	Processes []Process

	// Settle is the pause after the subscribers connected and between the
	// phases; default 1 s.
	Settle time.Duration
	// Drain bounds the wait for events after the last job was acked;
	// default 5 s.
	Drain time.Duration
	// StallTimeout fails a phase whose acked count stops moving for this
	// long; default 30 s.
	StallTimeout time.Duration
	// PollInterval is how often GET /queue/stats is polled; default 10 ms.
	PollInterval time.Duration
	// ThreadPrefix names the threads <prefix>_<i>; default a random one per
	// run. Only [A-Za-z0-9_].
	ThreadPrefix string
	// Logger receives progress messages; default discards them.
	Logger *slog.Logger
}

// Defaults for the zero values of Config.
const (
	DefaultTarget       = "http://127.0.0.1:8080"
	DefaultSubscribers  = 100
	DefaultJobs         = 200_000
	DefaultBatch        = 500
	DefaultPosters      = 4
	DefaultRate         = 5_000
	DefaultDuration     = 20 * time.Second
	DefaultLatencyBatch = 10
	DefaultSettle       = time.Second
	DefaultDrain        = 5 * time.Second
	DefaultStallTimeout = 30 * time.Second
	DefaultPollInterval = 10 * time.Millisecond
	// MaxBatch is the server's limit of hooks per request.
	MaxBatch = 1000
	// maxHooks bounds the per-hook accounting memory (4 bytes each).
	maxHooks = 50_000_000
)

// ErrConfig marks an invalid Config; callers may treat it as a usage error.
var ErrConfig = errors.New("invalid hook benchmark config")

func (c Config) withDefaults() Config {
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	if c.Subscribers == 0 {
		c.Subscribers = DefaultSubscribers
	}
	if c.Phase == "" {
		c.Phase = PhaseBoth
	}
	if c.Jobs == 0 {
		c.Jobs = DefaultJobs
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Posters == 0 {
		c.Posters = DefaultPosters
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.LatencyBatch == 0 {
		c.LatencyBatch = DefaultLatencyBatch
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ThreadPrefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		c.ThreadPrefix = "hooks" + hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

func (c Config) validate() error {
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	check(c.Phase != PhaseThroughput && c.Phase != PhaseLatency && c.Phase != PhaseBoth, fmt.Sprintf("phase %q: want throughput, latency or both", c.Phase))
	check(c.Subscribers < 1 || c.Subscribers > 10_000, "subscribers must be between 1 and 10,000")
	check(c.Jobs < 1, "jobs must be positive")
	check(c.Batch < 1 || c.Batch > MaxBatch, fmt.Sprintf("batch must be between 1 and %d", MaxBatch))
	check(c.Posters < 1 || c.Posters > 256, "posters must be between 1 and 256")
	check(c.Rate <= 0 || c.Rate > 1e6, "rate must be between 0 and 1,000,000 hooks/s")
	check(c.Duration <= 0 || c.Duration > 24*time.Hour, "duration must be positive and at most 24h")
	check(c.LatencyBatch < 1 || c.LatencyBatch > MaxBatch, fmt.Sprintf("latency batch must be between 1 and %d", MaxBatch))
	check(c.Settle < 0 || c.Drain < 0 || c.StallTimeout < 0 || c.PollInterval < 0, "settle, drain, stall timeout and poll interval must be positive")
	check(strings.IndexFunc(c.ThreadPrefix, notWordRune) >= 0, "thread prefix may only hold letters, digits and '_'")
	for _, p := range c.Processes {
		check(p.PID <= 0 || p.Name == "", fmt.Sprintf("process %q: want a name and a positive pid", p.Name))
	}
	if len(problems) == 0 {
		check(int64(c.Jobs)+int64(plannedRequests(c))*int64(c.LatencyBatch) > maxHooks,
			fmt.Sprintf("more than %d hooks planned: post fewer jobs, or at a lower rate or for less time", maxHooks))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return nil
}

func notWordRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_')
}

// requestInterval is the latency phase's constant gap between requests.
func requestInterval(c Config) time.Duration {
	return max(time.Duration(float64(time.Second)*float64(c.LatencyBatch)/c.Rate), 1)
}

// plannedRequests bounds how many requests vegeta's constant pacer sends in
// the latency phase: one per interval, the first one interval after start.
func plannedRequests(c Config) int {
	return int(c.Duration/requestInterval(c)) + 2
}

// run is the state shared by the subscribers and the phases of one Run.
type run struct {
	cfg      Config
	log      *slog.Logger
	base     string // target URL without a trailing slash
	path     string // target URL's path without a trailing slash
	host     string // Host header
	addr     string // resolved host:port to dial
	threads  []string
	client   *http.Client
	idleConn func()

	// Hook ids: the throughput phase uses [0, Jobs), the latency phase
	// [Jobs, Jobs+planned). delivered[id] counts the events of hook id.
	delivered []atomic.Uint32
	phases    [2]*phaseHist // 0: throughput, 1: latency
	foreign   atomic.Int64  // events that are not ours or on the wrong thread

	stopCtx  context.Context
	stop     context.CancelFunc
	stopping atomic.Bool
	subs     []*subscriber
	subWG    sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	dropped int
	dropErr error
}

// histShards spreads latency recording over several mutexes.
const histShards = 8

// phaseHist is one phase's hook→wire latencies, sharded by subscriber.
type phaseHist struct {
	shards [histShards]struct {
		mu   sync.Mutex
		hist *hdrhistogram.Histogram
	}
}

func newPhaseHist() *phaseHist {
	p := &phaseHist{}
	for i := range p.shards {
		p.shards[i].hist = histogram.New()
	}
	return p
}

func (p *phaseHist) record(shard int, d time.Duration) {
	sh := &p.shards[shard%histShards]
	sh.mu.Lock()
	histogram.Record(sh.hist, d)
	sh.mu.Unlock()
}

func (p *phaseHist) merged() *hdrhistogram.Histogram {
	h := histogram.New()
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		h.Merge(sh.hist)
		sh.mu.Unlock()
	}
	return h
}

func newRun(cfg Config) (*run, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("%w: target %q: %v", ErrConfig, cfg.Target, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%w: target %q: want http://host:port (the lean subscriber speaks plain HTTP/1.1 only)", ErrConfig, cfg.Target)
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	addr, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("resolve target: %w", err)
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1000,
	}
	r := &run{
		cfg:      cfg,
		log:      cfg.Logger,
		base:     u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"),
		host:     u.Host,
		path:     strings.TrimSuffix(u.Path, "/"),
		addr:     addr.String(),
		threads:  make([]string, cfg.Subscribers),
		client:   &http.Client{Timeout: requestTimeout, Transport: transport},
		idleConn: transport.CloseIdleConnections,
		subs:     make([]*subscriber, cfg.Subscribers),
		phases:   [2]*phaseHist{newPhaseHist(), newPhaseHist()},
	}
	hooks := 0
	if cfg.Phase != PhaseLatency {
		hooks += cfg.Jobs
	}
	if cfg.Phase != PhaseThroughput {
		hooks += plannedRequests(cfg) * cfg.LatencyBatch
	}
	r.delivered = make([]atomic.Uint32, hooks)
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	for i := range r.threads {
		r.threads[i] = fmt.Sprintf("%s_%d", cfg.ThreadPrefix, i)
		r.subs[i] = &subscriber{r: r, index: i}
	}
	return r, nil
}

// latencyBase is the first hook id of the latency phase.
func (r *run) latencyBase() int64 {
	if r.cfg.Phase == PhaseLatency {
		return 0
	}
	return int64(r.cfg.Jobs)
}

// ended accounts a subscriber whose stream stopped; before the run stops
// that is a drop.
func (r *run) ended(err error) {
	if r.stopping.Load() {
		return
	}
	r.mu.Lock()
	r.dropped++
	if r.dropErr == nil {
		r.dropErr = err
	}
	r.mu.Unlock()
}

// shutdown closes every subscriber and waits for their goroutines; it is
// safe to call more than once.
func (r *run) shutdown() {
	r.stopping.Store(true)
	r.stop()
	for _, s := range r.subs {
		s.close()
	}
	r.subWG.Wait()
	r.idleConn()
}

// Run executes one benchmark: connect the subscribers, then run the
// configured phases. On cancellation it stops early and returns what it
// measured so far along with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r, err := newRun(cfg)
	if err != nil {
		return nil, err
	}
	defer r.shutdown()
	began := time.Now()
	res := &Result{Config: echoConfig(cfg)}
	finish := func(err error) (*Result, error) {
		r.shutdown()
		r.mu.Lock()
		res.SubscribersDropped = r.dropped
		if r.dropErr != nil {
			res.DropErrorSample = r.dropErr.Error()
		}
		r.mu.Unlock()
		res.ForeignEvents = r.foreign.Load()
		res.DurationSeconds = time.Since(began).Seconds()
		return res, err
	}

	if _, err := r.queueStats(ctx); err != nil {
		return nil, fmt.Errorf("%w (is %s a darktime server started with --redis?)", err, cfg.Target)
	}
	r.log.Info("connecting subscribers", "subscribers", cfg.Subscribers, "prefix", cfg.ThreadPrefix)
	connected, err := r.connectAll(ctx)
	res.SubscribersConnected = connected
	if err != nil {
		return finish(err)
	}
	if !ctxwait.Sleep(ctx, cfg.Settle) {
		return finish(ctx.Err())
	}
	if cfg.Phase != PhaseLatency {
		res.Throughput, err = r.throughput(ctx)
		if err != nil {
			return finish(err)
		}
		if cfg.Phase == PhaseBoth && !ctxwait.Sleep(ctx, cfg.Settle) {
			return finish(ctx.Err())
		}
	}
	if cfg.Phase != PhaseThroughput {
		res.Latency, err = r.latency(ctx)
		if err != nil {
			return finish(err)
		}
	}
	return finish(nil)
}
