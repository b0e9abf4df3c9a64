package capacity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/runner/resourcefile"
	"github.com/darktime/darktime/swarm/resultfile"
)

// ErrInput marks input the plan cannot use: a run without resource
// samples, a forecast that does not parse, flags out of range. The CLI
// exits 2 on it. It is report.ErrInput, so that report's own bad-input
// errors (a corrupt result) are the same kind.
var ErrInput = report.ErrInput

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: capacity: %s", ErrInput, fmt.Sprintf(format, args...))
}

// Files names of a run's folder (darktime run's outputs).
const (
	SwarmFile     = "swarm.json"
	ResourcesFile = "resources.json"
)

// Run is one measured run as the model reads it: per-node windows of the
// resource samples and the Redis windows, up to the SLO's knee.
type Run struct {
	Name string `json:"name"`
	// Nodes served the run; EventBytes is its events' size; Redis says a
	// Redis broker was sampled.
	Nodes      int  `json:"nodes"`
	EventBytes int  `json:"event_bytes"`
	Redis      bool `json:"redis"`
	// Knee is the swarm's knee at the SLO (report.FindKnee); with
	// LoadOptions.CutAtKnee windows after it are left out of the fit.
	Knee report.Knee `json:"knee"`
	// Windows are per node; RedisWindows over every Redis process.
	Windows      []Window      `json:"-"`
	RedisWindows []RedisWindow `json:"-"`
	// Cut is how many windows were left out after the knee.
	Cut int `json:"windows_after_knee"`
}

// Window is one node over a few seconds: rates are per second over the
// window, levels at its end.
type Window struct {
	Node       string
	Start, End float64 // Unix seconds
	// Rates: deliveries written, publishes accepted, events received
	// from the broker, streams accepted; CPU in cores; bytes written/s
	// (but for the sampler's own GET /stats).
	Deliveries, Publishes, Received, Connects float64
	CPU, WriteBps                             float64
	// Levels: open streams, resident bytes, open files.
	Subscribers, RSS, FDs float64
	// PeakDeliveries and PeakPublishes are the node's highest rates in
	// this window or any before it (a Go process keeps the memory its
	// busiest moment took).
	PeakDeliveries, PeakPublishes float64
}

// RedisWindow is every Redis process over a window, with the nodes'
// counters over the same stretch.
type RedisWindow struct {
	Start, End float64
	// CPU in cores over every Redis process; Publishes accepted by every
	// node; Fanout, events the nodes received from the broker (each is
	// one message Redis sent to one node).
	CPU, Publishes, Fanout float64
}

// LoadOptions tune how a run is read.
type LoadOptions struct {
	// Files bounds the files read (report.Files).
	Files report.Files
	// SLOP99Ms and Breach find the knee (report.FindKnee; defaults 50 ms
	// and 3 s); with CutAtKnee the windows after it are left out of the
	// fit (on a shared machine a busy neighbour breaks the SLO long
	// before the server runs out of anything: the cut is asked for).
	SLOP99Ms  float64
	Breach    int
	CutAtKnee bool
	// Window is how many samples make a window (default 5).
	Window int
	// From and To, when set, keep only windows within [From, To] (Unix
	// seconds): a verification's measured phase.
	From, To float64
}

// Defaults of LoadOptions.
const (
	DefaultSLOP99Ms = 50
	DefaultWindow   = 5
)

// LoadRun reads a run's folder (or its swarm.json or resources.json):
// the swarm's result for the knee and the resource samples for the model.
func LoadRun(ctx context.Context, path string, o LoadOptions) (*Run, error) {
	dir := path
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir = filepath.Dir(path)
	}
	res, err := o.Files.Result(ctx, filepath.Join(dir, SwarmFile))
	if err != nil {
		return nil, err
	}
	rf, err := readResources(ctx, o.Files, filepath.Join(dir, ResourcesFile))
	if err != nil {
		return nil, err
	}
	return NewRun(dir, res, rf, o)
}

func readResources(ctx context.Context, fs report.Files, path string) (*resourcefile.File, error) {
	data, err := fs.Read(ctx, path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, badInput("%s: no resource samples: a run of darktime run (this version or later) on an embedded target writes them", path)
		}
		return nil, err
	}
	f, err := resourcefile.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInput, path, err)
	}
	return f, nil
}

