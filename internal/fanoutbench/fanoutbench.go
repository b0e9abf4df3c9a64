// Package fanoutbench measures how an SSE server fans events out to many
// subscribers: it runs the swarm (package swarm) with N clients spread
// evenly over C channels and a constant publish rate, and adds what the
// swarm does not measure, the server's CPU per delivery and its memory per
// idle subscriber, sampled from /proc at the swarm's stages; delivery
// accounting (expected, received, lost, duplicated) and end-to-end latency
// are the swarm's.
//
// The server must offer `GET {base}/sub/{channel}` (text/event-stream) and
// `POST {base}/pub?id={channel}` (body = event data, 2xx on success), as both
// darktime's reference server and nginx+nchan do.
package fanoutbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/procstat"
	"github.com/darktime/darktime/swarm"
)

// Config describes one benchmark run. Zero values mean the defaults below.
type Config struct {
	// Target is the server's base URL (http only); default
	// http://127.0.0.1:8080. Several nodes sharing one broker are given
	// comma-separated: subscribers and publishes are spread over them round
	// robin (the swarm's Targets), so deliveries cross nodes.
	Target string
	// Subscribers is how many SSE connections to hold; default 10,000.
	Subscribers int
	// Channels is how many channels the subscribers spread over (subscriber
	// i listens on channel i mod Channels, the swarm's round-robin
	// distribution); default 10.
	Channels int
	// Rate is the total publish rate in events/s, round-robin over the
	// channels; default 20.
	Rate float64
	// Duration is how long to publish; default 20 s.
	Duration time.Duration
	// Size is the event body size in bytes; default 100. Bodies never get
	// shorter than their seq and timestamp fields (about 50 bytes).
	Size int
	// Ramp is how many subscribers to open per second; default 2,000.
	Ramp float64
	// Sources is how many source addresses (127.0.0.2, 127.0.0.3, ...) the
	// subscribers spread over when the target is on IPv4 loopback; default
	// one per 20,000 subscribers. Each address has ~28,000 ephemeral ports.
	Sources int
	// ServerPID, when set, is the server process to measure (with its
	// direct children, e.g. nginx workers): CPU during the publish window
	// and resident memory per idle subscriber.
	ServerPID int
	// Processes are more processes to measure over the same span as the
	// server (the other nodes, the Redis shards): CPU per delivery each.
	Processes []procstat.Named
	// Settle is the pause between the last connect and the first publish;
	// default 1 s.
	Settle time.Duration
	// Drain is how long to wait for deliveries after the last publish;
	// default 2 s.
	Drain time.Duration
	// ConnectTimeout bounds each subscriber's dial and response head;
	// default 10 s.
	ConnectTimeout time.Duration
	// ChannelPrefix names the channels <prefix>_<i>; default a random one
	// per run, so that servers which keep history (nchan) never replay old
	// events to new subscribers. Only [A-Za-z0-9_] is allowed: the nchan
	// config routes /sub/(\w+)$, so a '-' would get a 404.
	ChannelPrefix string
	// Logger receives progress messages; default discards them.
	Logger *slog.Logger
}

// Defaults for the zero values of Config.
const (
	DefaultTarget         = "http://127.0.0.1:8080"
	DefaultSubscribers    = 10_000
	DefaultChannels       = 10
	DefaultRate           = 20
	DefaultDuration       = 20 * time.Second
	DefaultSize           = 100
	DefaultRamp           = 2_000
	DefaultSettle         = time.Second
	DefaultDrain          = 2 * time.Second
	DefaultConnectTimeout = 10 * time.Second
)

// ErrConfig marks an invalid Config; callers may treat it as a usage error.
var ErrConfig = errors.New("invalid fan-out benchmark config")

