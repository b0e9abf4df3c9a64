// Package worker runs model-hook jobs: it claims them from the Redis job
// queue, runs each through its model's pipeline of stages, publishes the
// resulting events through the broker and acks the jobs — the DISQUS
// realtime backend, which took formatting off the web tier.
//
// A Pool has one claiming goroutine and Lanes processing goroutines. Jobs
// are assigned to lanes by model and id, so the events of one object are
// published in the order its hooks were claimed. Each lane publishes the
// events of a claimed batch in one broker round trip and acks the batch in
// another. Publishing is idempotent per job (the broker remembers the job's
// key per channel), so a job redelivered after a worker died between
// publish and ack shows once to subscribers.
package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
	"github.com/darktime/darktime/server/statsfile"
)

// Queue is what the pool needs of the job queue (*queue.Queue).
type Queue interface {
	Claim(ctx context.Context, consumer string, max int, block time.Duration) ([]queue.Job, error)
	Ack(ctx context.Context, ids ...string) (int, error)
	Fail(ctx context.Context, job queue.Job, cause error, retry bool) error
}

// Publisher publishes events (broker.Broker is one).
type Publisher interface {
	Publish(ctx context.Context, msgs []broker.Message) ([]eventid.ID, error)
}

// Config configures a Pool; zero values mean the defaults.
type Config struct {
	Queue     Queue            // required
	Publisher Publisher        // required
	Pipelines *pipeline.Config // default pipeline.DefaultConfig()
	// Lanes is the number of processing goroutines (default 2).
	Lanes int
	// Batch is how many jobs one claim takes (default 256).
	Batch int
	// Block is how long a claim waits for jobs (default 1s).
	Block time.Duration
	// Consumer names this pool in the consumer group (default host-pid).
	Consumer string
	// StopTimeout bounds how long Run, once its context ends, keeps
	// finishing the jobs it has claimed (default 10s); jobs still unfinished
	// then are released back to the queue.
	StopTimeout time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	// PublishRetry is how long a lane keeps publishing a batch again, with
	// backoff, while the broker is unavailable (a Redis restart, a Cluster
	// failover: seconds) before it sends the batch's jobs back to the queue
	// (default 10s, or half the queue's visibility timeout when that is
	// shorter and the Queue tells it: past it the jobs are redelivered
	// meanwhile). The jobs stay claimed, so a short
	// outage neither spends their attempts nor reorders an object's
	// events; negative: no retry in the lane.
	PublishRetry time.Duration
	// AfterPublish, if set, runs after a lane published a batch and before
	// it acks it (tests use it to die in the worst place).
	AfterPublish func()
}

// Stats are a pool's counters (this process only), as /stats shows them
// (package statsfile, the leaf of the /stats format). At rest:
//
//	claimed = acked + retried + rejected
//	acked   = dropped + jobs that published events
type Stats = statsfile.WorkerStats

// Pool claims and processes jobs until its context ends.
type Pool struct {
	cfg  Config
	log  *slog.Logger
	seed maphash.Seed

	claimed, acked, retried, rejected, dropped, events, publishErrors atomic.Uint64
	inProcess                                                         atomic.Int64
	routesMu                                                          sync.Mutex
	routes                                                            map[string]uint64
}

// Defaults of Config, used by its zero value and by the flags of
// `darktime worker`.
const (
	DefaultLanes        = 2
	DefaultBatch        = 256
	DefaultStopTimeout  = 10 * time.Second
	DefaultPublishRetry = 10 * time.Second
)

