package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/darktime/darktime/swarm/params"
)

// ErrConfig marks an invalid Config; the CLI reports it as a usage error.
var ErrConfig = params.ErrConfig

// ErrPhase and ErrSlowdown mark a bad Config.Phases or Config.Slowdowns
// entry; both wrap ErrConfig.
var (
	ErrPhase    = fmt.Errorf("%w: bad phase", ErrConfig)
	ErrSlowdown = fmt.Errorf("%w: bad slowdown", ErrConfig)
)

// Config describes one swarm run. The zero value is a valid small run
// against darktime on 127.0.0.1:8080; each field documents its default.
type Config struct {
	// Target is the server's base URL, {target} in the templates
	// (default http://127.0.0.1:8080).
	Target string
	// Targets, when set, replaces Target with several server nodes that
	// share one broker: clients and publishes are spread over them round
	// robin, so a delivery usually crosses nodes. Target then reads
	// "node1,node2,...".
	Targets []string
	// Profile says how to subscribe and publish (default the "darktime"
	// profile).
	Profile Profile

	// Clients is how many EventSource clients to hold (1,000).
	Clients int
	// Channels is how many channels they spread over (10); ignored by the
	// "one" distribution, which gives every client its own.
	Channels int
	// Distribution assigns channels to clients (uniform).
	Distribution Distribution
	// ChannelPrefix names channels <prefix>_<i> (default a random prefix,
	// so servers that keep history never replay an old run's events).
	ChannelPrefix string
	// Ramp is how many clients connect per second (1,000).
	Ramp float64
	// Sources spreads clients over 127.0.0.2.. when the target is on IPv4
	// loopback (one address per 20,000 clients).
	Sources int

	// Rate is the publish rate in events/s over all channels (10), paced
	// by Pacing (constant).
	Rate   float64
	Pacing Pacing
	// Phases, when set, split the publishing into stretches with rates of
	// their own, run one after another; Duration becomes their sum.
	Phases []Phase
	// Size is the published body size in bytes (100); never shorter than
	// the template without padding.
	Size int

	// Settle is the pause between the last first connect and the first
	// publish (1 s); Duration is how long to publish (30 s); Drain is how
	// long to wait for deliveries afterwards (2 s). A run takes about
	// ramp + Settle + Duration + Drain and stops by itself.
	Settle, Duration, Drain time.Duration

	// Churn draws each connection's lifetime; when it ends the client
	// leaves and a fresh one (no Last-Event-ID) takes its place. The zero
	// value keeps every client for the whole run.
	Churn Lifetime
	// ChurnGrace is how long a leaving client keeps reading events
	// published before it decided to leave (1 s).
	ChurnGrace time.Duration
	// Storms are offsets from the first publish at which every connection
	// is cut at once; clients come back after their retry delay, resuming
	// with Last-Event-ID as browsers do.
	Storms []time.Duration
	// Slowdowns turn some clients into slow readers from a point of the
	// publishing on.
	Slowdowns []Slowdown
	// PublishAt, when set and later than the end of ramp and settle, is the
	// wall-clock time publishing starts, so that several processes (and
	// whoever times faults against the run) share one clock.
	PublishAt time.Time
	// OnPublish, when set, is called from Run's goroutine with the time
	// publishing starts, just before the first publish. Storms and
	// Slowdowns count from that time.
	OnPublish func(start time.Time) `json:"-"`
	// Stages, when set, is told of each point of the run's timeline with
	// the events received so far, so that a caller can measure something
	// of its own over exactly the swarm's spans (stage.go).
	Stages func(Stage) `json:"-"`
	// Tick, when set, is told of every second of the run as the progress
	// line is (whether or not Progress is set), from the ticking
	// goroutine: it must not block. Tick.Second is the same Second the
	// result will carry (its maps are not changed afterwards). swarm/live
	// exports runs live there, and darktime run's abort_on_fail judges the
	// run as it goes; ChainTick gives a run both.
	Tick func(Tick) `json:"-"`
	// DefaultRetry is the reconnection delay before a server sends a retry
	// hint (3 s, as browsers).
	DefaultRetry time.Duration
	// ConnectTimeout bounds a dial plus the response head (10 s).
	ConnectTimeout time.Duration
	// LateAfter counts a delivery slower than this as late (5 s).
	LateAfter time.Duration
	// LedgerWindow is the ledger's time window (1 s).
	LedgerWindow time.Duration

	// Part selects this process's slice of a run split over processes or
	// machines: the channels c with c mod Count == Index, their clients
	// and their share of the publish rate. Zero value: the whole run.
	Part Part
	// RunID names the run; every part of one run shares it (default
	// random).
	RunID string
	// Seed makes channel assignment and lifetimes reproducible (default
	// random).
	Seed uint64

	// Logger receives lifecycle messages (default discards them);
	// Progress, when set, receives one status line per second.
	Logger   *slog.Logger `json:"-"`
	Progress io.Writer    `json:"-"`

	// Token, when set, mints a JWT per client at every connect for the
	// {token} placeholder of the subscribe URL and headers (token.go).
	Token *TokenConfig

	// Publishers, when set, bounds the publish requests in flight (default
	// vegeta's 10,000 workers); 1 sends each publish once the one before is
	// answered.
	Publishers int
	// MaxRate publishes as fast as the target answers instead of at Rate:
	// Publishers requests in flight (required; per part), each sent as
	// soon as one is answered (vegeta's rate 0 with that many workers),
	// until Events events were sent or Duration is over. Pacing and
	// Phases do not apply; an event's intended send time is when its
	// request is built.
	MaxRate bool
	// Events, when set, ends the publishing after this many events
	// (whatever Duration says; each part of a split run publishes its
	// share of them, rounded down); MaxRate requires it. With batches the
	// last request carries what is left.
	Events int64
	// RetryUnavailable, when set, sends a publish answered 503 (the target
	// took nothing: a full queue, a busy broker) again after this pause,
	// until it is answered otherwise, the publish timeout (10 s, retries
	// included) runs out or the run stops; Publish.Retried counts the
	// retries. Zero: a 503 is a failed publish.
	RetryUnavailable time.Duration

	// AfterPublish, when set, is called from Run's goroutine once the last
	// publish was answered (after StagePublished), before the drain, which
	// starts when it returns: a target that processes publishes
	// asynchronously (a job queue) can be waited for there.
	AfterPublish func(ctx context.Context, p Published) `json:"-"`
}