// NewRun builds a Run from a result (nil: no knee, and the event size
// unknown) and its resource samples.
func NewRun(name string, res *resultfile.Result, rf *resourcefile.File, o LoadOptions) (*Run, error) {
	if o.SLOP99Ms == 0 {
		o.SLOP99Ms = DefaultSLOP99Ms
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Window < 1 || o.Window > 600 {
		return nil, badInput("window %d samples: want 1 to 600", o.Window)
	}
	var nodes, redis []resourcefile.Process
	for _, p := range rf.Processes {
		if p.Role == resourcefile.RoleNode {
			nodes = append(nodes, p)
		} else {
			redis = append(redis, p)
		}
	}
	if len(nodes) == 0 {
		return nil, badInput("%s: the resource samples have no server node", name)
	}
	run := &Run{Name: name, Nodes: len(nodes), Redis: len(redis) > 0, Knee: report.Knee{LowerBound: true}}
	cut := math.Inf(1)
	if res != nil {
		run.EventBytes = res.Config.SizeBytes
		rep, err := report.Build(report.Inputs{Results: []*resultfile.Result{res}})
		if err != nil {
			return nil, err
		}
		// Without a second that kept the SLO, or with too few seconds of
		// deliveries (a verification's short run), there is no knee and
		// every window counts.
		if k, err := report.FindKnee(rep, o.SLOP99Ms, o.Breach, len(nodes)); err == nil {
			run.Knee = k
			if !k.LowerBound && o.CutAtKnee {
				cut = float64(k.AtSecond + 1)
			}
		} else if !errors.Is(err, report.ErrInput) {
			return nil, err
		}
	}
	keep := func(start, end float64) bool {
		return (o.From == 0 || start >= o.From) && (o.To == 0 || end <= o.To)
	}
	for _, p := range nodes {
		var peakD, peakP float64
		for _, w := range nodeWindows(p, o.Window) {
			peakD, peakP = max(peakD, w.Deliveries), max(peakP, w.Publishes)
			w.PeakDeliveries, w.PeakPublishes = peakD, peakP
			switch {
			case w.End > cut:
				run.Cut++
			case keep(w.Start, w.End):
				run.Windows = append(run.Windows, w)
			}
		}
	}
	if len(redis) > 0 {
		for _, w := range redisWindows(redis, nodes, o.Window) {
			if w.End <= cut && keep(w.Start, w.End) {
				run.RedisWindows = append(run.RedisWindows, w)
			}
		}
	}
	if len(run.Windows) == 0 {
		return nil, badInput("%s: no window of %d samples with the nodes' counters before the knee", name, o.Window)
	}
	return run, nil
}

// nodeWindows cuts a node's samples into windows of w samples; a window
// needs the node's counters at both ends and one PID throughout.
func nodeWindows(p resourcefile.Process, w int) []Window {
	var out []Window
	s := p.Samples
	for i := 0; i+w < len(s); {
		a, b := s[i], s[i+w]
		if a.Node == nil || b.Node == nil || a.PID != b.PID || !samePID(s[i:i+w+1]) {
			i++
			continue
		}
		i += w
		dt := b.T - a.T
		if dt <= 0 {
			continue
		}
		rate := func(x, y uint64) float64 { return float64(y-min(x, y)) / dt }
		out = append(out, Window{
			Node: p.Name, Start: a.T, End: b.T,
			Deliveries: rate(a.Node.Written, b.Node.Written), Publishes: rate(a.Node.Published, b.Node.Published),
			Received: rate(a.Node.Received, b.Node.Received), Connects: rate(a.Node.Connections, b.Node.Connections),
			CPU: (b.CPUSeconds - a.CPUSeconds) / dt, WriteBps: float64(b.WriteBytes-a.WriteBytes-(b.StatsBytes-a.StatsBytes)) / dt,
			Subscribers: float64(b.Node.Subscribers), RSS: float64(b.RSSBytes), FDs: float64(b.FDs),
		})
	}
	return out
}

func samePID(s []resourcefile.Sample) bool {
	for _, x := range s {
		if x.PID != s[0].PID {
			return false
		}
	}
	return true
}

// redisWindows cuts the first Redis process's sample times into windows
// and sums, over each, every Redis process's CPU and every node's
// publishes and received events (counters interpolated at the window's
// ends). A window some process cannot cover is left out.
func redisWindows(redis, nodes []resourcefile.Process, w int) []RedisWindow {
	var out []RedisWindow
	grid := redis[0].Samples
	for i := 0; i+w < len(grid); i += w {
		t0, t1 := grid[i].T, grid[i+w].T
		win := RedisWindow{Start: t0, End: t1}
		ok := t1 > t0
		for _, p := range redis {
			c0, ok0 := at(p.Samples, t0, func(s resourcefile.Sample) (float64, bool) { return s.CPUSeconds, true })
			c1, ok1 := at(p.Samples, t1, func(s resourcefile.Sample) (float64, bool) { return s.CPUSeconds, true })
			ok = ok && ok0 && ok1 && c1 >= c0
			win.CPU += c1 - c0
		}
		for _, p := range nodes {
			for _, f := range []struct {
				dst *float64
				get func(*resourcefile.NodeCounters) uint64
			}{
				{&win.Publishes, func(n *resourcefile.NodeCounters) uint64 { return n.Published }},
				{&win.Fanout, func(n *resourcefile.NodeCounters) uint64 { return n.Received }},
			} {
				get := func(s resourcefile.Sample) (float64, bool) {
					if s.Node == nil {
						return 0, false
					}
					return float64(f.get(s.Node)), true
				}
				v0, ok0 := at(p.Samples, t0, get)
				v1, ok1 := at(p.Samples, t1, get)
				ok = ok && ok0 && ok1 && v1 >= v0
				*f.dst += v1 - v0
			}
		}
		if !ok {
			continue
		}
		dt := t1 - t0
		win.CPU, win.Publishes, win.Fanout = win.CPU/dt, win.Publishes/dt, win.Fanout/dt
		out = append(out, win)
	}
	return out
}

// at interpolates a cumulative value of samples at time t, between the
// samples around it (of one PID, both with the value); false when t is
// outside the samples or a side lacks the value.
func at(s []resourcefile.Sample, t float64, get func(resourcefile.Sample) (float64, bool)) (float64, bool) {
	i, found := slices.BinarySearchFunc(s, t, func(x resourcefile.Sample, t float64) int {
		switch {
		case x.T < t:
			return -1
		case x.T > t:
			return 1
		}
		return 0
	})
	if found {
		return get(s[i])
	}
	if i == 0 || i == len(s) {
		return 0, false
	}
	a, b := s[i-1], s[i]
	va, oka := get(a)
	vb, okb := get(b)
	if !oka || !okb || a.PID != b.PID {
		return 0, false
	}
	return va + (vb-va)*(t-a.T)/(b.T-a.T), true
}
