// Package fanoutbench measures how an SSE server fans events out to many
// subscribers: it holds N lean subscriber connections over C channels,
// publishes at a constant rate through vegeta and accounts every delivery
// (expected, received, lost, duplicated) with its end-to-end latency, the
// server's CPU per delivery and its memory per idle subscriber.
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
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/ctxwait"
)

// Config describes one benchmark run. Zero values mean the defaults below.
type Config struct {
	// Target is the server's base URL (http only); default http://127.0.0.1:8080.
	Target string
	// Subscribers is how many SSE connections to hold; default 10,000.
	Subscribers int
	// Channels is how many channels the subscribers spread over (subscriber
	// i listens on channel i mod Channels); default 10.
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
	// MaxConnsPerSource keeps each source address well inside its
	// 28,231 ephemeral ports (32768-60999).
	MaxConnsPerSource = 20_000
	// maxSources: 127.0.0.2 .. 127.0.0.254.
	maxSources = 253
	// Bounds on the accounting memory (see validate).
	maxPlannedEvents = 50_000_000
	maxSeenBytes     = 1 << 30
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
		c.Sources = (c.Subscribers + MaxConnsPerSource - 1) / MaxConnsPerSource
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
	check(c.Subscribers < 0, "subscribers must be positive")
	check(c.Channels < 0, "channels must be positive")
	check(c.Channels > c.Subscribers, "channels must not outnumber subscribers")
	check(c.Rate < 0 || c.Rate > 1e6, "rate must be between 0 and 1,000,000 events/s")
	check(c.Duration < 0, "duration must be positive")
	check(c.Size < 0, "size must be positive")
	check(c.Ramp < 0, "ramp must be positive")
	check(c.Sources < 0 || c.Sources > maxSources, fmt.Sprintf("sources must be between 1 and %d", maxSources))
	check(c.Settle < 0 || c.Drain < 0 || c.ConnectTimeout < 0, "settle, drain and connect timeout must be positive")
	check(c.ServerPID < 0, "server pid must be positive")
	check(strings.IndexFunc(c.ChannelPrefix, notWordRune) >= 0, "channel prefix may only hold letters, digits and '_'")
	if len(problems) == 0 {
		// Accounting memory: a counter per planned event, and per subscriber
		// one bit per event planned on its channel.
		planned := int64(plannedPublishes(c.Rate, c.Duration))
		check(planned > maxPlannedEvents, fmt.Sprintf("%d events planned, at most %d: publish for less time or at a lower rate", planned, maxPlannedEvents))
		seenBytes := int64(c.Subscribers) * (planned/int64(c.Channels)/8 + 8)
		check(seenBytes > maxSeenBytes, fmt.Sprintf("duplicate tracking would take %d MiB, at most %d: use fewer subscribers, more channels, a lower rate or less time", seenBytes>>20, maxSeenBytes>>20))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
	}
	return nil
}

func notWordRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_')
}

// run is the state shared by the subscribers and the phases of one Run.
type run struct {
	cfg      Config
	log      *slog.Logger
	addr     string   // resolved host:port to dial
	requests [][]byte // subscribe request per channel
	pubURLs  []string // publish URL per channel
	channels []string
	sources  []*net.TCPAddr

	stopCtx  context.Context // cancelled to abort dials in flight
	stop     context.CancelFunc
	stopping atomic.Bool
	subs     []*subscriber
	subWG    sync.WaitGroup // subscriber goroutines
	connWG   sync.WaitGroup // connect attempts still in flight

	shards    [latencyShards]latencyShard
	delivered []atomic.Uint32 // delivered[seq]: non-duplicate deliveries of event seq
	alive     []atomic.Int64  // connected and not dropped, per channel

	mu            sync.Mutex // guards the fields below
	connectHist   *hdrhistogram.Histogram
	connectedN    int
	connectErrors int
	connectErr    error // first one, as a sample
	lastConnect   time.Time
	dropped       int
	dropErr       error // first one, as a sample
}

