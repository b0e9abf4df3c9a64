package capacity

import (
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/runner/resourcefile"
)

// truth are the coefficients synthetic runs are made with.
var truth = map[string]map[string]float64{
	ServerCPU: {TermDeliveries: 9e-6, TermPublishes: 120e-6, TermReceived: 15e-6, TermConnects: 300e-6, TermConnections: 2e-6, TermBusy: 0.05, TermBase: 0.02},
	Memory:    {TermConnections: 7 * 1024, TermPeakDeliveries: 150, TermPeakPublishes: 5000, TermBase: 20 << 20},
	FDs:       {TermConnections: 1, TermBase: 25},
	Network:   {TermDeliveries: 58, TermPublishes: 528, TermConnects: 180, TermConnections: 3, TermBase: 80_000},
	RedisCPU:  {TermPublishes: 70e-6, TermFanout: 20e-6, TermBusy: 0.01, TermBase: 0.003},
}

// truthScale is the busy term's scale in the synthetic runs: the server's
// over publishes + received, Redis' over publishes.
const truthScale = 50

// syntheticRun makes a ramp's windows: a connect ramp, then steps of the
// four shapes of scenarios/capacity-ramp.yaml, every value from truth
// plus normal noise of sd noise × a typical value of the resource.
func syntheticRun(seed uint64, noise float64, separate bool) *Run {
	rng := rand.New(rand.NewPCG(seed, 7))
	jitter := func(v, typical float64) float64 { return v + noise*typical*rng.NormFloat64() }
	const event = 200
	r := &Run{Name: "synthetic", Nodes: 1, EventBytes: event, Redis: true}
	value := func(res string, x map[string]float64) float64 {
		var v float64
		for _, t := range slices.Sorted(maps.Keys(truth[res])) { // one order: golden files
			v += truth[res][t] * x[t]
		}
		return v
	}
	var peakD, peakP float64
	add := func(d, p, rx, c, subs float64) {
		peakD, peakP = max(peakD, d), max(peakP, p)
		if !separate {
			rx = p // every channel subscribed, one node: received = publishes
		}
		x := map[string]float64{TermDeliveries: d, TermPublishes: p, TermReceived: rx, TermConnects: c, TermConnections: subs,
			TermPeakDeliveries: peakD, TermPeakPublishes: peakP, TermBusy: busy(p+rx, truthScale), TermBase: 1}
		w := Window{Deliveries: d, Publishes: p, Received: rx, Connects: c, Subscribers: subs, PeakDeliveries: peakD, PeakPublishes: peakP,
			CPU: jitter(value(ServerCPU, x), 0.3), RSS: jitter(value(Memory, x), 80<<20), FDs: math.Round(jitter(value(FDs, x), 1000)),
			WriteBps: jitter(value(Network, x), 1e6) + d*event + p*event}
		r.Windows = append(r.Windows, w)
		fan := rx // one node: each received event is one message Redis sent
		r.RedisWindows = append(r.RedisWindows, RedisWindow{Publishes: p, Fanout: fan,
			CPU: jitter(value(RedisCPU, map[string]float64{TermPublishes: p, TermFanout: fan, TermBusy: busy(p, truthScale), TermBase: 1}), 0.1)})
	}
	for i := 1; i <= 6; i++ {
		add(0, 0, 0, 200, float64(1000*i))
	}
	for _, level := range []float64{1, 2, 3} {
		for range 4 {
			add(7.5*300*level, 300*level, 0.55*300*level, 0, 6000)           // spread
			add(1400*10*level, 10*level, 10*level, 0, 6000)                  // hot0
			add(0, 500*level, 0, 0, 6000)                                    // empty
			add(200*50*level, 50*level, 50*level, 0, 6000)                   // hot4
			add(7.5*100*level, 100*level, 0.6*100*level, 50, 5500+200*level) // a few reconnects
		}
	}
	return r
}

func TestFitRecoversCoefficients(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		noise float64
		runs  int
	}{{"exact", 0, 1}, {"noisy, one run", 0.002, 1}, {"noisy, three runs", 0.002, 3}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var runs []*Run
			for i := range c.runs {
				runs = append(runs, syntheticRun(uint64(i+1), c.noise, true))
			}
			m, err := Fit(runs, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Resources) != 5 {
				t.Fatalf("%d resources, want 5", len(m.Resources))
			}
			for _, res := range m.Resources {
				want := truth[res.Name]
				if _, ok := want[TermBusy]; ok && res.BusyScale != truthScale {
					t.Errorf("%s: busy scale %v, want %v", res.Name, res.BusyScale, truthScale)
				}
				if len(res.Terms) != len(want) {
					t.Errorf("%s: terms %v, want all of %v (notes %v)", res.Name, res.Terms, want, res.Notes)
				}
				for _, term := range res.Terms {
					w := want[term.Name]
					tol := 4*term.SE + 1e-6*math.Abs(w)
					if math.Abs(term.Coef-w) > tol {
						t.Errorf("%s: %s = %g ± %g, want %g", res.Name, term.Name, term.Coef, term.SE, w)
					}
					if c.runs > 1 && c.noise > 0 && term.Spread == 0 {
						t.Errorf("%s: %s: no spread over %d noisy runs", res.Name, term.Name, c.runs)
					}
				}
			}
		})
	}
}

