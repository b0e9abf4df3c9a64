package capacity

import (
	"math"
	"strings"
	"testing"

	"github.com/darktime/darktime/scenario"
)

func syntheticModel(t *testing.T) *Model {
	t.Helper()
	m, err := Fit([]*Run{syntheticRun(1, 0.002, true), syntheticRun(2, 0.002, true)}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestScaleDown: the scaled forecast needs about the target CPU on one
// node (or hits the users' bound), keeps the hottest channel's rate and
// the others' rate per channel, and runs as a scenario that checks.
func TestScaleDown(t *testing.T) {
	t.Parallel()
	m := syntheticModel(t)
	for name, text := range plannedForecasts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseForecast(name, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			o := VerifyOptions{TargetCPU: 0.4, MaxClients: 5000}
			s, err := ScaleDown(m, f, o)
			if err != nil {
				t.Fatal(err)
			}
			g := s.Forecast
			cpu, _, _ := m.predictNode(m.Resource(ServerCPU), g, g.newLoad(), 1)
			if cpu > 0.4+1e-9 || (cpu < 0.38 && g.PeakUsers < 4990) {
				t.Errorf("factor %v: %v users, predicted %v cores, want about 0.4 (or 5,000 users)", s.Factor, g.PeakUsers, cpu)
			}
			_, extra := f.rates()
			_, gExtra := g.rates()
			if math.Abs(extra*s.RateFactor-gExtra) > 1e-9*gExtra {
				t.Errorf("the hottest channel's extra went from %v to %v (rates ×%v)", extra, gExtra, s.RateFactor)
			}
			o.Warmup, o.Measure = 0, 0
			yaml := s.Scenario(m, o, "/tmp/x")
			sc, err := scenario.Parse(yaml, scenario.Options{SkipBinaries: true, FileLimit: 1 << 20, EphemeralPorts: 60000})
			if err != nil {
				t.Fatalf("%v\n%s", err, yaml)
			}
			if sc.Clients.Count != int(g.PeakUsers) || sc.Clients.Channels != g.Channels || len(sc.Phases) != 2 ||
				sc.Target.Broker != scenario.BrokerRedis || sc.Publishers.InFlight != 64 {
				t.Errorf("scenario %+v from\n%s", sc, yaml)
			}
			if strings.HasPrefix(f.Distribution, DistHot) && !strings.HasPrefix(sc.Clients.Distribution, "zipf:") {
				t.Errorf("%s ran as %s", f.Distribution, sc.Clients.Distribution)
			}
		})
	}
}

func TestZipfForShare(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		share float64
		chans int
	}{{0.3, 1000}, {0.6, 50}, {0.9, 10}} {
		s, err := zipfForShare(c.share, c.chans)
		if err != nil {
			t.Fatal(err)
		}
		l := (&Forecast{PeakUsers: 1, Channels: c.chans, Distribution: "zipf:" + fnum(s), MessagesPerS: 1}).newLoad()
		if math.Abs(l.shares[0]-c.share) > 1e-4 {
			t.Errorf("share %v over %d: zipf:%v gives %v", c.share, c.chans, s, l.shares[0])
		}
	}
	if _, err := zipfForShare(0.01, 1000); err == nil {
		t.Error("a 1% hottest channel over 1,000 channels fitted a zipf")
	}
}

// TestCompare: measurements equal to the predictions pass with no error;
// one resource a fifth over its prediction fails alone.
func TestCompare(t *testing.T) {
	t.Parallel()
	m := syntheticModel(t)
	f, err := ParseForecast("news", []byte(plannedForecasts["news"]))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ScaleDown(m, f, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := s.Forecast
	l := g.newLoad()
	x := l.nodeTerms(1)
	pred := func(name string) float64 { v, _, _ := m.predictNode(m.Resource(name), g, l, 1); return v }
	redis, _, _ := m.Resource(RedisCPU).Predict(map[string]float64{TermPublishes: l.total, TermFanout: l.received(1), TermBase: 1})
	run := &Run{Nodes: 1, Redis: true}
	for range 6 {
		run.Windows = append(run.Windows, Window{Deliveries: x[TermDeliveries], Publishes: x[TermPublishes], Received: x[TermReceived],
			Subscribers: x[TermConnections], CPU: pred(ServerCPU), RSS: pred(Memory), FDs: pred(FDs), WriteBps: pred(Network)})
		run.RedisWindows = append(run.RedisWindows, RedisWindow{CPU: redis})
	}
	v := Compare(m, s, run, 0.15)
	if !v.Pass || len(v.Resources) != 5 {
		t.Fatalf("%+v", v)
	}
	for _, c := range v.Resources {
		if math.Abs(c.Error) > 1e-9 {
			t.Errorf("%s: error %v", c.Name, c.Error)
		}
	}
	for i := range run.Windows {
		run.Windows[i].RSS *= 1.2 // measured 20% over: predicted 1/1.2 - 1 = -16.7%
	}
	v = Compare(m, s, run, 0.15)
	if v.Pass {
		t.Error("memory 20% over its prediction passed")
	}
	for _, c := range v.Resources {
		if c.Pass != (c.Name != Memory) {
			t.Errorf("%s: pass %v, error %v", c.Name, c.Pass, c.Error)
		}
	}
}