func newRun(cfg Config) (*run, error) {
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("%w: target %q: %v", ErrConfig, cfg.Target, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%w: target %q: want http://host:port (the lean subscriber speaks plain HTTP/1.1 only)", ErrConfig, cfg.Target)
	}
	hostport := u.Host
	if u.Port() == "" {
		hostport = net.JoinHostPort(u.Hostname(), "80")
	}
	addr, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("resolve target: %w", err)
	}
	base := strings.TrimSuffix(u.Path, "/")
	r := &run{
		cfg:         cfg,
		log:         cfg.Logger,
		addr:        addr.String(),
		channels:    make([]string, cfg.Channels),
		requests:    make([][]byte, cfg.Channels),
		pubURLs:     make([]string, cfg.Channels),
		subs:        make([]*subscriber, cfg.Subscribers),
		delivered:   make([]atomic.Uint32, plannedPublishes(cfg.Rate, cfg.Duration)),
		alive:       make([]atomic.Int64, cfg.Channels),
		connectHist: newHistogram(),
	}
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	for i := range r.channels {
		ch := fmt.Sprintf("%s_%d", cfg.ChannelPrefix, i)
		r.channels[i] = ch
		r.requests[i] = fmt.Appendf(nil, "GET %s/sub/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: darktime-fanoutbench\r\n\r\n", base, ch, u.Host)
		r.pubURLs[i] = fmt.Sprintf("%s://%s%s/pub?id=%s", u.Scheme, u.Host, base, ch)
	}
	if ip4 := addr.IP.To4(); ip4 != nil && ip4.IsLoopback() {
		for i := range cfg.Sources {
			r.sources = append(r.sources, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))})
		}
	}
	for i := range r.shards {
		r.shards[i].hist = newHistogram()
	}
	for i := range r.subs {
		r.subs[i] = newSubscriber(r, i)
	}
	return r, nil
}

func (r *run) connected(channel int, took time.Duration) {
	r.alive[channel].Add(1)
	r.mu.Lock()
	recordMicros(r.connectHist, took)
	r.connectedN++
	r.lastConnect = time.Now()
	r.mu.Unlock()
	r.connWG.Done()
}

func (r *run) connectFailed(err error) {
	r.mu.Lock()
	r.connectErrors++
	if r.connectErr == nil && !errors.Is(err, errStopped) {
		r.connectErr = err
	}
	r.mu.Unlock()
	r.connWG.Done()
}

// ended accounts a subscriber whose stream stopped; before the run stops
// that is a drop.
func (r *run) ended(channel int, err error) {
	if r.stopping.Load() {
		return
	}
	r.alive[channel].Add(-1)
	r.mu.Lock()
	r.dropped++
	if r.dropErr == nil {
		r.dropErr = err
	}
	r.mu.Unlock()
}

// events sums the delivered-event counters of all shards.
func (r *run) events() int64 {
	var n int64
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += sh.events
		sh.mu.Unlock()
	}
	return n
}

// shutdown closes every subscriber and waits for their goroutines.
func (r *run) shutdown() {
	r.stopping.Store(true)
	r.stop()
	for _, s := range r.subs {
		s.close()
	}
	r.subWG.Wait()
}