// TestFitMergesWhatCannotBeToldApart: with received = publishes in every
// window, the publishes term goes and the note says why; a term fitted
// below zero is left out.
func TestFitMergesWhatCannotBeToldApart(t *testing.T) {
	t.Parallel()
	m, err := Fit([]*Run{syntheticRun(1, 0.01, false)}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cpu := m.Resource(ServerCPU)
	if cpu.Coef(TermPublishes) != 0 || len(cpu.Notes) == 0 || !strings.Contains(cpu.Notes[0], "publishes/s") {
		t.Fatalf("server_cpu %s, notes %q: want publishes merged into received", cpu, cpu.Notes)
	}
	if got, want := cpu.Coef(TermReceived), truth[ServerCPU][TermPublishes]+truth[ServerCPU][TermReceived]; math.Abs(got-want) > 0.1*want {
		t.Errorf("received carries %g, want the sum %g", got, want)
	}
	redis := m.Resource(RedisCPU)
	if redis.Coef(TermPublishes) != 0 || len(redis.Notes) == 0 {
		t.Errorf("redis_cpu %s, notes %q: want publishes merged into fanout", redis, redis.Notes)
	}

	neg := syntheticRun(2, 0, true)
	for i := range neg.Windows {
		neg.Windows[i].FDs -= 0.5 * neg.Windows[i].Publishes / 1000 // a spurious negative slope
	}
	m, err = Fit([]*Run{neg}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fds := m.Resource(FDs); len(fds.Notes) != 0 || fds.Coef(TermConnections) < 0.99 {
		t.Errorf("fds %s, notes %q", fds, fds.Notes)
	}
}

func TestFitRefusesMixedBrokers(t *testing.T) {
	t.Parallel()
	a, b := syntheticRun(1, 0, true), syntheticRun(2, 0, true)
	b.Redis = false
	if _, err := Fit([]*Run{a, b}, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "one broker kind") {
		t.Errorf("got %v, want a refusal of mixed brokers", err)
	}
	if _, err := Fit(nil, LoadOptions{}); err == nil {
		t.Error("no runs fitted")
	}
}

// TestWindows cuts samples into windows: rates from the counters, CPU in
// cores, levels at the end; a PID change (a restart) breaks a window; the
// Redis windows sum the nodes' counters interpolated at its times.
func TestWindows(t *testing.T) {
	t.Parallel()
	node := resourcefile.Process{Name: "n-0", Role: resourcefile.RoleNode}
	redis := resourcefile.Process{Name: "redis", Role: resourcefile.RoleRedis}
	for i := range 21 {
		ti := 1000 + float64(i)
		pid := 10
		if i >= 16 {
			pid = 11 // restarted: its counters start again
		}
		node.Samples = append(node.Samples, resourcefile.Sample{T: ti, PID: pid, CPUSeconds: 0.3 * float64(i), RSSBytes: int64(1000 * i), FDs: 100 + i,
			WriteBytes: int64(5000 * i), Node: &resourcefile.NodeCounters{Written: uint64(2000 * i), Published: uint64(100 * i), Received: uint64(50 * i),
				Connections: uint64(10 * i), Subscribers: int64(10 * i)}})
		redis.Samples = append(redis.Samples, resourcefile.Sample{T: ti + 0.5, PID: 20, CPUSeconds: 0.05 * float64(i)})
	}
	rf := &resourcefile.File{IntervalS: 1, Processes: []resourcefile.Process{node, redis}}
	r, err := NewRun("t", nil, rf, LoadOptions{Window: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Windows) != 3 {
		t.Fatalf("%d windows, want 3 (the restart at sample 16 breaks the fourth)", len(r.Windows))
	}
	w := r.Windows[1]
	if w.Deliveries != 2000 || w.Publishes != 100 || w.Received != 50 || w.Connects != 10 || math.Abs(w.CPU-0.3) > 1e-9 ||
		w.WriteBps != 5000 || w.Subscribers != 100 || w.RSS != 10000 || w.FDs != 110 {
		t.Errorf("window %+v", w)
	}
	if len(r.RedisWindows) == 0 {
		t.Fatal("no Redis windows")
	}
	rw := r.RedisWindows[0]
	if math.Abs(rw.CPU-0.05) > 1e-9 || math.Abs(rw.Publishes-100) > 1e-9 || math.Abs(rw.Fanout-50) > 1e-9 {
		t.Errorf("redis window %+v", rw)
	}
	if _, err := NewRun("t", nil, &resourcefile.File{IntervalS: 1, Processes: []resourcefile.Process{redis}}, LoadOptions{}); err == nil {
		t.Error("samples without a node made a run")
	}
}

// TestModelRoundTrip: a saved model reads back to the same predictions;
// a model file that is not one is bad input.
func TestModelRoundTrip(t *testing.T) {
	t.Parallel()
	m, err := Fit([]*Run{syntheticRun(1, 0.002, true), syntheticRun(2, 0.002, true)}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := dir + "/model.json"
	if err := report.WriteFile(path, m.WriteJSON); err != nil {
		t.Fatal(err)
	}
	back, err := ReadModel(t.Context(), report.Files{}, path)
	if err != nil {
		t.Fatal(err)
	}
	x := map[string]float64{TermDeliveries: 1e4, TermPublishes: 300, TermReceived: 200, TermConnections: 5000, TermBase: 1}
	for _, r := range m.Resources {
		a, _, _ := r.Predict(x)
		b, _, _ := back.Resource(r.Name).Predict(x)
		if a != b {
			t.Errorf("%s: %v, read back %v", r.Name, a, b)
		}
	}
	for _, bad := range []string{`{"schema":"darktime.capacity-model/v0"}`, `{"schema":"darktime.capacity-model/v1","resources":[]}`, `[`} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadModel(t.Context(), report.Files{}, path); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v, want ErrInput", bad, err)
		}
	}
}
