package hookbench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var errOverrun = errors.New("latency phase overran its planned number of requests")

// latency posts Rate hooks/s for Duration at a constant pace and measures,
// at the subscribers, each hook's time from its intended send to the wire.
func (r *run) latency(ctx context.Context) (*LatencyResult, error) {
	cfg := r.cfg
	interval := requestInterval(cfg)
	planned := int64(plannedRequests(cfg))
	batch := int64(cfg.LatencyBatch)
	first := r.latencyBase()
	res := &LatencyResult{
		RateJobsPerSec:        cfg.Rate,
		OfferedJobsPerSec:     float64(batch) * float64(time.Second) / float64(interval),
		Batch:                 cfg.LatencyBatch,
		OfferedRequestsPerSec: float64(time.Second) / float64(interval),
		DurationSeconds:       cfg.Duration.Seconds(),
	}
	base, err := r.queueStats(ctx)
	if err != nil {
		return res, err
	}
	cpuStart, err := r.sampleCPU()
	if err != nil {
		return res, err
	}
	r.log.Info("latency phase: posting", "rate", cfg.Rate, "batch", cfg.LatencyBatch, "duration", cfg.Duration)

	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{
		Timeout:   requestTimeout,
		Transport: r.client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}))
	header := http.Header{"Content-Type": {"application/json"}}
	url := r.base + "/hooks"
	var next atomic.Int64
	var startNs int64
	targeter := func(t *vegeta.Target) error {
		seq := next.Add(1) - 1
		if seq >= planned {
			return errOverrun
		}
		// The pacer releases request seq at start+(seq+1)*interval and
		// vegeta calls the targeter no earlier: stamping that intended time
		// rather than time.Now keeps a slow server from hiding its delay
		// (coordinated omission). startNs is taken just before vegeta's own
		// start, so latencies err on the long side by microseconds.
		sendNs := startNs + (seq+1)*int64(interval)
		t.Method = http.MethodPost
		// The fragment never goes on the wire; it lets the results loop
		// match vegeta's Result (which echoes the URL) to seq.
		t.URL = url + "#" + strconv.FormatInt(seq, 10)
		t.Body = appendBatch(make([]byte, 0, cfg.LatencyBatch*200), first+seq*batch, cfg.LatencyBatch, r.threads, sendNs)
		t.Header = header
		return nil
	}
	pacer := vegeta.ConstantPacer{Freq: 1, Per: interval}
	stopAttack := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stopAttack()
	accepted := make([]bool, planned*batch)
	log := newRequestLog()
	// Polled sparingly: every poll is a few Redis commands on the path
	// being measured.
	stopWatch := r.watchQueued(ctx, 100*time.Millisecond)
	start := time.Now()
	startNs = start.UnixNano()
	for hit := range atk.Attack(targeter, pacer, cfg.Duration, "hooks") {
		failure := ""
		if hit.Code != http.StatusAccepted {
			failure = strings.ReplaceAll(hit.Error, hit.URL, "/hooks")
			if failure == "" {
				failure = strconv.Itoa(int(hit.Code)) + " " + strings.TrimSpace(string(hit.Body))
			}
		}
		log.record(hit.Latency, failure, false)
		seq, ok := seqFromURL(hit.URL)
		if failure != "" || !ok || seq >= planned {
			continue
		}
		for i := range batch {
			accepted[seq*batch+i] = true
		}
		res.HooksAccepted += batch
	}
	postEnd := time.Now()
	maxQueued := stopWatch()
	res.Requests, res.RequestsFailed = log.requests, log.failed
	res.HooksFailed = log.failed * batch
	if len(log.errors) > 0 {
		res.RequestErrors = log.errors
	}
	res.RequestP50Ms = ms(log.latency.ValueAtQuantile(50))
	res.RequestP99Ms = ms(log.latency.ValueAtQuantile(99))
	res.RequestMaxMs = ms(log.latency.Max())
	if s := postEnd.Sub(start).Seconds(); s > 0 {
		res.AcceptedJobsPerSec = float64(res.HooksAccepted) / s
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	want := func() (int64, bool) { return res.HooksAccepted, true }
	last, _, err := r.waitAcked(ctx, base, want, &maxQueued)
	cpuEnd, cerr := r.sampleCPU()
	res.QueueLedger = ledger(base, last, maxQueued)
	res.Processes, res.Client = r.cpuUsage(cpuStart, cpuEnd, res.HooksAccepted)
	if err = errors.Join(err, cerr); err != nil {
		return res, fmt.Errorf("latency phase: %w", err)
	}

	res.EventsExpected = res.HooksAccepted
	res.EventsReceived, res.EventsDuplicated = r.waitEvents(ctx, accepted, first)
	res.EventsLost = res.EventsExpected - res.EventsReceived
	res.EventsUnexpected = r.unexpected(accepted, first)
	h := r.phases[1].merged()
	res.LatencyP50Ms = ms(h.ValueAtQuantile(50))
	res.LatencyP90Ms = ms(h.ValueAtQuantile(90))
	res.LatencyP99Ms = ms(h.ValueAtQuantile(99))
	res.LatencyP999Ms = ms(h.ValueAtQuantile(99.9))
	res.LatencyMaxMs = ms(h.Max())
	res.LatencyMeanMs = h.Mean() / 1e3
	res.LatencySamples = h.TotalCount()
	return res, ctx.Err()
}

func seqFromURL(u string) (int64, bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return 0, false
	}
	seq, err := strconv.ParseInt(u[i+1:], 10, 64)
	return seq, err == nil && seq >= 0
}
