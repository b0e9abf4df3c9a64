// Package hookbench measures darktime's model-hook pipeline end to end:
// hooks posted to POST /hooks, enqueued in Redis, claimed and formatted by
// workers, published through Redis and delivered to SSE subscribers.
//
// Each phase is a swarm run (package swarm): Subscribers swarm clients,
// one per thread channel (thread:<prefix>_<i>), and the swarm's publisher
// posting hooks in batches (swarm's Publish.Batch), every hook on the next
// thread round robin:
//
//   - throughput: post Jobs hooks as fast as the server takes them, in
//     batches of Batch from Posters requests in flight (the swarm's
//     MaxRate), and time them from the first post to the last ack seen in
//     GET /queue/stats;
//   - latency: post Rate hooks/s for Duration in batches of LatencyBatch
//     at a constant pace (vegeta), and measure, at the subscribers, the time
//     from each hook's intended send time to its event on the wire.
//
// Every hook carries its thread's seq and its intended send time in its
// message ("seq=N ts=N"), which the default post pipeline copies into the
// event, where the swarm's clients read them back. Each hook has exactly one
// subscribed channel (its thread; forum and author are constant channels
// nobody subscribes to), so every accepted hook must arrive exactly once:
// the swarm's ledger counts what was owed, received, lost and duplicated.
// What stays here is the queue's side (/queue/stats) and, with Processes
// set, the CPU time of each process (server, workers, Redis) over each
// phase, reported per job.
package hookbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/darktime/darktime/swarm"
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

	// Settle is the pause between a phase's subscribers connecting and
	// its first post; default 1 s.
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
	// maxHooks bounds the hooks of a run: the swarm keeps about 25 bytes
	// of accounting per event.
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
	if u, err := url.Parse(c.Target); err != nil || u.Scheme != "http" || u.Host == "" {
		problems = append(problems, fmt.Sprintf("target %q: want http://host:port (the swarm's subscribers speak plain HTTP/1.1 only)", c.Target))
	}
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

// run is what the phases of one Run share.
type run struct {
	cfg    Config
	log    *slog.Logger
	base   string // target URL without a trailing slash
	client *http.Client
}

func newRun(cfg Config) *run {
	return &run{
		cfg:    cfg,
		log:    cfg.Logger,
		base:   strings.TrimSuffix(cfg.Target, "/"),
		client: &http.Client{Timeout: requestTimeout},
	}
}

// Run executes one benchmark: the configured phases, each a swarm run
// with its own subscribers. On cancellation it stops early and returns
// what it measured so far along with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := newRun(cfg)
	defer r.client.CloseIdleConnections()
	for _, p := range r.phases() {
		if err := swarm.Check(p.swarmConfig()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if _, err := r.queueStats(ctx); err != nil {
		return nil, fmt.Errorf("%w (is %s a darktime server started with --redis?)", err, cfg.Target)
	}
	began := time.Now()
	res := &Result{Config: echoConfig(cfg)}
	var err error
	// Each phase connects its subscribers and settles (Settle) before its
	// first post.
	for _, p := range r.phases() {
		if err = p.run(ctx, res); err != nil {
			break
		}
	}
	res.DurationSeconds = time.Since(began).Seconds()
	return res, err
}

// phases are the runs cfg.Phase asks for.
func (r *run) phases() []*phase {
	var out []*phase
	if r.cfg.Phase != PhaseLatency {
		out = append(out, r.throughputPhase())
	}
	if r.cfg.Phase != PhaseThroughput {
		out = append(out, r.latencyPhase())
	}
	return out
}

// CheckSet refuses the values Run would silently replace with a default
// (zero) or cannot use, for a caller whose every field was given
// explicitly — the command line, where --jobs 0 is a mistake, not "the
// default". The errors wrap ErrConfig and name the flags.
func (c Config) CheckSet() error {
	var msg string
	switch {
	case c.Phase != PhaseThroughput && c.Phase != PhaseLatency && c.Phase != PhaseBoth:
		msg = fmt.Sprintf("--phase must be throughput, latency or both, not %q", c.Phase)
	case c.Subscribers <= 0:
		msg = "--subscribers must be at least 1"
	case c.Jobs <= 0:
		msg = "--jobs must be at least 1"
	case c.Batch <= 0 || c.Batch > MaxBatch:
		msg = fmt.Sprintf("--batch must be between 1 and %d", MaxBatch)
	case c.Posters <= 0:
		msg = "--posters must be at least 1"
	case c.Rate <= 0:
		msg = "--rate must be positive"
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		msg = "--duration must be positive and at most 24h"
	case c.LatencyBatch <= 0 || c.LatencyBatch > MaxBatch:
		msg = fmt.Sprintf("--latency-batch must be between 1 and %d", MaxBatch)
	case c.Drain <= 0:
		msg = "--drain must be positive"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConfig, msg)
}