// Published is what the publisher did, told to Config.AfterPublish.
type Published struct {
	// Info counts the publishes, all answered.
	Info PublishInfo
	// EventsOK counts the events of the publishes answered 2xx.
	EventsOK int64
	// Received counts the measured events received so far, duplicates
	// included.
	Received func() int64
}

// MaxBatch bounds Profile.Publish.Batch.
const MaxBatch = 10_000

// Phase is one stretch of the publishing with its own rate.
type Phase struct {
	Name     string
	Duration time.Duration
	// Rate is the phase's events/s over the whole run (all parts); 0 means
	// Config.Rate.
	Rate float64
	// Hot sends Rate to channel HotChannel alone, on top of Config.Rate
	// spread over every channel as usual (a "pope day" spike on one
	// thread). Only the part that owns HotChannel (channel c belongs to
	// part c mod Part.Count == Part.Index) publishes the hot rate.
	Hot        bool
	HotChannel int
}

// Slowdown turns some clients into slow readers: from At (an offset from
// the first publish) until the end of the run, across reconnects, each
// sleeps ReadDelay before every read(2) of its stream. A server that
// bounds what it queues per subscriber cuts them off; they resume with
// Last-Event-ID like any dropped client.
type Slowdown struct {
	At time.Duration
	// Clients is how many clients of the whole run turn slow; each part
	// slows those of its clients among them (evenly spread over the run's
	// client indices, so the parts' shares add up to Clients).
	Clients   int
	ReadDelay time.Duration
}

