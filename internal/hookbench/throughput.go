package hookbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/ctxwait"
	"github.com/darktime/darktime/internal/histogram"
)

// maxErrorKinds bounds the distinct request error messages kept.
const maxErrorKinds = 16

// fullBackoff is the pause before re-posting a batch the server refused
// with 503 (queue full or Redis busy); nothing of such a batch was enqueued.
const fullBackoff = 20 * time.Millisecond

// requestLog collects what the posters saw of their own requests.
type requestLog struct {
	mu       sync.Mutex
	latency  *hdrhistogram.Histogram
	requests int64
	failed   int64 // requests that got neither 202 nor 503
	retried  int64 // 503s re-posted
	errors   map[string]int64
}

func newRequestLog() *requestLog {
	return &requestLog{latency: histogram.New(), errors: map[string]int64{}}
}

func (l *requestLog) record(took time.Duration, failure string, retried bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	histogram.Record(l.latency, took)
	if retried {
		l.retried++
	}
	if failure == "" {
		return
	}
	if !retried {
		l.failed++
	}
	if _, seen := l.errors[failure]; !seen && len(l.errors) >= maxErrorKinds {
		failure = "other"
	}
	l.errors[failure]++
}

// post sends one batch and returns the status code (0 on a transport error)
// and a failure description for anything but 202.
func (r *run) post(ctx context.Context, body []byte) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/hooks", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusAccepted {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, strconv.Itoa(resp.StatusCode) + " " + string(bytes.TrimSpace(msg))
}

// throughput posts Jobs hooks as fast as the server takes them and times
// them from the first post to the last ack.
func (r *run) throughput(ctx context.Context) (*ThroughputResult, error) {
	cfg := r.cfg
	res := &ThroughputResult{Jobs: cfg.Jobs, Batch: cfg.Batch, Posters: cfg.Posters}
	base, err := r.queueStats(ctx)
	if err != nil {
		return res, err
	}
	cpuStart, err := r.sampleCPU()
	if err != nil {
		return res, err
	}
	r.log.Info("throughput phase: posting", "jobs", cfg.Jobs, "batch", cfg.Batch, "posters", cfg.Posters)
	accepted := make([]bool, cfg.Jobs)
	var acceptedN atomic.Int64
	log := newRequestLog()
	batches := (int64(cfg.Jobs) + int64(cfg.Batch) - 1) / int64(cfg.Batch)
	var next atomic.Int64
	postCtx, cancelPosts := context.WithCancel(ctx)
	defer cancelPosts()
	var wg sync.WaitGroup
	start := time.Now()
	var postEnd atomic.Int64
	for range cfg.Posters {
		wg.Go(func() {
			buf := make([]byte, 0, cfg.Batch*200)
			for postCtx.Err() == nil {
				k := next.Add(1) - 1
				if k >= batches {
					break
				}
				first := k * int64(cfg.Batch)
				n := int(min(int64(cfg.Batch), int64(cfg.Jobs)-first))
				for postCtx.Err() == nil {
					buf = appendBatch(buf[:0], first, n, r.threads, time.Now().UnixNano())
					t0 := time.Now()
					code, failure := r.post(postCtx, buf)
					log.record(time.Since(t0), failure, code == http.StatusServiceUnavailable)
					if code == http.StatusAccepted {
						for i := range n {
							accepted[first+int64(i)] = true
						}
						acceptedN.Add(int64(n))
					}
					if code != http.StatusServiceUnavailable {
						break
					}
					ctxwait.Sleep(postCtx, fullBackoff)
				}
			}
			postEnd.Store(time.Now().UnixNano())
		})
	}
	posted := make(chan struct{})
	go func() { wg.Wait(); close(posted) }()
	want := func() (int64, bool) {
		select {
		case <-posted:
			return acceptedN.Load(), true
		default:
			return 0, false
		}
	}
	last, ackEnd, err := r.waitAcked(ctx, base, want, &res.MaxQueued)
	cancelPosts()
	<-posted
	cpuEnd, cerr := r.sampleCPU()
	err = errors.Join(err, cerr)

	res.Requests, res.RequestsFailed, res.RequestsRetried = log.requests, log.failed, log.retried
	if len(log.errors) > 0 {
		res.RequestErrors = log.errors
	}
	res.RequestP50Ms = ms(log.latency.ValueAtQuantile(50))
	res.RequestP99Ms = ms(log.latency.ValueAtQuantile(99))
	res.HooksAccepted = acceptedN.Load()
	res.HooksFailed = int64(cfg.Jobs) - res.HooksAccepted
	res.PostSeconds = time.Duration(postEnd.Load() - start.UnixNano()).Seconds()
	if res.PostSeconds > 0 {
		res.AcceptedJobsPerSec = float64(res.HooksAccepted) / res.PostSeconds
	}
	res.Seconds = ackEnd.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.JobsPerSec = float64(res.HooksAccepted) / res.Seconds
	}
	res.QueueLedger = ledger(base, last, res.MaxQueued)
	res.Processes, res.Client = r.cpuUsage(cpuStart, cpuEnd, res.HooksAccepted)
	if err != nil {
		return res, fmt.Errorf("throughput phase: %w", err)
	}

	r.log.Info("throughput phase: all acked; waiting for events", "jobs_per_s", int64(res.JobsPerSec))
	res.EventsExpected = res.HooksAccepted
	res.EventsReceived, res.EventsDuplicated = r.waitEvents(ctx, accepted, 0)
	res.EventsLost = res.EventsExpected - res.EventsReceived
	res.EventsUnexpected = r.unexpected(accepted, 0)
	h := r.phases[0].merged()
	res.LatencyP50Ms = ms(h.ValueAtQuantile(50))
	res.LatencyP99Ms = ms(h.ValueAtQuantile(99))
	res.LatencyMaxMs = ms(h.Max())
	return res, ctx.Err()
}

// ms is a histogram value in milliseconds.
var ms = histogram.Ms
