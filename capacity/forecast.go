package capacity

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/yamlsafe"
)

// Forecast is the peak a plan sizes for (a YAML file, --forecast).
type Forecast struct {
	// PeakUsers is the peak of concurrent users, one stream each.
	PeakUsers float64 `yaml:"peak_users" json:"peak_users"`
	// Channels is how many channels they spread over, by Distribution:
	// uniform, zipf[:S] (S > 1, default 1.1: channel k gets a share
	// ∝ (k+1)^-S, as the swarm assigns) or hot:SHARE (the hottest channel
	// holds SHARE of the users, the rest spread evenly).
	Channels     int    `yaml:"channels" json:"channels"`
	Distribution string `yaml:"distribution" json:"distribution"`
	// MessagesPerS is published over all channels together;
	// HotMessagesPerS of them on the hottest channel (default: its even
	// share, MessagesPerS/Channels). The rest spread evenly over every
	// channel, the hottest included, as the swarm publishes them.
	MessagesPerS    float64 `yaml:"messages_per_s" json:"messages_per_s"`
	HotMessagesPerS float64 `yaml:"hot_messages_per_s" json:"hot_messages_per_s"`
	// EventBytes is an event's data size (default the ramp's).
	EventBytes int `yaml:"event_bytes" json:"event_bytes"`
	// ConnectsPerS is new streams per second at the peak: arrivals and
	// reconnects (default 0: the users are all there).
	ConnectsPerS float64 `yaml:"connects_per_s" json:"connects_per_s"`
	// Headroom is the share of each limit planned for (default 0.7).
	Headroom float64  `yaml:"headroom" json:"headroom"`
	Node     NodeSpec `yaml:"node" json:"node"`
	// ShardCores is the CPU one Redis shard may use (default 1: Redis
	// runs commands on one thread).
	ShardCores float64 `yaml:"shard_cores" json:"shard_cores"`
}

// NodeSpec is one server node of the planned deployment.
type NodeSpec struct {
	Cores     float64 `yaml:"cores" json:"cores"`           // default 8
	MemoryGiB float64 `yaml:"memory_gib" json:"memory_gib"` // default 16
	FDLimit   float64 `yaml:"fd_limit" json:"fd_limit"`     // default 1,048,576
	NICGbps   float64 `yaml:"nic_gbps" json:"nic_gbps"`     // default 10
}

// Defaults and bounds of a forecast.
const (
	DefaultHeadroom   = 0.7
	DefaultCores      = 8
	DefaultMemoryGiB  = 16
	DefaultFDLimit    = 1 << 20
	DefaultNICGbps    = 10
	DefaultShardCores = 1
	DefaultZipfS      = 1.1
	// MaxUsers and MaxChannels bound a forecast: the plan sums over the
	// channels, once per node count it tries.
	MaxUsers    = 1e10
	MaxChannels = 1_000_000
)

// Distribution kinds of a forecast.
const (
	DistUniform = "uniform"
	DistZipf    = "zipf"
	DistHot     = "hot"
)