// maxReadDelay bounds Slowdown.ReadDelay: past it a client reads nothing
// in a short run, and the figure is more likely a unit mistake.
const maxReadDelay = time.Minute

// Defaults for the zero values of Config, and the bounds that keep a run
// finite (package params: a scenario checks them without the engine).
const (
	DefaultTarget         = params.DefaultTarget
	DefaultClients        = params.DefaultClients
	DefaultChannels       = params.DefaultChannels
	DefaultRamp           = params.DefaultRamp
	DefaultRate           = params.DefaultRate
	DefaultSize           = params.DefaultSize
	DefaultSettle         = params.DefaultSettle
	DefaultDuration       = params.DefaultDuration
	DefaultDrain          = params.DefaultDrain
	DefaultChurnGrace     = params.DefaultChurnGrace
	DefaultRetry          = params.DefaultRetry
	DefaultConnectTimeout = params.DefaultConnectTimeout
	DefaultLateAfter      = params.DefaultLateAfter
	DefaultLedgerWindow   = params.DefaultLedgerWindow
	MaxConnsPerSource     = params.MaxConnsPerSource
	MaxDuration           = params.MaxDuration
	// maxSources bounds the source addresses (127.0.0.x); maxPublishes and
	// maxClients keep every run's accounting small.
	maxSources   = 253
	maxPublishes = 50_000_000
	maxClients   = 1_000_000
)

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	if len(c.Targets) == 0 {
		c.Targets = []string{c.Target}
	}
	c.Targets = slices.Clone(c.Targets)
	for i, t := range c.Targets {
		c.Targets[i] = strings.TrimSuffix(t, "/")
	}
	c.Target = strings.Join(c.Targets, ",")
	if c.Profile.Name == "" && c.Profile.Subscribe == "" {
		c.Profile = builtinProfiles["darktime"]
	}
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Distribution.Kind == "" {
		c.Distribution.Kind = DistUniform
	}
	if c.Distribution.Kind == DistOne {
		c.Channels = c.Clients
	}
	if c.Channels == 0 {
		c.Channels = DefaultChannels
	}
	if c.Distribution.Kind == DistZipf && c.Distribution.S == 0 {
		c.Distribution.S = 1.1
	}
	if c.Distribution.Kind == DistSeveral && c.Distribution.PerClient == 0 {
		c.Distribution.PerClient = 3
	}
	if c.Ramp == 0 {
		c.Ramp = DefaultRamp
	}
	if c.Sources == 0 {
		c.Sources = (c.Clients + MaxConnsPerSource - 1) / MaxConnsPerSource
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Pacing.Kind == "" {
		c.Pacing.Kind = PaceConstant
	}
	if len(c.Phases) > 0 {
		c.Phases = slices.Clone(c.Phases)
		var sum time.Duration
		for i := range c.Phases {
			p := &c.Phases[i]
			if p.Rate == 0 {
				p.Rate = c.Rate
			}
			// Saturating, so that absurd durations fail validation
			// instead of wrapping around.
			sum = min(sum+min(max(p.Duration, 0), MaxDuration+1), MaxDuration+1)
		}
		c.Duration = sum
	}
	c.Slowdowns = slices.Clone(c.Slowdowns)
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	def(&c.Settle, DefaultSettle)
	def(&c.Duration, DefaultDuration)
	def(&c.Drain, DefaultDrain)
	def(&c.ChurnGrace, DefaultChurnGrace)
	def(&c.DefaultRetry, DefaultRetry)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.LateAfter, DefaultLateAfter)
	def(&c.LedgerWindow, DefaultLedgerWindow)
	if c.Part.Count == 0 {
		c.Part = Part{Index: 0, Count: 1}
	}
	if c.RunID == "" {
		c.RunID = randomHex(8)
	}
	if c.ChannelPrefix == "" {
		c.ChannelPrefix = NewChannelPrefix()
	}
	if c.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			c.Seed = c.Seed<<8 | uint64(x)
		}
		c.Seed |= 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// publishProblems checks the publisher's mode and the batch size.
