package runner

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/scenario"
)

// scheduler injects the faults the runner carries out itself (kill,
// pause, Redis restart, a killed Redis master or pub/sub link) at their
// offsets from the first publish; storms and slow consumers are the
// swarm's own (swarm.Config.Storms and Slowdowns).
type scheduler struct {
	r   *Runner
	c   *cluster
	log *faultLog
	ctx context.Context
	// channel names the swarm's channel i (kill_redis_master aims at the
	// hottest one's shard).
	channel func(i int) string

	mu     sync.Mutex
	start  time.Time
	timers []*time.Timer
	wg     sync.WaitGroup
	done   bool
	stopc  chan struct{}
}

// swarmFault reports whether the swarm injects f.
func swarmFault(f scenario.Fault) bool { return f.Storm || f.SlowConsumers != nil }

// begin arms the faults once publishing starts at start.
func (s *scheduler) begin(start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || !s.start.IsZero() {
		return
	}
	s.start = start
	s.stopc = make(chan struct{})
	for _, f := range s.r.s.Faults {
		if swarmFault(f) {
			continue
		}
		f := f
		s.timers = append(s.timers, time.AfterFunc(time.Until(start.Add(f.At.D())), func() {
			s.mu.Lock()
			if s.done {
				s.mu.Unlock()
				return
			}
			s.wg.Add(1)
			s.mu.Unlock()
			defer s.wg.Done()
			s.inject(f)
		}))
	}
}

// finish stops faults not yet due, ends pauses and waits for faults under
// way.
func (s *scheduler) finish() {
	s.mu.Lock()
	s.done = true
	for _, t := range s.timers {
		t.Stop()
	}
	if s.stopc != nil {
		close(s.stopc)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// inject carries out one fault and records it.
func (s *scheduler) inject(f scenario.Fault) {
	rec := report.Fault{Kind: f.Kind(), At: time.Now(), Offset: time.Since(s.start)}
	var err error
	switch {
	case f.KillNode != nil:
		n := *f.KillNode
		rec.Detail = fmt.Sprintf("node %d (%s) killed with SIGKILL", n, s.c.nodeName(n))
		s.r.log.Info("fault: killing a node", "node", n)
		if err = s.c.nodes[n].kill(); err == nil {
			s.c.markKilled(n)
		}
	case f.PauseNode != nil:
		n := *f.PauseNode
		rec.Detail = fmt.Sprintf("node %d (%s) paused with SIGSTOP for %v", n, s.c.nodeName(n), f.For)
		s.r.log.Info("fault: pausing a node", "node", n, "for", f.For)
		if err = s.c.nodes[n].signal(syscall.SIGSTOP); err == nil {
			t := time.NewTimer(f.For.D())
			select {
			case <-t.C:
			case <-s.stopc:
				t.Stop()
			}
			err = s.c.nodes[n].signal(syscall.SIGCONT)
		}
	case f.RestartRedis:
		s.r.log.Info("fault: restarting Redis")
		began := time.Now()
		err = s.c.restartRedis(context.Background())
		rec.Detail = fmt.Sprintf("Redis stopped (SIGTERM) and started again: down %.2fs", time.Since(began).Seconds())
	case f.KillRedisMaster:
		err = s.killRedisMaster(f, &rec)
	case f.KillRedisLink != nil:
		err = s.killRedisLink(*f.KillRedisLink, &rec)
	}
	if err != nil {
		rec.Error = err.Error()
		s.r.log.Warn("fault failed", "kind", rec.Kind, "err", err)
	}
	s.log.add(rec)
}

// swarmFaults are the storms and slow consumers the swarm injected: at
// their planned times, when the run got that far.
func swarmFaults(sc *scenario.Scenario, start, end time.Time) []report.Fault {
	var out []report.Fault
	if start.IsZero() {
		return nil
	}
	for _, f := range sc.Faults {
		if !swarmFault(f) {
			continue
		}
		at := start.Add(f.At.D())
		if at.After(end) {
			continue
		}
		rec := report.Fault{Kind: f.Kind(), At: at, Offset: f.At.D()}
		switch {
		case f.Storm:
			rec.Detail = "every connection cut at once; clients resume with Last-Event-ID"
		case f.SlowConsumers != nil:
			rec.Detail = fmt.Sprintf("%d clients wait %v before each read", f.SlowConsumers.Count, f.SlowConsumers.ReadDelay)
		}
		out = append(out, rec)
	}
	return out
}

func (c *cluster) nodeName(n int) string { return fmt.Sprintf("%s-%d", c.t.Label, n) }

func (c *cluster) markKilled(n int) {
	c.mu.Lock()
	c.killed[n] = true
	c.mu.Unlock()
}
