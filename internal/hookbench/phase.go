package hookbench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/darktime/darktime/internal/ctxwait"
	"github.com/darktime/darktime/swarm"
)

// Swarm settings of every phase.
const (
	// connectTimeout bounds each subscriber's dial and response head.
	connectTimeout = 10 * time.Second
	// ramp is how many subscribers connect per second: all of them at
	// once, near enough.
	ramp = 10_000
	// swarmDrain is the swarm's drain, after Drain waited for the events:
	// a duplicate right behind the last event is still counted.
	swarmDrain = 100 * time.Millisecond
	// latencyPoll is how often the queue is watched while the latency
	// phase posts: sparingly, as every poll is a few Redis commands on the
	// path being measured.
	latencyPoll = 100 * time.Millisecond
	// fullBackoff is the pause before the throughput phase posts again a
	// batch the server refused with 503 (queue full or Redis busy):
	// nothing of such a batch was enqueued.
	fullBackoff = 20 * time.Millisecond
)

// phase is one swarm run of a Run and what was measured at its stages.
// The swarm calls Stages (the stages used here) and AfterPublish from its
// Run goroutine, so that nothing here needs a lock.
type phase struct {
	r     *run
	name  string
	batch int
	poll  time.Duration // how often the queue is watched while posting
	// swarm sets the publisher of the phase on a swarm config.
	swarm func(*swarm.Config)
	// fill reads the phase's result into res.
	fill func(p *phase, sw *swarm.Result, res *Result)

	cancel    context.CancelFunc
	err       error // the first failure of a stage
	base      queueStats
	last      queueStats
	cpuStart  cpuSample
	cpuEnd    cpuSample
	start     time.Time // first post
	posted    time.Time // last post answered
	acked     time.Time // the poll that saw the last ack
	acking    bool      // waitAcked ran
	stopWatch func() int64
	maxQueued int64
}

func (r *run) throughputPhase() *phase {
	cfg := r.cfg
	return &phase{
		r: r, name: "throughput", batch: cfg.Batch, poll: cfg.PollInterval,
		swarm: func(sc *swarm.Config) {
			sc.MaxRate, sc.Publishers, sc.Events = true, cfg.Posters, int64(cfg.Jobs)
			sc.RetryUnavailable = fullBackoff
			sc.Duration = swarm.MaxDuration // the jobs end it
		},
		fill: fillThroughput,
	}
}

func (r *run) latencyPhase() *phase {
	cfg := r.cfg
	return &phase{
		r: r, name: "latency", batch: cfg.LatencyBatch, poll: latencyPoll,
		swarm: func(sc *swarm.Config) { sc.Rate, sc.Duration = cfg.Rate, cfg.Duration },
		fill:  fillLatency,
	}
}

// swarmConfig is the swarm run of the phase: one subscriber per thread,
// hooks round robin over the threads.
func (p *phase) swarmConfig() swarm.Config {
	cfg := p.r.cfg
	sc := swarm.Config{
		Target:         cfg.Target,
		Profile:        profile(p.batch),
		Clients:        cfg.Subscribers,
		Channels:       cfg.Subscribers,
		Distribution:   swarm.Distribution{Kind: swarm.DistRoundRobin},
		ChannelPrefix:  cfg.ThreadPrefix,
		Ramp:           ramp,
		Settle:         cfg.Settle,
		Drain:          swarmDrain,
		ConnectTimeout: connectTimeout,
		Logger:         cfg.Logger.With("phase", p.name),
	}
	p.swarm(&sc)
	return sc
}