func (c Config) publishProblems() []string {
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	check(c.Publishers < 0 || c.Publishers > 10_000, "publishers (--publishers) must be between 1 and 10,000 requests in flight")
	check(c.Events < 0 || c.Events > maxPublishes, fmt.Sprintf("events (--events) must be between 1 and %d", maxPublishes))
	check(c.RetryUnavailable < 0 || c.RetryUnavailable > time.Minute, "retry unavailable (--retry-unavailable) must be between 0 and 1m")
	if c.MaxRate {
		check(c.Publishers == 0, "max rate (--max-rate) needs publishers (--publishers): how many requests to keep in flight")
		check(c.Events == 0, "max rate (--max-rate) needs events (--events): how many to publish")
		check(len(c.Phases) > 0, "max rate (--max-rate) and phases (--phase) do not go together: phases have rates")
		check(c.Pacing.Kind != PaceConstant, fmt.Sprintf("max rate (--max-rate) and %s pacing do not go together: there is no rate to shape", c.Pacing.Kind))
	}
	b := c.Profile.Publish.Batch
	check(b < 0 || b > MaxBatch, fmt.Sprintf("publish batch (--publish-batch) must be between 1 and %d events per request", MaxBatch))
	return problems
}

// batch is how many events a request carries (1 without batches).
func (c Config) batch() int { return max(c.Profile.Publish.Batch, 1) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// configError lists every problem of a Config; it wraps ErrConfig and
// the named errors of the entries at fault (ErrPhase, ErrSlowdown).
type configError struct {
	problems []string
	kinds    []error
}

func (e *configError) Error() string {
	return ErrConfig.Error() + ": " + strings.Join(e.problems, "; ")
}

func (e *configError) Unwrap() []error { return append([]error{ErrConfig}, e.kinds...) }

func (c Config) validate() error {
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	var kinds []error
	checkKind := func(kind error, bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
			if !slices.Contains(kinds, kind) {
				kinds = append(kinds, kind)
			}
		}
	}
	for _, t := range c.Targets {
		u, err := url.Parse(t)
		check(err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "", fmt.Sprintf("target %q: want http://host:port", t))
	}
	check(c.Clients < 0 || c.Clients > maxClients, fmt.Sprintf("clients must be between 1 and %d", maxClients))
	check(c.Channels < 1, "channels must be positive")
	check(c.Ramp < 0 || math.IsNaN(c.Ramp) || math.IsInf(c.Ramp, 0), "ramp (--ramp) must be a finite number of clients per second, not negative")
	check(c.Sources < 0 || c.Sources > maxSources, fmt.Sprintf("sources must be between 1 and %d", maxSources))
	check(c.Rate < 0 || c.Rate > 1e6 || math.IsNaN(c.Rate), "rate (--rate) must be between 0 and 1,000,000 events/s")
	check(c.Size < 0 || c.Size > 1<<20, "size must be between 0 and 1 MiB")
	check(c.Duration < 0 || c.Duration > MaxDuration, "duration must be between 0 and 24h")
	for _, d := range []struct {
		v    time.Duration
		name string
	}{
		{c.Settle, "settle (--settle)"}, {c.Drain, "drain (--drain)"}, {c.ChurnGrace, "churn grace"},
		{c.DefaultRetry, "retry (--retry)"}, {c.ConnectTimeout, "connect timeout"}, {c.LateAfter, "late after"},
		{c.LedgerWindow, "ledger window (--ledger-window)"},
	} {
		check(d.v < 0, fmt.Sprintf("%s is %v: durations must be positive", d.name, d.v))
	}
	check(c.Drain > time.Hour || c.Settle > time.Hour, "settle and drain must be at most 1h")
	check(c.Part.Count < 1 || c.Part.Index < 0 || c.Part.Index >= c.Part.Count, fmt.Sprintf("part %d/%d: want 0 <= index < count", c.Part.Index, c.Part.Count))
	check(c.Part.Count > c.Channels, fmt.Sprintf("%d parts need at least as many channels (got %d): each part owns whole channels", c.Part.Count, c.Channels))
	check(strings.ContainsAny(c.RunID, " \t\r\n/"), "run id may not hold spaces or slashes")
	check(strings.IndexFunc(c.ChannelPrefix, notWordRune) >= 0, "channel prefix may only hold letters, digits and '_'")
	for _, s := range c.Storms {
		check(s < 0 || s > c.Duration, fmt.Sprintf("storm at %v is outside the publish window (0 to %v)", s, c.Duration))
	}
	if err := c.Distribution.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	if c.Distribution.Kind == DistSeveral {
		check(c.Distribution.PerClient > c.Channels/c.Part.Count, fmt.Sprintf("several:%d needs at least %d channels per part", c.Distribution.PerClient, c.Distribution.PerClient))
	}
	if err := c.Pacing.Validate(c.Rate); err != nil {
		problems = append(problems, err.Error())
	}
	if err := c.Churn.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	planned := c.Pacing.UpperBound(c.Rate, c.Duration)
	if len(c.Phases) > 0 || c.MaxRate {
		planned = 0
	}
	for i, p := range c.Phases {
		what := fmt.Sprintf("phase %d (%q)", i, p.Name)
		checkKind(ErrPhase, p.Duration <= 0 || p.Duration > MaxDuration, what+": duration must be between 0 and 24h")
		checkKind(ErrPhase, !(p.Rate >= 0 && p.Rate <= 1e6), what+": rate must be between 0 and 1,000,000 events/s")
		checkKind(ErrPhase, p.Hot && (p.HotChannel < 0 || p.HotChannel >= c.Channels),
			fmt.Sprintf("%s: hot channel %d is not one of the %d channels (0 to %d)", what, p.HotChannel, c.Channels, c.Channels-1))
		checkKind(ErrPhase, !p.Hot && p.HotChannel != 0, what+": a hot channel without hot: set Hot, or leave HotChannel 0")
		base := p.Rate
		if p.Hot {
			base = c.Rate
		}
		checkKind(ErrPhase, c.Pacing.Kind == PaceSine && c.Pacing.Amplitude >= base,
			fmt.Sprintf("%s: sine amplitude %v must stay below the phase's rate %v", what, c.Pacing.Amplitude, base))
		if p.Duration > 0 && p.Duration <= MaxDuration && p.Rate >= 0 && p.Rate <= 1e6 {
			planned += c.Pacing.UpperBound(c.phaseTotalRate(p), p.Duration)
		}
	}
	if c.Events > 0 {
		planned = min(planned, float64(c.Events))
	}
	if c.MaxRate {
		planned = float64(c.Events)
	}
	problems = append(problems, c.publishProblems()...)
	if planned > maxPublishes {
		problems = append(problems, fmt.Sprintf("about %.0f publishes planned, at most %d: publish for less time or at a lower rate", planned, maxPublishes))
	}
	for i, s := range c.Slowdowns {
		what := fmt.Sprintf("slowdown %d (at %v)", i, s.At)
		checkKind(ErrSlowdown, s.At < 0 || s.At > c.Duration, fmt.Sprintf("%s is outside the publish window (0 to %v)", what, c.Duration))
		checkKind(ErrSlowdown, s.Clients < 1 || s.Clients > c.Clients, fmt.Sprintf("%s: clients must be between 1 and %d, got %d", what, c.Clients, s.Clients))
		checkKind(ErrSlowdown, s.ReadDelay <= 0 || s.ReadDelay > maxReadDelay, fmt.Sprintf("%s: read delay must be between 0 and %v, got %v", what, maxReadDelay, s.ReadDelay))
	}
	if len(problems) > 0 {
		return &configError{problems: problems, kinds: kinds}
	}
	return nil
}

