package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/procstat"
	"github.com/darktime/darktime/runner/resourcefile"
	"github.com/darktime/darktime/server/statsfile"
)

// ResourcesFile is the name of the per-second resource samples in a
// target's folder (package resourcefile), written for embedded targets.
const ResourcesFile = "resources.json"

// resourceInterval is the time between two samples.
const resourceInterval = time.Second

// statsHeaderBytes is about what a node writes for a GET /stats besides
// the body: its status line and headers.
const statsHeaderBytes = 150

// sampled is one process the sampler reads.
type sampled struct {
	name, role string
	p          *proc
	statsURL   string // nodes: GET /stats read with /proc
	statsBytes int64  // what those reads got so far
}

// resourceSampler reads, once a second, the /proc usage of the nodes and
// Redis processes the run started, and each node's /stats at the same
// moment: what the capacity plan fits its model to.
type resourceSampler struct {
	c     *cluster
	procs []sampled
	file  resourcefile.File

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// sampleResources starts sampling the target's processes; nil when it
// started none (a URL target, nginx).
func (c *cluster) sampleResources() *resourceSampler {
	s := &resourceSampler{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	for i, n := range c.nodes {
		s.procs = append(s.procs, sampled{name: c.nodeName(i), role: resourcefile.RoleNode, p: n, statsURL: c.nodeURLs[i] + "/stats"})
	}
	if c.redis != nil {
		s.procs = append(s.procs, sampled{name: "redis", role: resourcefile.RoleRedis, p: c.redis})
	}
	if c.rc != nil {
		for i, p := range c.rc.procs {
			s.procs = append(s.procs, sampled{name: fmt.Sprintf("redis-%d", i), role: resourcefile.RoleRedis, p: p})
		}
	}
	if len(s.procs) == 0 {
		return nil
	}
	s.file.IntervalS = resourceInterval.Seconds()
	for _, p := range s.procs {
		s.file.Processes = append(s.file.Processes, resourcefile.Process{Name: p.name, Role: p.role, Samples: []resourcefile.Sample{}})
	}
	go s.loop()
	return s
}

func (s *resourceSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(resourceInterval)
	defer t.Stop()
	s.tick()
	for {
		select {
		case <-s.stop:
			s.tick()
			return
		case <-t.C:
			s.tick()
		}
	}
}

// tick reads every process at once, each in its own goroutine: a paused
// node's /stats (which does not answer) delays nobody else's reading.
func (s *resourceSampler) tick() {
	var wg sync.WaitGroup
	samples := make([]*resourcefile.Sample, len(s.procs))
	for i := range s.procs {
		wg.Go(func() { samples[i] = s.read(&s.procs[i]) })
	}
	wg.Wait()
	for i, smp := range samples {
		if smp != nil {
			s.file.Processes[i].Samples = append(s.file.Processes[i].Samples, *smp)
		}
	}
}

// read takes one sample of p: its /stats first, then /proc right after,
// so that the counters and the CPU time are of one moment.
func (s *resourceSampler) read(p *sampled) *resourcefile.Sample {
	pid := p.p.pid()
	if pid == 0 {
		return nil // killed, or being restarted
	}
	var counters *resourcefile.NodeCounters
	if p.statsURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), resourceInterval*8/10)
		b, err := httpGet(ctx, s.c.http, p.statsURL)
		cancel()
		if err == nil {
			p.statsBytes += int64(len(b)) + statsHeaderBytes
		}
		var st statsfile.Stats
		if err == nil && json.Unmarshal(b, &st) == nil {
			t := st.Totals
			counters = &resourcefile.NodeCounters{Published: t.Published, Received: t.Received, Written: t.Written,
				Subscribers: t.Subscribers, Connections: t.Connections, Channels: t.Channels}
		}
	}
	now := time.Now()
	u, err := procstat.Read(pid)
	if err != nil {
		return nil // it exited between the two
	}
	return &resourcefile.Sample{
		T: float64(now.UnixMilli()) / 1e3, PID: pid, CPUSeconds: u.CPU.Seconds(), RSSBytes: u.RSSBytes, FDs: u.FDs,
		WriteBytes: u.WriteBytes, ReadBytes: u.ReadBytes, StatsBytes: p.statsBytes, Node: counters,
	}
}

// halt takes a last sample and stops; safe to call twice, and on nil.
func (s *resourceSampler) halt() {
	if s == nil {
		return
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// finish stops and writes the file into dir.
func (s *resourceSampler) finish(dir string) (string, error) {
	if s == nil {
		return "", nil
	}
	s.halt()
	path := filepath.Join(dir, ResourcesFile)
	return path, writeFile(path, s.file.Write)
}
