package capacity

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// VerifyOptions tune how a forecast is scaled down and run here.
type VerifyOptions struct {
	// TargetCPU is the server CPU (cores) the scaled forecast is chosen
	// to need on one node (default 0.5: room for the swarm and Redis on
	// a 2-core machine).
	TargetCPU float64
	// MaxClients bounds the scaled users (default the most connections a
	// fitted run held, at most 8,000: the check stays where the model was
	// measured).
	MaxClients int
	// MaxPublishes bounds the scaled messages/s (default 3,000).
	MaxPublishes float64
	// Warmup runs before the measured stretch, Measure is measured
	// (defaults 20 s and 60 s).
	Warmup, Measure time.Duration
	// Tolerance is the largest |predicted - measured| / measured that
	// passes (default 0.15).
	Tolerance float64
}

// Defaults of VerifyOptions.
const (
	DefaultTargetCPU    = 0.5
	DefaultMaxClients   = 8000
	DefaultMaxPublishes = 3000
	DefaultWarmup       = 20 * time.Second
	DefaultMeasure      = 60 * time.Second
	DefaultTolerance    = 0.15
	// minBase is the least base rate a scenario can publish at
	// (publishers.rate must be above 0).
	minBase = 0.5
)

// defaults fills in the options; m, when set, bounds the users by the
// most connections its runs held.
func (o *VerifyOptions) defaults(m *Model) error {
	if o.MaxClients == 0 && m != nil && m.MaxConnections >= 100 {
		o.MaxClients = min(DefaultMaxClients, int(m.MaxConnections))
	}
	if o.TargetCPU == 0 {
		o.TargetCPU = DefaultTargetCPU
	}
	if o.MaxClients == 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.MaxPublishes == 0 {
		o.MaxPublishes = DefaultMaxPublishes
	}
	if o.Warmup == 0 {
		o.Warmup = DefaultWarmup
	}
	if o.Measure == 0 {
		o.Measure = DefaultMeasure
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	switch {
	case !(o.TargetCPU > 0 && o.TargetCPU <= 64):
		return badInput("--verify-cpu %v: want cores above 0", o.TargetCPU)
	case o.MaxClients < 100 || o.MaxClients > 1_000_000:
		return badInput("--verify-clients %d: want 100 to 1,000,000", o.MaxClients)
	case !(o.MaxPublishes >= 1 && o.MaxPublishes <= 1e6):
		return badInput("max publishes %v: want 1 to 1e6 a second", o.MaxPublishes)
	case o.Warmup < 5*time.Second || o.Measure < 10*time.Second || o.Warmup+o.Measure > 24*time.Hour:
		return badInput("--verify-duration %v (warm-up %v): want at least 10s measured after at least 5s", o.Measure, o.Warmup)
	case !(o.Tolerance > 0 && o.Tolerance < 10):
		return badInput("--tolerance %v: want a share above 0", o.Tolerance)
	}
	return nil
}

// Scaled is a forecast scaled down to one node of this machine.
type Scaled struct {
	// Factor scales the users and channels; the hottest channel keeps
	// its rate and every other channel its rate per channel, times
	// RateFactor (above 1 only when the users' bound kept the node from
	// the target CPU).
	Factor     float64   `json:"factor"`
	RateFactor float64   `json:"rate_factor"`
	Forecast   *Forecast `json:"forecast"`
	Notes      []string  `json:"notes,omitempty"`
}

// scaleAt scales f by k: users and channels × k, the base rate with the
// channels (each channel keeps its rate), the hottest channel's extra
// kept; a hot:SHARE distribution becomes the zipf that gives its hottest
// channel that share over the scaled channels (the swarm's distributions).
func scaleAt(f *Forecast, k, rate float64) (*Forecast, []string, error) {
	var notes []string
	g := *f
	g.PeakUsers = math.Max(1, math.Round(f.PeakUsers*k))
	g.Channels = max(1, int(math.Round(float64(f.Channels)*k)))
	g.ConnectsPerS = 0
	base, extra := f.rates()
	base *= float64(g.Channels) / float64(f.Channels) * rate
	extra *= rate
	if base < minBase {
		notes = append(notes, fmt.Sprintf("the other channels' rate raised to %v/s (a scenario publishes at least that)", minBase))
		base = minBase
	}
	if g.Channels == 1 {
		base, extra = base+extra, 0
	}
	g.MessagesPerS = base + extra
	g.HotMessagesPerS = base/float64(g.Channels) + extra
	kind, arg, _ := parseDist(f.Distribution)
	if kind == DistHot {
		s, err := zipfForShare(arg, g.Channels)
		if err != nil {
			return nil, nil, err
		}
		g.Distribution = fmt.Sprintf("zipf:%.4f", s)
		notes = append(notes, fmt.Sprintf("%s runs as %s over %d channels: the swarm's distribution whose hottest channel has that share", f.Distribution, g.Distribution, g.Channels))
	}
	return &g, notes, g.Check()
}

// zipfForShare is the exponent S whose zipf over c channels gives the
// first channel share h, by bisection on S in (1, 10].
func zipfForShare(h float64, c int) (float64, error) {
	p0 := func(s float64) float64 {
		var t float64
		for k := range c {
			t += math.Pow(float64(k+1), -s)
		}
		return 1 / t
	}
	lo, hi := 1.0001, 10.0
	if c == 1 || h > p0(hi) {
		return hi, nil
	}
	if h < p0(lo) {
		return 0, badInput("distribution hot:%v cannot be run here: over %d channels the flattest zipf the swarm runs gives the hottest %s", h, c, pct(p0(lo)))
	}
	for range 60 {
		mid := (lo + hi) / 2
		if p0(mid) < h {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2, nil
}

// ScaleDown picks the largest factor (at most 1) at which the forecast
// needs about TargetCPU of server CPU on one node, with its users, its
// messages/s and Redis (at most TargetCPU too) within the options' bounds.
// When the users' bound stops it short of the target, every rate is
// raised together until the node needs the target (a node of a few
// thousand users at the forecast's rates would measure little but the
// runtime's own cost).
func ScaleDown(m *Model, f *Forecast, o VerifyOptions) (*Scaled, error) {
	if err := o.defaults(m); err != nil {
		return nil, err
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	fitsAt := func(k, rate float64) bool {
		g, _, err := scaleAt(f, k, rate)
		if err != nil {
			return false
		}
		if g.PeakUsers > float64(o.MaxClients) || g.MessagesPerS > o.MaxPublishes {
			return false
		}
		l := g.newLoad()
		if v, _, _ := m.predictNode(m.Resource(ServerCPU), g, l, 1); v > o.TargetCPU {
			return false
		}
		if r := m.Resource(RedisCPU); r != nil {
			if v, _, _ := r.Predict(map[string]float64{TermPublishes: l.total, TermFanout: l.received(1), TermBase: 1}); v > o.TargetCPU {
				return false
			}
		}
		return true
	}
	// largest is the largest x in (0, top] for which ok(x), by bisection
	// (ok falls from true to false as x grows).
	largest := func(top float64, ok func(float64) bool) float64 {
		if ok(top) {
			return top
		}
		lo, hi := 0.0, top
		for range 60 {
			mid := (lo + hi) / 2
			if ok(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		return lo
	}
	k := largest(1, func(k float64) bool { return fitsAt(k, 1) })
	rate := 1.0
	if g, _, err := scaleAt(f, k, 1); err == nil && g.PeakUsers >= 0.99*float64(o.MaxClients) {
		if cpu, _, _ := m.predictNode(m.Resource(ServerCPU), g, g.newLoad(), 1); cpu < 0.9*o.TargetCPU {
			rate = largest(1000, func(r float64) bool { return r >= 1 && fitsAt(k, r) })
			rate = max(rate, 1)
		}
	}
	g, notes, err := scaleAt(f, k, rate)
	if err != nil {
		return nil, err
	}
	if rate > 1 {
		notes = append(notes, fmt.Sprintf("every rate ×%.3g: at %s users (the bound) the forecast's rates would load the node with little but the runtime's own cost", rate, num(g.PeakUsers)))
	}
	if sf, sg := f.newLoad().shares[0], g.newLoad().shares[0]; math.Abs(sf-sg) > 0.01 {
		notes = append(notes, fmt.Sprintf("over %d channels the hottest holds %s of the users (%s in the forecast)", g.Channels, pct(sg), pct(sf)))
	}
	if g.PeakUsers < 100 {
		return nil, badInput("scaled to %s users the forecast keeps too little to measure: the hottest channel's %s messages/s alone nearly fill a node here (raise --verify-cpu)", num(g.PeakUsers), num(f.HotMessagesPerS))
	}
	return &Scaled{Factor: k, RateFactor: rate, Forecast: g, Notes: notes}, nil
}

// Scenario is the scaled forecast as a darktime scenario: one embedded
// node (on a private Redis when the model was fitted on one), the users
// arriving, a warm-up and the measured stretch at the forecast's rates.
func (s *Scaled) Scenario(m *Model, o VerifyOptions, dir string) []byte {
	_ = o.defaults(m)
	f := s.Forecast
	base, extra := f.rates()
	broker := "memory"
	if m.Redis {
		broker = "redis"
	}
	ramp := math.Min(500, math.Max(50, f.PeakUsers/20))
	phase := func(name string, d time.Duration) string {
		if extra > 0 {
			return fmt.Sprintf("  - {name: %s, duration: %s, rate: %s, hot_channel: 0}\n", name, d, fnum(extra))
		}
		return fmt.Sprintf("  - {name: %s, duration: %s, rate: %s}\n", name, d, fnum(base))
	}
	limit := o.Warmup + o.Measure + time.Duration(f.PeakUsers/ramp*float64(time.Second)) + 5*time.Minute
	var b strings.Builder
	fmt.Fprintf(&b, `# capacity-verify — a forecast scaled by %.4g (rates ×%.4g) to one node of this machine
# (darktime report capacity --verify): every resource is measured over the
# "measure" phase and set against the model's prediction.
version: 1
name: capacity-verify
description: %s users on %d channels (%s), %s messages/s, %s/s on the hottest channel.
target:
  broker: %s
clients:
  count: %d
  ramp: %s
  channels: %d
  distribution: %s
publishers:
  rate: %s
  size: %d
  in_flight: 64
phases:
%s%sthresholds:
  - lost == 0
outputs:
  dir: %q
  json: report.json
limits:
  max_duration: %s
`, s.Factor, s.RateFactor, num(f.PeakUsers), f.Channels, f.Distribution, num(f.MessagesPerS), num(f.HotMessagesPerS),
		broker, int(f.PeakUsers), fnum(ramp), f.Channels, f.Distribution, fnum(base), f.eventBytes(m),
		phase("warm-up", o.Warmup), phase("measure", o.Measure), dir, limit.Round(time.Second))
	return []byte(b.String())
}

// fnum is a number as YAML reads it back exactly enough (6 digits).
func fnum(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.6g", v), ".") }
