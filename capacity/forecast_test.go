package capacity

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

func TestForecastLoad(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                      string
		f                         Forecast
		deliveries, base, extra   float64
		receivedOneNode, hotUsers float64
	}{
		{"uniform, even hot channel", Forecast{PeakUsers: 1000, Channels: 10, Distribution: "uniform", MessagesPerS: 100},
			10_000, 100, 0, 100, 100},
		// base = (110-20)·11/10 = 99 over 11 channels (9 each), +11 on
		// the hottest: 9·1000 + 11·500 deliveries.
		{"hot share", Forecast{PeakUsers: 1000, Channels: 11, Distribution: "hot:0.5", MessagesPerS: 110, HotMessagesPerS: 20},
			14_500, 99, 11, 110, 500},
		{"one channel", Forecast{PeakUsers: 50, Channels: 1, MessagesPerS: 4}, 200, 4, 0, 4, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := c.f
			if err := f.Check(); err != nil {
				t.Fatal(err)
			}
			l := f.newLoad()
			base, extra := f.rates()
			near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want)) }
			if !near(l.deliveries(), c.deliveries) || !near(base, c.base) || !near(extra, c.extra) ||
				!near(l.received(1), c.receivedOneNode) || !near(l.hotSubscribers(), c.hotUsers) {
				t.Errorf("deliveries %v base %v extra %v received %v hot users %v; want %v %v %v %v %v", l.deliveries(), base, extra,
					l.received(1), l.hotSubscribers(), c.deliveries, c.base, c.extra, c.receivedOneNode, c.hotUsers)
			}
			if !near(l.rates[0], f.HotMessagesPerS) {
				t.Errorf("the hottest channel gets %v/s, want %v", l.rates[0], f.HotMessagesPerS)
			}
			// Many nodes: each holds fewer channels' subscribers, never more.
			if l.received(1000) > l.received(2)+1e-9 || l.received(2) > l.received(1)+1e-9 {
				t.Errorf("received per node grows with nodes: %v %v %v", l.received(1), l.received(2), l.received(1000))
			}
		})
	}
	l := (&Forecast{PeakUsers: 1, Channels: 1, MessagesPerS: 1}).newLoad()
	if got := l.nodesWith(0, 2); math.Abs(got-1) > 1e-12 {
		t.Errorf("one user over two nodes is on %v nodes, want 1", got)
	}
}

// plannedForecasts are the golden plans' inputs.
var plannedForecasts = map[string]string{
	"news": `# a news site's evening
peak_users: 2000000
channels: 20000
distribution: zipf:1.1
messages_per_s: 2000
hot_messages_per_s: 20
event_bytes: 300
`,
	"papal-day": `peak_users: 10000000
channels: 50000
distribution: hot:0.3
messages_per_s: 5000
hot_messages_per_s: 5
event_bytes: 500
connects_per_s: 20000
headroom: 0.6
node: {cores: 16, memory_gib: 32, nic_gbps: 25}
`,
}

// TestPlanGolden: the plan of two forecasts with the model fitted to a
// synthetic run, text and JSON (go test -update rewrites them).
func TestPlanGolden(t *testing.T) {
	m, err := Fit([]*Run{syntheticRun(1, 0.002, true), syntheticRun(2, 0.002, true)}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range plannedForecasts {
		f, err := ParseForecast(name+".yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		p, err := MakePlan(m, f)
		if err != nil {
			t.Fatal(err)
		}
		if p.Nodes == 0 || p.Binding == "" || p.Redis == nil || p.Redis.Shards == 0 {
			t.Errorf("%s: nodes %d binding %q redis %+v", name, p.Nodes, p.Binding, p.Redis)
		}
		for _, r := range p.Resources {
			if r.PerNode > r.Limit*(1+1e-9) {
				t.Errorf("%s: %s at %d nodes is %v, over its limit %v", name, r.Name, p.Nodes, r.PerNode, r.Limit)
			}
		}
		var txt, js bytes.Buffer
		if err := p.WriteText(&txt); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		tstest.Golden(t, "testdata/plan-"+name+".golden", txt.Bytes())
		tstest.Golden(t, "testdata/plan-"+name+".json", js.Bytes())
	}
}

func TestParseForecastErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ yaml, want string }{
		{"peak_users: 10\nchannels: 1\nmessages_per_s: 1\nusers: 3\n", `unknown field "users"`},
		{"peak_users: 0\nchannels: 1\nmessages_per_s: 1\n", "peak_users: 0: want a whole number of users"},
		{"peak_users: 1.5\nchannels: 1\nmessages_per_s: 1\n", "peak_users: 1.5"},
		{"peak_users: 10\nchannels: 0\nmessages_per_s: 1\n", "channels: 0: want 1 to 1000000"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 1\ndistribution: pareto\n", `distribution: "pareto": want uniform, zipf[:S] or hot:SHARE`},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 1\ndistribution: zipf:0.5\n", "zipf exponent must be above 1"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 1\ndistribution: hot\n", "want hot:SHARE"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 10\nhot_messages_per_s: 20\n", "is more than messages_per_s"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 100\nhot_messages_per_s: 5\n", "below the average channel's 10"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 1\nheadroom: 1.5\n", "headroom: 1.5: want a share"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: 1\nnode: {cores: -1}\n", "node.cores: -1"},
		{"peak_users: 10\nchannels: 10\nmessages_per_s: .nan\n", "messages_per_s: NaN"},
		{"a: &x 1\nb: *x\n", "anchors (&name) are not supported"},
		{"- 1\n- 2\n", "forecast f.yaml"},
		{"peak_users: 10\nchannels: 10\n", "messages_per_s: 0"},
	} {
		_, err := ParseForecast("f.yaml", []byte(c.yaml))
		if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want ErrInput with %q", c.yaml, err, c.want)
		}
	}
	if _, err := ParseForecast("f.yaml", bytes.Repeat([]byte("#"), 65<<10)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a 65 KiB forecast: %v", err)
	}
}

func FuzzParseForecast(f *testing.F) {
	for _, text := range plannedForecasts {
		f.Add(text)
	}
	f.Add("peak_users: 10\nchannels: 1\nmessages_per_s: 1\n")
	f.Add("peak_users: !!float 1e300\nchannels: 3\nmessages_per_s: 1e9\ndistribution: hot:1\n")
	f.Add("{peak_users: [1, {a: 2}]}")
	f.Fuzz(func(t *testing.T, text string) {
		fc, err := ParseForecast("fuzz.yaml", []byte(text))
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("%q: error %v does not wrap ErrInput", text, err)
			}
			return
		}
		// What parses checks again, and spreads into a load whose rates
		// add up to the forecast's.
		if err := fc.Check(); err != nil {
			t.Fatalf("%q parsed but does not check: %v", text, err)
		}
		l := fc.newLoad()
		var sum float64
		for _, r := range l.rates {
			sum += r
		}
		if math.Abs(sum-fc.MessagesPerS) > 1e-6*fc.MessagesPerS || math.IsNaN(l.deliveries()) {
			t.Fatalf("%q: rates sum to %v, want %v; deliveries %v", text, sum, fc.MessagesPerS, l.deliveries())
		}
	})
}