// Run executes one benchmark: connect the subscribers, settle, publish for
// Duration, drain, and account. On cancellation it stops early and returns
// what it measured so far along with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkFileLimit(cfg.Subscribers); err != nil {
		return nil, err
	}
	r, err := newRun(cfg)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	res := &Result{Config: echoConfig(cfg)}

	var before procSample
	if cfg.ServerPID != 0 {
		if before, err = sampleProcessTree(cfg.ServerPID); err != nil {
			return nil, err
		}
	}

	// Phase 1: connect every subscriber at the ramp rate.
	r.log.Info("connecting subscribers", "subscribers", cfg.Subscribers, "channels", cfg.Channels, "ramp_per_s", cfg.Ramp, "sources", len(r.sources), "prefix", cfg.ChannelPrefix)
	defer r.shutdown() // idempotent; covers early returns
	rampStart := time.Now()
	gap := time.Duration(float64(time.Second) / cfg.Ramp)
	r.connWG.Add(cfg.Subscribers)
	r.subWG.Add(cfg.Subscribers)
	started := 0
	for i, s := range r.subs {
		if wait := time.Until(rampStart.Add(time.Duration(i) * gap)); wait > time.Millisecond {
			if !ctxwait.Sleep(ctx, wait) {
				break
			}
		}
		go s.run()
		started++
	}
	// Subscribers never started still hold their WaitGroup slots.
	for range cfg.Subscribers - started {
		r.connWG.Done()
		r.subWG.Done()
	}
	if !ctxwait.Group(ctx, &r.connWG) {
		return res, r.finish(res, began, ctx.Err())
	}
	r.mu.Lock()
	res.SubscribersConnected = r.connectedN
	res.ConnectErrors = r.connectErrors
	if r.connectErr != nil {
		res.ConnectErrorSample = r.connectErr.Error()
	}
	if r.connectedN > 0 {
		res.ConnectSeconds = r.lastConnect.Sub(rampStart).Seconds()
		res.ConnectP50Ms = float64(r.connectHist.ValueAtQuantile(50)) / 1e3
		res.ConnectP99Ms = float64(r.connectHist.ValueAtQuantile(99)) / 1e3
	}
	r.mu.Unlock()
	r.log.Info("subscribers connected", "connected", res.SubscribersConnected, "errors", res.ConnectErrors, "seconds", res.ConnectSeconds)
	if res.SubscribersConnected == 0 {
		return res, r.finish(res, began, fmt.Errorf("no subscriber connected to %s: %s", cfg.Target, res.ConnectErrorSample))
	}

	// Phase 2: settle, then measure idle memory.
	if !ctxwait.Sleep(ctx, cfg.Settle) {
		return res, r.finish(res, began, ctx.Err())
	}
	if cfg.ServerPID != 0 {
		idle, err := sampleProcessTree(cfg.ServerPID)
		if err != nil {
			return res, r.finish(res, began, err)
		}
		res.ServerRSSBeforeKiB = before.rssKiB
		res.ServerRSSIdleKiB = idle.rssKiB
		res.ServerRSSPerSubscriberKiB = float64(idle.rssKiB-before.rssKiB) / float64(res.SubscribersConnected)
	}

	// Phase 3: publish. Subscribers alive now are the audience of every
	// event; any that drop from here on show up as drops and losses.
	audience := make([]int64, cfg.Channels)
	for i := range audience {
		audience[i] = r.alive[i].Load()
	}
	eventsBefore := r.events()
	dropsBefore := r.dropCount()
	var serverStart procSample
	if cfg.ServerPID != 0 {
		if serverStart, err = sampleProcessTree(cfg.ServerPID); err != nil {
			return res, r.finish(res, began, err)
		}
	}
	clientStart := selfCPU()
	r.log.Info("publishing", "rate", cfg.Rate, "duration", cfg.Duration, "size", cfg.Size)
	// Throughput is counted over the nominal window, Duration from the
	// first publish: an overloaded server's timed-out publishes would
	// otherwise stretch the window by the publish timeout.
	windowEvents := make(chan int64, 1)
	windowTimer := time.AfterFunc(cfg.Duration, func() { windowEvents <- r.events() - eventsBefore })
	pubBegan := time.Now()
	pub := r.publish(ctx)
	window := cfg.Duration
	var eventsWindow int64
	if windowTimer.Stop() { // cancelled before the window closed
		eventsWindow, window = r.events()-eventsBefore, time.Since(pubBegan)
	} else {
		eventsWindow = <-windowEvents
	}

	// Phase 4: drain. The server's CPU and ours are measured up to the end
	// of the drain: a backlogged server is still delivering then.
	r.log.Info("draining", "drain", cfg.Drain, "publishes_ok", pub.ok, "publishes_failed", pub.failed)
	drained := ctxwait.Sleep(ctx, cfg.Drain)
	clientCPU := selfCPU() - clientStart
	drainEnd := time.Now()
	var serverEnd procSample
	if cfg.ServerPID != 0 {
		if serverEnd, err = sampleProcessTree(cfg.ServerPID); err != nil {
			return res, r.finish(res, began, err)
		}
	}
	eventsAll := r.events() - eventsBefore
	res.SubscribersDropped = r.dropCount() - dropsBefore
	r.shutdown()

	// Accounting.
	res.PublishesOK, res.PublishesFailed, res.PublishesNon2xx = pub.ok, pub.failed, pub.non2xx
	if len(pub.errors) > 0 {
		res.PublishErrors = pub.errors
	}
	res.PublishP50Ms = float64(pub.latency.ValueAtQuantile(50)) / 1e3
	res.PublishP99Ms = float64(pub.latency.ValueAtQuantile(99)) / 1e3
	res.PublishMaxMs = float64(pub.latency.Max()) / 1e3
	res.OfferedEventsPerSec = float64(time.Second) / float64(publishInterval(cfg.Rate))
	var audienceTotal int64
	for _, n := range audience {
		audienceTotal += n
	}
	res.OfferedDeliveriesPerSec = res.OfferedEventsPerSec * float64(audienceTotal) / float64(cfg.Channels)
	res.PublishSeconds = pub.end.Sub(pub.start).Seconds()
	if window > 0 {
		res.AchievedDeliveriesPerSec = float64(eventsWindow) / window.Seconds()
	}
	for seq := range r.delivered {
		got := int64(r.delivered[seq].Load())
		if !pub.okSeq[seq] {
			res.UnexpectedDeliveries += got
			continue
		}
		want := audience[seq%cfg.Channels]
		res.ExpectedDeliveries += want
		res.ReceivedDeliveries += got
		res.LostDeliveries += max(0, want-got)
	}
	merged := newHistogram()
	for i := range r.shards {
		sh := &r.shards[i]
		merged.Merge(sh.hist)
		res.DuplicatedDeliveries += sh.duplicated
		res.ReorderedDeliveries += sh.reordered
		res.ForeignEvents += sh.foreign
	}
	res.LatencyP50Ms = float64(merged.ValueAtQuantile(50)) / 1e3
	res.LatencyP90Ms = float64(merged.ValueAtQuantile(90)) / 1e3
	res.LatencyP99Ms = float64(merged.ValueAtQuantile(99)) / 1e3
	res.LatencyP999Ms = float64(merged.ValueAtQuantile(99.9)) / 1e3
	res.LatencyMaxMs = float64(merged.Max()) / 1e3
	res.LatencyMeanMs = merged.Mean() / 1e3
	if cfg.ServerPID != 0 {
		res.ServerCPUSeconds = (serverEnd.cpu - serverStart.cpu).Seconds()
		if eventsAll > 0 {
			res.ServerCPUMicrosPerDelivery = res.ServerCPUSeconds * 1e6 / float64(eventsAll)
		}
	}
	res.ClientCPUSeconds = clientCPU.Seconds()
	if span := drainEnd.Sub(pub.start); span > 0 {
		res.ClientCPUCores = clientCPU.Seconds() / span.Seconds()
		res.ClientLimited = res.ClientCPUCores > 0.9*float64(runtime.GOMAXPROCS(0))
	}
	if eventsAll > 0 {
		res.ClientCPUMicrosPerEvent = res.ClientCPUSeconds * 1e6 / float64(eventsAll)
	}
	r.mu.Lock()
	if r.dropErr != nil {
		res.DropErrorSample = r.dropErr.Error()
	}
	r.mu.Unlock()
	var err2 error
	if !drained || ctx.Err() != nil {
		err2 = ctx.Err()
	}
	return res, r.finish(res, began, err2)
}

func (r *run) dropCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// finish stops the subscribers and stamps the wall time.
func (r *run) finish(res *Result, began time.Time, err error) error {
	r.shutdown()
	res.DurationSeconds = time.Since(began).Seconds()
	return err
}

// checkFileLimit fails early, with advice, when the open-file limit cannot
// hold the subscribers.
func checkFileLimit(subscribers int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // cannot tell; let the dials report it
	}
	const spare = 64 // publisher connections, /proc reads, stdio
	if need := uint64(subscribers) + spare; lim.Cur < need {
		return fmt.Errorf("%w: %d subscribers need %d open files but the limit is %d (hard %d): raise it with `ulimit -n %d` or use fewer subscribers",
			ErrConfig, subscribers, need, lim.Cur, lim.Max, min(need, lim.Max))
	}
	return nil
}