// New checks the config and builds a pool.
func New(cfg Config) (*Pool, error) {
	if cfg.Queue == nil || cfg.Publisher == nil {
		return nil, errors.New("worker: Config.Queue and Config.Publisher are required")
	}
	if cfg.Pipelines == nil {
		cfg.Pipelines = pipeline.DefaultConfig()
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = DefaultLanes
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = host + "-" + strconv.Itoa(os.Getpid())
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.PublishRetry == 0 {
		cfg.PublishRetry = DefaultPublishRetry
		if v, ok := cfg.Queue.(interface{ VisibilityTimeout() time.Duration }); ok {
			cfg.PublishRetry = min(cfg.PublishRetry, v.VisibilityTimeout()/2)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, log: cfg.Logger, seed: maphash.MakeSeed(), routes: map[string]uint64{}}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(p.Collector()); err != nil {
			return nil, fmt.Errorf("worker: register metrics: %w", err)
		}
	}
	return p, nil
}

// Run claims and processes jobs until ctx ends, then finishes what it
// claimed (up to StopTimeout) and returns.
func (p *Pool) Run(ctx context.Context) error {
	// Lanes outlive ctx by up to StopTimeout, to finish claimed jobs.
	laneCtx, cancelLanes := context.WithCancel(context.Background())
	defer cancelLanes()
	lanes := make([]chan []queue.Job, p.cfg.Lanes)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan []queue.Job, 1)
		wg.Add(1)
		go func(in <-chan []queue.Job) {
			defer wg.Done()
			for jobs := range in {
				p.process(laneCtx, jobs)
			}
		}(lanes[i])
	}
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		jobs, err := p.cfg.Queue.Claim(ctx, p.cfg.Consumer, p.cfg.Batch, p.cfg.Block)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.log.Warn("claim failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if len(jobs) == 0 {
			continue
		}
		p.claimed.Add(uint64(len(jobs)))
		p.inProcess.Add(int64(len(jobs)))
		byLane := make([][]queue.Job, len(lanes))
		for _, j := range jobs {
			i := p.lane(j.Payload)
			byLane[i] = append(byLane[i], j)
		}
		for i, js := range byLane {
			if len(js) > 0 {
				lanes[i] <- js
			}
		}
	}
	for _, l := range lanes {
		close(l)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.cfg.StopTimeout):
		cancelLanes() // unfinished jobs fail and go back to the queue
		<-done
	}
	return nil
}

// lane picks a lane from the hook's model and id without a full parse:
// jobs that do not parse go anywhere (they are rejected there).
func (p *Pool) lane(payload []byte) int {
	if p.cfg.Lanes == 1 {
		return 0
	}
	return int(maphash.String(p.seed, objectKey(payload)) % uint64(p.cfg.Lanes))
}

// objectKey finds "model" and "id" cheaply; a miss only costs ordering
// between lanes for malformed jobs, which are rejected anyway.
func objectKey(payload []byte) string {
	s := string(payload)
	return fieldText(s, `"model":`) + "/" + fieldText(s, `"id":`)
}

func fieldText(s, key string) string {
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(s[i+len(key):], " ")
	end := strings.IndexAny(rest, ",}")
	if end < 0 {
		return rest
	}
	return strings.TrimSpace(rest[:end])
}

// process runs one lane's share of a claimed batch.
func (p *Pool) process(ctx context.Context, jobs []queue.Job) {
	defer p.inProcess.Add(-int64(len(jobs)))
	var (
		msgs      []broker.Message
		publishOf = make([]bool, len(jobs)) // job i has events in msgs
		routes    []string
		ack       []string
	)
	for i, job := range jobs {
		hook, err := pipeline.ParseHook(job.Payload)
		if err != nil {
			p.fail(ctx, job, pipeline.Reject(err))
			continue
		}
		hook.JobID = job.ID
		hook.Attempt = job.Attempts
		hook.Received = job.EnqueuedAt
		res, err := p.cfg.Pipelines.Run(ctx, hook)
		if err != nil {
			p.fail(ctx, job, err)
			continue
		}
		if res.Dropped || len(res.Events) == 0 {
			p.dropped.Add(1)
			ack = append(ack, job.ID)
			continue
		}
		key := job.OriginalID
		if key == "" {
			key = job.ID
		}
		for _, ev := range res.Events {
			msgs = append(msgs, broker.Message{
				Channel: ev.Channel,
				Body:    sse.AppendBody(nil, ev.Event, ev.Data),
				Key:     "job:" + key,
			})
			routes = append(routes, route(ev.Channel))
		}
		publishOf[i] = true
	}
	if len(msgs) > 0 {
		if err := p.publish(ctx, msgs); err != nil {
			p.log.Warn("publish failed; jobs go back to the queue", "err", err, "events", len(msgs))
			for i, job := range jobs {
				if publishOf[i] {
					p.fail(ctx, job, fmt.Errorf("publish: %w", err))
				}
			}
			p.ackAll(ctx, ack)
			return
		}
		p.events.Add(uint64(len(msgs)))
		p.routesMu.Lock()
		for _, r := range routes {
			p.routes[r]++
		}
		p.routesMu.Unlock()
		if p.cfg.AfterPublish != nil {
			p.cfg.AfterPublish()
		}
		for i, job := range jobs {
			if publishOf[i] {
				ack = append(ack, job.ID)
			}
		}
	}
	p.ackAll(ctx, ack)
}