func (c Config) withDefaults() Config {
	if c.Target == "" {
		c.Target = DefaultTarget
	}
	if c.Subscribers == 0 {
		c.Subscribers = DefaultSubscribers
	}
	if c.Channels == 0 {
		c.Channels = DefaultChannels
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Ramp == 0 {
		c.Ramp = DefaultRamp
	}
	if c.Sources == 0 {
		c.Sources = (c.Subscribers + swarm.MaxConnsPerSource - 1) / swarm.MaxConnsPerSource
	}
	if c.Settle == 0 {
		c.Settle = DefaultSettle
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ChannelPrefix == "" {
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		c.ChannelPrefix = "fanout" + hex.EncodeToString(b[:])
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

func (c Config) validate() error {
	var problems []string
	check := func(bad bool, msg string) {
		if bad {
			problems = append(problems, msg)
		}
	}
	// The swarm checks the rest (swarm.Check).
	check(c.Channels > c.Subscribers, "channels must not outnumber subscribers")
	check(c.ServerPID < 0, "server pid must be positive")
	for _, t := range c.targets() {
		if u, err := url.Parse(t); err != nil || u.Scheme != "http" || u.Host == "" {
			problems = append(problems, fmt.Sprintf("target %q: want http://host:port (the swarm's clients speak plain HTTP/1.1 only)", t))
		}
	}
	for _, p := range c.Processes {
		check(p.PID <= 0, fmt.Sprintf("process %q: pid must be positive", p.Name))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return nil
}

// targets splits Target's comma-separated nodes.
func (c Config) targets() []string {
	var out []string
	for t := range strings.SplitSeq(c.Target, ",") {
		out = append(out, strings.TrimSpace(t))
	}
	return out
}

// profile is the swarm's nchan profile (GET {target}/sub/{channel}, POST
// {target}/pub?id={channel}), which darktime's reference server answers
// too, publishing this benchmark's body, {"seq":N,"ts":N,"pad":"xx…"}: one
// channel per connection needs no channel name in the data.
func profile() swarm.Profile {
	p, _ := swarm.LookupProfile("nchan")
	p.Name = "fanout"
	p.Publish.Body = `{"seq":{seq},"ts":{ts},"pad":"{payload}"}`
	p.Extract = swarm.Extract{Seq: `"seq":`, TS: `"ts":`}
	p.Notices = "darktime." // the reference server's notices are not events of the run
	return p
}

// swarmConfig is the swarm run that does the work of cfg.
func swarmConfig(cfg Config) swarm.Config {
	return swarm.Config{
		Targets:        cfg.targets(),
		Profile:        profile(),
		Clients:        cfg.Subscribers,
		Channels:       cfg.Channels,
		Distribution:   swarm.Distribution{Kind: swarm.DistRoundRobin},
		ChannelPrefix:  cfg.ChannelPrefix,
		Ramp:           cfg.Ramp,
		Sources:        cfg.Sources,
		Rate:           cfg.Rate,
		Size:           cfg.Size,
		Settle:         cfg.Settle,
		Duration:       cfg.Duration,
		Drain:          cfg.Drain,
		ConnectTimeout: cfg.ConnectTimeout,
		Logger:         cfg.Logger,
	}
}

// stages records the swarm's stages and samples the server at them.
type stages struct {
	pid    int
	procs  []procstat.Named
	mu     sync.Mutex
	at     map[string]swarm.Stage
	server map[string]procstat.Sample
	others map[string][]procstat.Sample // per stage, one per procs
	err    error                        // the first failed sample
}

func (s *stages) record(st swarm.Stage) {
	var sample procstat.Sample
	var err error
	var others []procstat.Sample
	if st.Name == swarm.StagePublish || st.Name == swarm.StageDrained {
		if s.pid != 0 {
			if sample, err = procstat.Tree(s.pid); err != nil {
				err = fmt.Errorf("server %w", err)
			}
		}
		for _, p := range s.procs {
			o, perr := procstat.Tree(p.PID)
			if perr != nil && err == nil {
				err = fmt.Errorf("process %s %w", p.Name, perr)
			}
			others = append(others, o)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at[st.Name] = st
	s.server[st.Name] = sample
	s.others[st.Name] = others
	if err != nil && s.err == nil {
		s.err = err
	}
}

func (s *stages) get(name string) (swarm.Stage, procstat.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.at[name]
	return st, s.server[name], ok
}

// Run executes one benchmark: the swarm connects the subscribers,
// settles, publishes for Duration and drains, while the server is sampled
// before the connects, at the first publish and at the end of the drain.
// On cancellation it stops early and returns what it measured so far
// along with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sc := swarmConfig(cfg)
	if err := swarm.Check(sc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	res := &Result{Config: echoConfig(cfg)}
	st := &stages{pid: cfg.ServerPID, procs: cfg.Processes, at: map[string]swarm.Stage{},
		server: map[string]procstat.Sample{}, others: map[string][]procstat.Sample{}}
	var before procstat.Sample
	if cfg.ServerPID != 0 {
		var err error
		if before, err = procstat.Tree(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("server %w", err)
		}
	}
	sc.Stages = st.record
	began := time.Now()
	sw, err := swarm.Run(ctx, sc)
	res.DurationSeconds = time.Since(began).Seconds()
	if sw == nil {
		if errors.Is(err, swarm.ErrConfig) || errors.Is(err, swarm.ErrTemplate) {
			err = fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return nil, err
	}
	fill(res, sw, st, before)
	if err == nil {
		err = st.err
	}
	return res, err
}

// fill reads the swarm's result and the server's samples into res.
func fill(res *Result, sw *swarm.Result, st *stages, before procstat.Sample) {
	c := res.Config
	res.SubscribersConnected = int(sw.Clients.Connected)
	res.ConnectErrors = int(sw.Clients.Planned - sw.Clients.Connected)
	res.SubscribersDropped = int(sw.Clients.Drops)
	for _, kind := range slices.Sorted(maps.Keys(sw.ErrorSamples)) {
		msg := kind + ": " + sw.ErrorSamples[kind]
		if strings.HasPrefix(kind, "drop_") {
			if res.DropErrorSample == "" {
				res.DropErrorSample = msg
			}
		} else if res.ConnectErrorSample == "" {
			res.ConnectErrorSample = msg
		}
	}
	if connected, _, ok := st.get(swarm.StageConnected); ok && res.SubscribersConnected > 0 {
		res.ConnectSeconds = connected.At.Sub(sw.Started).Seconds()
		res.ConnectP50Ms, res.ConnectP99Ms = sw.Summary[swarm.HistConnect].P50, sw.Summary[swarm.HistConnect].P99
	}

	pub := sw.Publish
	res.PublishesOK, res.PublishesFailed = pub.OK, pub.Failed
	for msg, n := range pub.Errors {
		if strings.HasPrefix(msg, "status ") {
			res.PublishesNon2xx += n
		}
	}
	res.PublishErrors = pub.Errors
	pl := sw.Summary[swarm.HistPublish]
	res.PublishP50Ms, res.PublishP99Ms, res.PublishMaxMs = pl.P50, pl.P99, pl.Max
	res.OfferedEventsPerSec = c.RateEventsPerS

	t := sw.Ledger.Totals()
	res.ExpectedDeliveries = t.Credit
	res.LostDeliveries = t.Lost
	res.ReceivedDeliveries = t.Credit - t.Lost
	res.DuplicatedDeliveries = sw.Events.Duplicated
	res.ReorderedDeliveries = sw.Events.Reordered
	res.UnexpectedDeliveries = t.Extra
	res.ForeignEvents = sw.Events.Foreign + sw.Events.Malformed + sw.Events.OtherType
	d := sw.Summary[swarm.HistDelivery]
	res.LatencyP50Ms, res.LatencyP90Ms, res.LatencyP99Ms = d.P50, d.P90, d.P99
	res.LatencyP999Ms, res.LatencyMaxMs, res.LatencyMeanMs = d.P999, d.Max, d.Mean

	start, serverStart, ok := st.get(swarm.StagePublish)
	if !ok {
		return // stopped before publishing
	}
	res.OfferedDeliveriesPerSec = res.OfferedEventsPerSec * float64(start.Open) / float64(c.Channels)
	if c.ServerPID != 0 {
		res.ServerRSSBeforeKiB = before.RSSKiB
		res.ServerRSSIdleKiB = serverStart.RSSKiB
		if start.Open > 0 {
			res.ServerRSSPerSubscriberKiB = float64(serverStart.RSSKiB-before.RSSKiB) / float64(start.Open)
		}
	}
	// Throughput counts the events received in the nominal window,
	// Duration from the first publish: an overloaded server's timed-out
	// publishes would otherwise stretch it by the publish timeout.
	if window, _, ok := st.get(swarm.StageWindow); ok {
		res.AchievedDeliveriesPerSec = float64(window.Events-start.Events) / c.DurationSeconds
	} else if end, _, ok := st.get(swarm.StagePublished); ok && end.At.After(start.At) {
		res.AchievedDeliveriesPerSec = float64(end.Events-start.Events) / end.At.Sub(start.At).Seconds()
	}
	if end, _, ok := st.get(swarm.StagePublished); ok {
		res.PublishSeconds = end.At.Sub(start.At).Seconds()
	}
	drained, serverEnd, ok := st.get(swarm.StageDrained)
	if !ok {
		return // interrupted: no CPU over a whole span
	}
	// Server and client CPU are measured from the first publish to the end
	// of the drain (a backlogged server is still delivering then) and
	// divided by every event received in that time.
	events := drained.Events - start.Events
	if c.ServerPID != 0 {
		res.ServerCPUSeconds = (serverEnd.CPU - serverStart.CPU).Seconds()
		if events > 0 {
			res.ServerCPUMicrosPerDelivery = res.ServerCPUSeconds * 1e6 / float64(events)
		}
	}
	st.mu.Lock()
	from, to := st.others[swarm.StagePublish], st.others[swarm.StageDrained]
	st.mu.Unlock()
	for i, p := range st.procs {
		pc := ProcessCPU{Name: p.Name, PID: p.PID}
		if i < len(from) && i < len(to) {
			pc.CPUSeconds = (to[i].CPU - from[i].CPU).Seconds()
			if events > 0 {
				pc.MicrosPerDelivery = pc.CPUSeconds * 1e6 / float64(events)
			}
		}
		res.Processes = append(res.Processes, pc)
	}
	if len(sw.Resources) > 0 {
		res.ClientCPUSeconds = sw.Resources[0].CPUSeconds
		res.ClientCPUMicrosPerEvent = sw.Resources[0].CPUMicrosPerEvt
	}
	if span := drained.At.Sub(start.At); span > 0 {
		res.ClientCPUCores = res.ClientCPUSeconds / span.Seconds()
		res.ClientLimited = res.ClientCPUCores > 0.9*float64(runtime.GOMAXPROCS(0))
	}
}

// CheckSet refuses the values Run would silently replace with a default
// (zero) or cannot use (negative), for a caller whose every field was
// given explicitly — the command line, where --rate 0 is a mistake, not
// "the default". The errors wrap ErrConfig and name the flags.
func (c Config) CheckSet() error {
	var msg string
	switch {
	case c.Subscribers <= 0:
		msg = "--subscribers must be at least 1"
	case c.Channels <= 0 || c.Channels > c.Subscribers:
		msg = "--channels must be between 1 and --subscribers"
	case c.Rate <= 0:
		msg = "--rate must be positive"
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		msg = "--duration must be positive and at most 24h"
	case c.Size <= 0:
		msg = "--size must be positive"
	case c.Ramp <= 0:
		msg = "--ramp must be positive"
	case c.Sources < 0:
		msg = "--sources must not be negative"
	case c.ServerPID < 0:
		msg = "--server-pid must not be negative"
	case c.Drain <= 0:
		msg = "--drain must be positive"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConfig, msg)
}
