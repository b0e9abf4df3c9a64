package hookbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/darktime/darktime/internal/procstat"
)

// requestTimeout bounds one request to the server.
const requestTimeout = 30 * time.Second

// queueStats is the part of GET /queue/stats a run reads.
type queueStats struct {
	Enqueued     int64 `json:"enqueued"`
	Acked        int64 `json:"acked"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"dead_lettered"`
	Depth        int64 `json:"depth"`
	InFlight     int64 `json:"in_flight"`
	Imbalance    int64 `json:"imbalance"`
}

func (r *run) queueStats(ctx context.Context) (queueStats, error) {
	var st queueStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/queue/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("GET /queue/stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, fmt.Errorf("GET /queue/stats: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /queue/stats answered %d: %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("GET /queue/stats: %w", err)
	}
	return st, nil
}

// cpuSample is the CPU time of the measured processes and of this one.
type cpuSample struct {
	at    time.Time
	procs []time.Duration
	self  time.Duration
}

func (r *run) sampleCPU() (cpuSample, error) {
	s := cpuSample{at: time.Now(), self: procstat.Self(), procs: make([]time.Duration, len(r.cfg.Processes))}
	for i, p := range r.cfg.Processes {
		tree, err := procstat.Tree(p.PID)
		if err != nil {
			return s, fmt.Errorf("measure %s: %w", p.Name, err)
		}
		s.procs[i] = tree.CPU
	}
	return s, nil
}

// cpuUsage turns two samples into per-process figures for jobs jobs.
func (r *run) cpuUsage(from, to cpuSample, jobs int64) (procs []ProcessCPU, client ProcessCPU) {
	span := to.at.Sub(from.at).Seconds()
	usage := func(name string, pid int, d time.Duration) ProcessCPU {
		u := ProcessCPU{Name: name, PID: pid, CPUSeconds: d.Seconds()}
		if jobs > 0 {
			u.MicrosPerJob = d.Seconds() * 1e6 / float64(jobs)
		}
		if span > 0 {
			u.Cores = d.Seconds() / span
		}
		return u
	}
	for i, p := range r.cfg.Processes {
		procs = append(procs, usage(p.Name, p.PID, to.procs[i]-from.procs[i]))
	}
	return procs, usage("bench", 0, to.self-from.self)
}

// waitAcked polls the queue until acked has grown since base by want,
// recording the most jobs queued or in flight it saw. It fails when acked
// stops moving for StallTimeout.
func (r *run) waitAcked(ctx context.Context, base queueStats, want int64, maxQueued *int64) (queueStats, time.Time, error) {
	lastAcked, lastMove := base.Acked, time.Now()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		st, err := r.queueStats(ctx)
		now := time.Now()
		if err != nil {
			return st, now, err
		}
		*maxQueued = max(*maxQueued, st.Depth+st.InFlight)
		if st.Acked-base.Acked >= want {
			return st, now, nil
		}
		if st.Acked != lastAcked {
			lastAcked, lastMove = st.Acked, now
		} else if now.Sub(lastMove) > r.cfg.StallTimeout {
			return st, now, fmt.Errorf("acked stuck at %d for %s (depth %d, in flight %d, dead-lettered %d): are workers running?",
				st.Acked-base.Acked, r.cfg.StallTimeout, st.Depth, st.InFlight, st.DeadLettered-base.DeadLettered)
		}
		select {
		case <-ctx.Done():
			return st, now, ctx.Err()
		case <-tick.C:
		}
	}
}

// ledger is the queue's change from base to last.
func ledger(base, last queueStats, maxQueued int64) QueueLedger {
	return QueueLedger{
		Acked:        last.Acked - base.Acked,
		Retried:      last.Retried - base.Retried,
		DeadLettered: last.DeadLettered - base.DeadLettered,
		Imbalance:    last.Imbalance,
		MaxQueued:    maxQueued,
	}
}

// watchQueued polls the queue every interval until the returned stop is
// called, which returns the most jobs queued or in flight seen.
func (r *run) watchQueued(ctx context.Context, interval time.Duration) (stop func() int64) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan int64, 1)
	go func() {
		var most int64
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if st, err := r.queueStats(ctx); err == nil {
				most = max(most, st.Depth+st.InFlight)
			}
			select {
			case <-ctx.Done():
				done <- most
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		cancel()
		return <-done
	}
}