// run runs the phase's swarm and fills its part of res.
func (p *phase) run(ctx context.Context, res *Result) error {
	sc := p.swarmConfig()
	ctx, p.cancel = context.WithCancel(ctx)
	defer p.cancel()
	sc.Stages = p.stage
	sc.AfterPublish = p.afterPublish
	p.r.log.Info(p.name+" phase: connecting subscribers", "subscribers", sc.Clients, "prefix", sc.ChannelPrefix)
	sw, err := swarm.Run(ctx, sc)
	if p.stopWatch != nil {
		p.maxQueued = max(p.maxQueued, p.stopWatch())
	}
	if sw == nil {
		if errors.Is(err, swarm.ErrConfig) || errors.Is(err, swarm.ErrTemplate) {
			err = fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return err
	}
	fillSubscribers(res, sw)
	p.fill(p, sw, res)
	if p.err != nil {
		return fmt.Errorf("%s phase: %w", p.name, p.err)
	}
	return err
}

// fail records the phase's first failure and stops its swarm.
func (p *phase) fail(err error) {
	if p.err == nil {
		p.err = err
	}
	p.cancel()
}

// stage checks the subscribers and starts the phase's measurements at
// the first post.
func (p *phase) stage(st swarm.Stage) {
	cfg := p.r.cfg
	switch st.Name {
	case swarm.StageConnected:
		if st.Open < int64(cfg.Subscribers) {
			p.fail(fmt.Errorf("%d of %d subscribers could not connect to %s", int64(cfg.Subscribers)-st.Open, cfg.Subscribers, cfg.Target))
		}
	case swarm.StagePublish:
		var err error
		if p.base, err = p.r.queueStats(context.Background()); err != nil {
			p.fail(err)
			return
		}
		if p.cpuStart, err = p.r.sampleCPU(); err != nil {
			p.fail(err)
			return
		}
		p.start = time.Now() // the swarm posts as soon as this returns
		p.stopWatch = p.r.watchQueued(context.Background(), p.poll)
		p.r.log.Info(p.name+" phase: posting", "batch", p.batch)
	}
}

// afterPublish waits, once every post was answered, for the queue to ack
// the accepted hooks and then, up to Drain, for their events.
func (p *phase) afterPublish(ctx context.Context, pub swarm.Published) {
	if p.err != nil {
		return
	}
	p.posted = time.Now()
	p.maxQueued = p.stopWatch()
	p.stopWatch = nil
	var err error
	p.acking = true
	p.last, p.acked, err = p.r.waitAcked(ctx, p.base, pub.EventsOK, &p.maxQueued)
	cpuEnd, cerr := p.r.sampleCPU()
	p.cpuEnd = cpuEnd
	if err = errors.Join(err, cerr); err != nil {
		p.fail(err)
		return
	}
	p.r.log.Info(p.name + " phase: all acked; waiting for events")
	deadline := time.Now().Add(p.r.cfg.Drain)
	for pub.Received() < pub.EventsOK && time.Now().Before(deadline) {
		if !ctxwait.Sleep(ctx, 20*time.Millisecond) {
			return
		}
	}
}

// fillSubscribers adds a phase's subscribers to res: the fewest connected
// of any phase, the drops and foreign events of all.
func fillSubscribers(res *Result, sw *swarm.Result) {
	connected := int(sw.Clients.Connected)
	if res.Throughput == nil && res.Latency == nil || connected < res.SubscribersConnected {
		res.SubscribersConnected = connected
	}
	res.SubscribersDropped += int(sw.Clients.Drops)
	for _, kind := range slices.Sorted(maps.Keys(sw.ErrorSamples)) {
		if strings.HasPrefix(kind, "drop_") && res.DropErrorSample == "" {
			res.DropErrorSample = kind + ": " + sw.ErrorSamples[kind]
		}
	}
	ev := sw.Events
	res.ForeignEvents += ev.Foreign + ev.Malformed + ev.OtherType + ev.Outside
}

// delivery is the swarm ledger's account of a phase: every accepted hook
// is owed once, to its thread's subscriber.
func delivery(sw *swarm.Result) Delivery {
	t := sw.Ledger.Totals()
	return Delivery{
		EventsExpected:   t.Credit,
		EventsReceived:   t.Credit - t.Lost,
		EventsLost:       t.Lost,
		EventsDuplicated: sw.Events.Duplicated,
		EventsUnexpected: t.Extra,
	}
}

// requestErrors is the swarm's publish errors, nil when there were none.
func requestErrors(sw *swarm.Result) map[string]int64 {
	if len(sw.Publish.Errors) == 0 {
		return nil
	}
	return sw.Publish.Errors
}

func fillThroughput(p *phase, sw *swarm.Result, res *Result) {
	cfg := p.r.cfg
	t := &ThroughputResult{Jobs: cfg.Jobs, Batch: cfg.Batch, Posters: cfg.Posters}
	res.Throughput = t
	pub := sw.Publish
	t.Requests, t.RequestsFailed, t.RequestErrors = pub.Attempted+pub.Retried, pub.Failed, requestErrors(sw)
	t.RequestsRetried = pub.Retried
	rq := sw.Summary[swarm.HistPublish]
	t.RequestP50Ms, t.RequestP99Ms = rq.P50, rq.P99
	t.HooksAccepted = pub.EventsOK
	t.HooksFailed = int64(cfg.Jobs) - t.HooksAccepted
	if !p.posted.IsZero() {
		t.PostSeconds = p.posted.Sub(p.start).Seconds()
	}
	if t.PostSeconds > 0 {
		t.AcceptedJobsPerSec = float64(t.HooksAccepted) / t.PostSeconds
	}
	if p.acking {
		t.Seconds = p.acked.Sub(p.start).Seconds()
		t.QueueLedger = ledger(p.base, p.last, p.maxQueued)
		t.Processes, t.Client = p.r.cpuUsage(p.cpuStart, p.cpuEnd, t.HooksAccepted)
	}
	if t.Seconds > 0 {
		t.JobsPerSec = float64(t.HooksAccepted) / t.Seconds
	}
	t.Delivery = delivery(sw)
	d := sw.Summary[swarm.HistDelivery]
	t.LatencyP50Ms, t.LatencyP99Ms, t.LatencyMaxMs = d.P50, d.P99, d.Max
}

func fillLatency(p *phase, sw *swarm.Result, res *Result) {
	cfg := p.r.cfg
	interval := requestInterval(cfg)
	l := &LatencyResult{
		RateJobsPerSec:        cfg.Rate,
		OfferedJobsPerSec:     float64(cfg.LatencyBatch) * float64(time.Second) / float64(interval),
		Batch:                 cfg.LatencyBatch,
		OfferedRequestsPerSec: float64(time.Second) / float64(interval),
		DurationSeconds:       cfg.Duration.Seconds(),
	}
	res.Latency = l
	pub := sw.Publish
	l.Requests, l.RequestsFailed, l.RequestErrors = pub.Attempted, pub.Failed, requestErrors(sw)
	l.HooksAccepted, l.HooksFailed = pub.EventsOK, pub.EventsFailed
	rq := sw.Summary[swarm.HistPublish]
	l.RequestP50Ms, l.RequestP99Ms, l.RequestMaxMs = rq.P50, rq.P99, rq.Max
	if s := p.posted.Sub(p.start).Seconds(); !p.posted.IsZero() && s > 0 {
		l.AcceptedJobsPerSec = float64(l.HooksAccepted) / s
	}
	if p.acking {
		l.QueueLedger = ledger(p.base, p.last, p.maxQueued)
		l.Processes, l.Client = p.r.cpuUsage(p.cpuStart, p.cpuEnd, l.HooksAccepted)
	}
	l.Delivery = delivery(sw)
	d := sw.Summary[swarm.HistDelivery]
	l.LatencySamples = d.Count
	l.LatencyP50Ms, l.LatencyP90Ms, l.LatencyP99Ms, l.LatencyP999Ms = d.P50, d.P90, d.P99, d.P999
	l.LatencyMaxMs, l.LatencyMeanMs = d.Max, d.Mean
}