// phaseTotalRate is a phase's events/s over the whole run: its rate, or
// Config.Rate plus the hot rate.
func (c Config) phaseTotalRate(p Phase) float64 {
	if p.Hot {
		return c.Rate + p.Rate
	}
	return p.Rate
}

func notWordRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_')
}

// ParsePhase reads "NAME:DURATION[:RATE][:hot=CHANNEL]" (a --phase flag):
// "warm:10s", "peak:20s:500", "pope:30s:800:hot=0".
func ParsePhase(s string) (Phase, error) {
	parts := strings.Split(s, ":")
	bad := func(msg string) (Phase, error) {
		return Phase{}, fmt.Errorf("%w %q: %s (want NAME:DURATION[:RATE][:hot=CHANNEL])", ErrPhase, s, msg)
	}
	if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
		return bad("wrong number of fields")
	}
	p := Phase{Name: parts[0]}
	var err error
	if p.Duration, err = time.ParseDuration(parts[1]); err != nil {
		return bad(err.Error())
	}
	rest := parts[2:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "hot=") {
		if p.Rate, err = strconv.ParseFloat(rest[0], 64); err != nil {
			return bad("rate: " + err.Error())
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		ch, ok := strings.CutPrefix(rest[0], "hot=")
		if !ok || len(rest) > 1 {
			return bad("unexpected " + strings.Join(rest, ":"))
		}
		if p.HotChannel, err = strconv.Atoi(ch); err != nil {
			return bad("hot channel: " + err.Error())
		}
		p.Hot = true
	}
	return p, nil
}