// ParseForecast reads a forecast file's YAML (bounded by yamlsafe),
// strictly: unknown keys and values out of range are errors naming the
// key and what to do. name prefixes the messages.
func ParseForecast(name string, data []byte) (f *Forecast, err error) {
	defer func() {
		// The YAML library panics on some tagged input: bad input.
		if p := recover(); p != nil {
			f, err = nil, badInput("forecast %s: cannot parse the YAML (%v)", name, p)
		}
	}()
	if err := yamlsafe.Check(data, yamlsafe.Limits{MaxBytes: 64 << 10}); err != nil {
		var ye *yamlsafe.Error
		if errors.As(err, &ye) && ye.Line > 0 {
			return nil, badInput("forecast %s:%d:%d: %s", name, ye.Line, ye.Column, ye.Msg)
		}
		return nil, badInput("forecast %s: %v", name, err)
	}
	f = &Forecast{}
	if err := yaml.UnmarshalWithOptions(data, f, yaml.Strict()); err != nil {
		return nil, badInput("forecast %s: %s", name, strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("forecast %s: %w", name, err)
	}
	return f, nil
}

// Check fills in the defaults and checks every field; the error names
// each field that is wrong.
func (f *Forecast) Check() error {
	var errs []string
	bad := func(field, format string, args ...any) {
		errs = append(errs, field+": "+fmt.Sprintf(format, args...))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(f.PeakUsers) || f.PeakUsers < 1 || f.PeakUsers > MaxUsers || f.PeakUsers != math.Trunc(f.PeakUsers) {
		bad("peak_users", "%v: want a whole number of users from 1 to %.0e", f.PeakUsers, MaxUsers)
	}
	if f.Channels < 1 || f.Channels > MaxChannels {
		bad("channels", "%d: want 1 to %d (the plan sums over them)", f.Channels, MaxChannels)
	}
	if f.Distribution == "" {
		f.Distribution = DistUniform
	}
	if _, _, err := parseDist(f.Distribution); err != nil {
		bad("distribution", "%v", err)
	}
	if !finite(f.MessagesPerS) || f.MessagesPerS <= 0 || f.MessagesPerS > 1e9 {
		bad("messages_per_s", "%v: want a rate above 0 and at most 1e9", f.MessagesPerS)
	}
	if f.Channels >= 1 && f.HotMessagesPerS == 0 {
		f.HotMessagesPerS = f.MessagesPerS / float64(f.Channels)
	}
	switch {
	case !finite(f.HotMessagesPerS) || f.HotMessagesPerS < 0:
		bad("hot_messages_per_s", "%v: want a rate of 0 or more", f.HotMessagesPerS)
	case f.HotMessagesPerS > f.MessagesPerS*(1+1e-9):
		bad("hot_messages_per_s", "%v is more than messages_per_s (%v), which counts every channel", f.HotMessagesPerS, f.MessagesPerS)
	case f.Channels >= 1 && f.HotMessagesPerS < f.MessagesPerS/float64(f.Channels)*(1-1e-9):
		bad("hot_messages_per_s", "%v is below the average channel's %v: the hottest channel gets at least its even share", f.HotMessagesPerS, f.MessagesPerS/float64(f.Channels))
	case f.Channels == 1 && f.HotMessagesPerS != f.MessagesPerS:
		bad("hot_messages_per_s", "with one channel it carries every message: leave it out or set it to messages_per_s")
	}
	if f.EventBytes < 0 || f.EventBytes > 1<<20 {
		bad("event_bytes", "%d: want 0 (the ramp's size) to 1 MiB", f.EventBytes)
	}
	if !finite(f.ConnectsPerS) || f.ConnectsPerS < 0 || f.ConnectsPerS > f.PeakUsers {
		bad("connects_per_s", "%v: want 0 to peak_users per second", f.ConnectsPerS)
	}
	share := func(field string, v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
		if !finite(*v) || *v <= 0 || *v > 1 {
			bad(field, "%v: want a share above 0 and at most 1", *v)
		}
	}
	share("headroom", &f.Headroom, DefaultHeadroom)
	positive := func(field string, v *float64, def, top float64) {
		if *v == 0 {
			*v = def
		}
		if !finite(*v) || *v <= 0 || *v > top {
			bad(field, "%v: want above 0 and at most %v", *v, top)
		}
	}
	positive("node.cores", &f.Node.Cores, DefaultCores, 1024)
	positive("node.memory_gib", &f.Node.MemoryGiB, DefaultMemoryGiB, 1<<16)
	positive("node.fd_limit", &f.Node.FDLimit, DefaultFDLimit, 1<<31)
	positive("node.nic_gbps", &f.Node.NICGbps, DefaultNICGbps, 1e4)
	positive("shard_cores", &f.ShardCores, DefaultShardCores, 64)
	if len(errs) > 0 {
		return badInput("%s", strings.Join(errs, "; "))
	}
	return nil
}

// parseDist reads uniform, zipf[:S] or hot:SHARE.
func parseDist(s string) (kind string, arg float64, err error) {
	kind, text, has := strings.Cut(s, ":")
	if has {
		if arg, err = strconv.ParseFloat(text, 64); err != nil || math.IsNaN(arg) || math.IsInf(arg, 0) {
			return "", 0, fmt.Errorf("%q: %q is not a number", s, text)
		}
	}
	switch kind {
	case DistUniform:
		if has {
			return "", 0, fmt.Errorf("%q: uniform takes no argument", s)
		}
	case DistZipf:
		if !has {
			arg = DefaultZipfS
		}
		if arg <= 1 || arg > 10 {
			return "", 0, fmt.Errorf("%q: the zipf exponent must be above 1 and at most 10", s)
		}
	case DistHot:
		if !has || arg <= 0 || arg > 1 {
			return "", 0, fmt.Errorf("%q: want hot:SHARE, the hottest channel's share of the users, above 0 and at most 1", s)
		}
	default:
		return "", 0, fmt.Errorf("%q: want uniform, zipf[:S] or hot:SHARE", s)
	}
	return kind, arg, nil
}

// load is a forecast's traffic, channel by channel.
type load struct {
	users float64
	// shares[k] is channel k's share of the users (0 is the hottest);
	// rates[k] its messages/s.
	shares, rates []float64
	total         float64 // messages/s
	connects      float64
}

// newLoad spreads the forecast over its channels: the messages beyond
// the hottest channel's extra spread evenly over every channel (so that
// the hottest gets HotMessagesPerS in all), the users by the
// distribution.
func (f *Forecast) newLoad() load {
	c := f.Channels
	l := load{users: f.PeakUsers, shares: make([]float64, c), rates: make([]float64, c), total: f.MessagesPerS, connects: f.ConnectsPerS}
	kind, arg, _ := parseDist(f.Distribution)
	switch kind {
	case DistZipf:
		var h float64
		for k := range c {
			l.shares[k] = math.Pow(float64(k+1), -arg)
			h += l.shares[k]
		}
		for k := range l.shares {
			l.shares[k] /= h
		}
	case DistHot:
		l.shares[0] = arg
		for k := 1; k < c; k++ {
			l.shares[k] = (1 - arg) / float64(c-1)
		}
		if c == 1 {
			l.shares[0] = 1
		}
	default:
		for k := range l.shares {
			l.shares[k] = 1 / float64(c)
		}
	}
	base, extra := f.rates()
	for k := range l.rates {
		l.rates[k] = base / float64(c)
	}
	l.rates[0] += extra
	return l
}

// rates splits the messages into the base rate spread over every channel
// and the hottest channel's extra: base/C + extra = HotMessagesPerS.
func (f *Forecast) rates() (base, extra float64) {
	c := float64(f.Channels)
	if f.Channels == 1 {
		return f.MessagesPerS, 0
	}
	base = (f.MessagesPerS - f.HotMessagesPerS) * c / (c - 1)
	base = max(0, base)
	return base, max(0, f.MessagesPerS-base)
}

// deliveries is messages/s × subscribers summed over channels.
func (l load) deliveries() float64 {
	var d float64
	for k, r := range l.rates {
		d += r * l.shares[k] * l.users
	}
	return d
}

// nodesWith is the expected number of nodes, of n, holding at least one
// of channel k's subscribers, the users spread evenly at random.
func (l load) nodesWith(k int, n float64) float64 {
	return n * -math.Expm1(l.users*math.Log1p(-l.shares[k]/n))
}

// received is the events/s one of n nodes receives from the broker: each
// channel's messages, when the node holds one of its subscribers.
func (l load) received(n float64) float64 {
	var rx float64
	for k, r := range l.rates {
		rx += r * l.nodesWith(k, n) / n
	}
	return rx
}

// nodeTerms are the model's terms for one of n nodes.
func (l load) nodeTerms(n float64) map[string]float64 {
	d, p := l.deliveries()/n, l.total/n
	return map[string]float64{
		TermDeliveries: d, TermPublishes: p, TermReceived: l.received(n), TermConnects: l.connects / n,
		TermConnections: l.users / n, TermPeakDeliveries: d, TermPeakPublishes: p, TermBase: 1,
	}
}

// hotSubscribers is the hottest channel's users.
func (l load) hotSubscribers() float64 { return l.shares[0] * l.users }