// publish publishes a lane's events; while the broker is unavailable it
// tries again with backoff, for up to PublishRetry. Publishing again is
// safe: each event carries its job's key, and the broker skips a repeat
// (the events of a batch some shards took, say).
func (p *Pool) publish(ctx context.Context, msgs []broker.Message) error {
	deadline := time.Now().Add(p.cfg.PublishRetry)
	backoff := 50 * time.Millisecond
	for {
		_, err := p.cfg.Publisher.Publish(ctx, msgs)
		if err == nil {
			return nil
		}
		p.publishErrors.Add(1)
		if !transient(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		p.log.Debug("publish failed; trying again", "err", err, "events", len(msgs), "backoff", backoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// transient reports a publish error that another try may not have: the
// broker unreachable or silent, or a batch some shards refused for that
// reason.
func transient(err error) bool {
	var partial *broker.PartialError
	if errors.As(err, &partial) {
		for _, e := range partial.Errs {
			if e != nil && !transient(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown)
}

func (p *Pool) ackAll(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	if n, err := p.cfg.Queue.Ack(ctx, ids...); err != nil {
		// Not acked (on a partitioned queue, some may be: n of them): the
		// others come back after the visibility timeout and their
		// publishes are deduplicated.
		p.acked.Add(uint64(n))
		p.log.Warn("ack failed; jobs will be redelivered", "err", err, "jobs", len(ids), "acked", n)
		return
	}
	p.acked.Add(uint64(len(ids)))
}

// fail sends a job back (transient error) or to the dead letters (reject).
func (p *Pool) fail(ctx context.Context, job queue.Job, err error) {
	retry := !pipeline.IsReject(err)
	if ferr := p.cfg.Queue.Fail(ctx, job, err, retry); ferr != nil {
		p.log.Warn("fail job", "job", job.ID, "err", ferr, "cause", err)
		return
	}
	if retry {
		p.retried.Add(1)
	} else {
		p.rejected.Add(1)
	}
}

// route names a channel's route: the part before the first ':'
// ("thread:42" → "thread").
func route(channel string) string {
	if i := strings.IndexByte(channel, ':'); i > 0 {
		return channel[:i]
	}
	return channel
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	s := Stats{
		Claimed:       p.claimed.Load(),
		Acked:         p.acked.Load(),
		Retried:       p.retried.Load(),
		Rejected:      p.rejected.Load(),
		Dropped:       p.dropped.Load(),
		Events:        p.events.Load(),
		PublishErrors: p.publishErrors.Load(),
		InProcess:     p.inProcess.Load(),
		EventsByRoute: map[string]uint64{},
	}
	p.routesMu.Lock()
	for r, n := range p.routes {
		s.EventsByRoute[r] = n
	}
	p.routesMu.Unlock()
	return s
}

// Collector exposes the pool's counters to Prometheus.
func (p *Pool) Collector() prometheus.Collector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("darktime_worker_"+name, help, labels, nil)
	}
	type counter struct {
		d *prometheus.Desc
		v *atomic.Uint64
	}
	counters := []counter{
		{desc("jobs_claimed_total", "Jobs claimed from the queue."), &p.claimed},
		{desc("jobs_acked_total", "Jobs acked (published or dropped)."), &p.acked},
		{desc("jobs_retried_total", "Jobs sent back to the queue after a transient error."), &p.retried},
		{desc("jobs_rejected_total", "Jobs dead-lettered by a stage (no retry)."), &p.rejected},
		{desc("jobs_dropped_total", "Jobs a stage dropped (acked, nothing published)."), &p.dropped},
		{desc("publish_errors_total", "Failed publishes of a lane's batch."), &p.publishErrors},
	}
	byRoute := desc("events_published_total", "Events published, by route (channel prefix).", "route")
	inProcess := desc("jobs_in_process", "Jobs claimed and not yet finished.")
	return collectorFunc{
		describe: func(ch chan<- *prometheus.Desc) {
			for _, c := range counters {
				ch <- c.d
			}
			ch <- byRoute
			ch <- inProcess
		},
		collect: func(ch chan<- prometheus.Metric) {
			for _, c := range counters {
				ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v.Load()))
			}
			for r, n := range p.Stats().EventsByRoute {
				ch <- prometheus.MustNewConstMetric(byRoute, prometheus.CounterValue, float64(n), r)
			}
			ch <- prometheus.MustNewConstMetric(inProcess, prometheus.GaugeValue, float64(p.inProcess.Load()))
		},
	}
}

type collectorFunc struct {
	describe func(chan<- *prometheus.Desc)
	collect  func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { c.describe(ch) }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