// ParseSlowdown reads "AT:CLIENTS:READ_DELAY" (a --slowdown flag):
// "10s:50:200ms" makes 50 clients wait 200 ms before every read from 10 s
// into the publishing on.
func ParseSlowdown(s string) (Slowdown, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Slowdown{}, fmt.Errorf("%w %q: want AT:CLIENTS:READ_DELAY", ErrSlowdown, s)
	}
	var sd Slowdown
	at, err1 := time.ParseDuration(parts[0])
	n, err2 := strconv.Atoi(parts[1])
	delay, err3 := time.ParseDuration(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return sd, fmt.Errorf("%w %q: %v (want AT:CLIENTS:READ_DELAY)", ErrSlowdown, s, err)
	}
	return Slowdown{At: at, Clients: n, ReadDelay: delay}, nil
}

// The value types of Config (package params, with their parsers).
type (
	// Distribution assigns channels to clients.
	Distribution = params.Distribution
	// Pacing shapes the publish rate over time around Config.Rate.
	Pacing = params.Pacing
	// Lifetime is a distribution of connection lifetimes.
	Lifetime = params.Lifetime
)

// Distribution, pacing and lifetime kinds.
const (
	DistUniform    = params.DistUniform
	DistZipf       = params.DistZipf
	DistOne        = params.DistOne
	DistRoundRobin = params.DistRoundRobin
	DistSeveral    = params.DistSeveral
	PaceConstant   = params.PaceConstant
	PaceLinear     = params.PaceLinear
	PaceSine       = params.PaceSine
	LifeNone       = params.LifeNone
	LifeFixed      = params.LifeFixed
	LifeExp        = params.LifeExp
	LifeUniform    = params.LifeUniform
)

// ParseDistribution reads "uniform", "zipf[:S]", "one", "round-robin" or
// "several[:N]".
func ParseDistribution(s string) (Distribution, error) { return params.ParseDistribution(s) }

// ParsePacing reads "constant", "linear:SLOPE" or "sine:PERIOD:AMPLITUDE".
func ParsePacing(s string) (Pacing, error) { return params.ParsePacing(s) }

// ParseLifetime reads "none", "fixed:D", "exp:MEAN" or "uniform:MIN-MAX".
func ParseLifetime(s string) (Lifetime, error) { return params.ParseLifetime(s) }
