// Package server is darktime's reference realtime server: the DISQUS
// realtime design in Go. Browsers subscribe to arbitrary channels over
// Server-Sent Events (GET /sub/{channel}...), publishers POST events
// (nginx push-stream / nchan style, POST /pub?id={channel}), nodes share
// events and history through a broker (in-process, or Redis pub/sub and
// streams), and clients resume with Last-Event-ID.
//
// Every delivery is counted as +1/-1 so that a load test can prove where
// each event went: see Stats (the GET /stats document, in the leaf package
// server/statsfile so that readers of snapshots link no server engine).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/redisurl"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
	"github.com/darktime/darktime/server/statsfile"
	"github.com/darktime/darktime/server/worker"
)

// Config configures a Server. The zero value is a single node with the
// in-process broker and the defaults documented on each field.
type Config struct {
	// NodeID names the node in /stats (default hostname:pid).
	NodeID string
	// RedisURL selects the Redis broker (e.g. redis://127.0.0.1:6379/0, or
	// redis+cluster://host1:port,host2:port for a Redis Cluster: sharded
	// pub/sub, one link per shard); empty means the in-process broker.
	RedisURL string
	// RedisPrefix prefixes every Redis key (default "darktime:").
	RedisPrefix string
	// RedisSharded uses sharded pub/sub (SPUBLISH/SSUBSCRIBE).
	RedisSharded bool
	// HealthProbe is how often a health probe goes through each of the
	// Redis broker's pub/sub links (default 1s; negative: none, /healthz
	// then reports link state only); HealthLag is how long a probe may take
	// before /healthz answers 503 (default 3s).
	HealthProbe, HealthLag time.Duration
	// NewBroker, if set, builds the broker instead (tests, custom brokers).
	NewBroker func(broker.Handler) (broker.Broker, error)

	// Model hooks (POST /hooks) need the Redis job queue, which lives on
	// RedisURL. QueueName names it (default "darktime:jobs"); QueueMaxLen
	// bounds it (0: unbounded; full answers 503); QueueVisibility and
	// QueueMaxAttempts are the redelivery timeout (30s) and the deliveries
	// before a job is dead-lettered (5). QueuePartitions spreads the queue
	// over partition streams (default 1 on one Redis, 16 on a Redis
	// Cluster; see queue.Config.Partitions): every server and worker of one
	// queue must use the same count. A batch of hooks over several
	// partitions is enqueued per partition (207 when some fail).
	QueueName        string
	QueuePartitions  int
	QueueMaxLen      int64
	QueueVisibility  time.Duration
	QueueMaxAttempts int
	// Workers runs that many in-process worker lanes on the queue (0:
	// none; run `darktime worker` processes instead).
	Workers int
	// Pipelines configures the per-model pipelines (default
	// pipeline.DefaultConfig()); the web tier uses it to refuse unknown
	// models.
	Pipelines *pipeline.Config
	// MaxHookBytes bounds a /hooks request body (1 MiB).
	MaxHookBytes int64

	// HistoryLength and HistoryAge bound each channel's history (100, 5m).
	HistoryLength int
	HistoryAge    time.Duration

	// KeepAlive is the longest a stream stays silent (15s): every half
	// interval, a stream nothing was written to since the last check gets
	// a keep-alive comment.
	KeepAlive time.Duration
	// RetryHint is the reconnection delay sent to clients (2s).
	RetryHint time.Duration
	// WriteTimeout bounds a blocked write to one subscriber (10s).
	WriteTimeout time.Duration
	// MaxQueueBytes bounds what may wait for one subscriber; past it the
	// subscriber is disconnected as a slow consumer (256 KiB).
	MaxQueueBytes int
	// MaxBodyBytes bounds a publish request body (64 KiB).
	MaxBodyBytes int64
	// MaxChannels bounds the channels of one connection (32).
	MaxChannels int
	// Authorizer, when set, authorizes every subscription (channel rules
	// and tokens: server/auth); nil leaves subscribing open.
	Authorizer Authorizer

	// PublishToken, when set, is required as "Authorization: Bearer" on
	// POST /pub and /hooks, and opens the dead letters. Without it
	// publishing is only allowed from this host (see TrustedProxies).
	PublishToken string
	// AdminToken, when set, also opens the dead letters (GET /queue/dead,
	// POST /queue/dead/replay), without the right to publish.
	AdminToken string
	// CORSOrigins lists origins allowed to subscribe and publish from a
	// browser; "*" allows any. A state-changing request (POST /pub, /hooks,
	// /queue/dead/replay) from a page of another origin is refused (403).
	CORSOrigins []string
	// TrustedProxies lists the proxies whose X-Forwarded-For / Forwarded
	// the server believes (see ClientOf). Default none: the peer is the
	// client, and a peer on loopback that forwards for another host is not
	// local.
	TrustedProxies []netip.Prefix
	// SeparateAdmin takes /stats, /metrics, /queue/stats and the dead
	// letters off Handler and serves them on AdminHandler (ServeAdmin).
	SeparateAdmin bool
	// ShutdownJitter is the window the retry hint of the shutdown notice
	// is drawn from, per connection, uniformly in [RetryHint, RetryHint +
	// ShutdownJitter], so clients do not come back together (1s).
	ShutdownJitter time.Duration

	// DisableDirectWrites makes every subscriber use the portable writer
	// goroutine path even on plain TCP (for comparison and tests).
	DisableDirectWrites bool
	// Shards is the number of fan-out goroutines (GOMAXPROCS).
	Shards int
	// ShardQueue is each shard's event queue length (8192).
	ShardQueue int
	// ChannelIdle is how long a channel without subscribers keeps its
	// broker subscription and counters (10s).
	ChannelIdle time.Duration

	// Logger defaults to discarding (as in every darktime package: the CLI
	// injects its logger); Registerer, if set, receives the
	// server's metrics (never the global registry by default).
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; defaults to a registry holding only the
	// server's metrics.
	Gatherer prometheus.Gatherer
}

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = host + ":" + strconv.Itoa(os.Getpid())
	}
	if c.HistoryLength <= 0 {
		c.HistoryLength = DefaultHistoryLength
	}
	if c.HistoryAge <= 0 {
		c.HistoryAge = DefaultHistoryAge
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.RetryHint <= 0 {
		c.RetryHint = DefaultRetryHint
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = DefaultMaxChannels
	}
	if c.Shards <= 0 {
		c.Shards = runtime.GOMAXPROCS(0)
	}
	if c.ShardQueue <= 0 {
		c.ShardQueue = DefaultShardQueue
	}
	if c.ChannelIdle <= 0 {
		c.ChannelIdle = DefaultChannelIdle
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Pipelines == nil {
		c.Pipelines = pipeline.DefaultConfig()
	}
	if c.MaxHookBytes <= 0 {
		c.MaxHookBytes = DefaultMaxHookBytes
	}
	if c.ShutdownJitter <= 0 {
		c.ShutdownJitter = DefaultShutdownJitter
	}
	return c
}

// Server is one node of the reference realtime server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	hub     *hub
	broker  broker.Broker
	mux     *http.ServeMux
	admin   *http.ServeMux
	metrics http.Handler
	xorigin *http.CrossOriginProtection

	pipelines   *pipeline.Config
	queue       *queue.Queue
	queueClient redis.UniversalClient
	workers     *worker.Pool
	stopWorkers context.CancelFunc
	workersDone chan struct{}
	hooks       hookStats

	mu       sync.Mutex
	servers  []*http.Server
	shutdown bool
	done     chan struct{}
}

// New builds a server and connects its broker. It fails when Redis cannot
// be reached, naming the URL.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	xorigin, err := newCrossOrigin(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), xorigin: xorigin}
	s.hub = newHub(cfg, cfg.Logger)
	bcfg := broker.Config{Handler: s.hub.dispatch, OnCatchUp: s.hub.catchUp, MaxLen: cfg.HistoryLength, MaxAge: cfg.HistoryAge}
	switch {
	case cfg.NewBroker != nil:
		s.broker, err = cfg.NewBroker(s.hub.dispatch)
		s.hub.brokerName = "custom"
	case cfg.RedisURL != "":
		s.broker, err = broker.NewRedis(broker.RedisConfig{
			Config: bcfg, URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Sharded: cfg.RedisSharded,
			Logger: cfg.Logger, OnError: func(error) { s.hub.stats.brokerErrors.Add(1) },
			ProbeInterval: cfg.HealthProbe, ProbeTimeout: cfg.HealthLag,
		})
		s.hub.brokerName = "redis"
	default:
		s.broker, err = broker.NewMemory(bcfg)
		s.hub.brokerName = "memory"
	}
	if err != nil {
		return nil, err
	}
	s.hub.broker = s.broker
	s.hub.start()
	s.pipelines = cfg.Pipelines
	if cfg.RedisURL != "" {
		if err := s.startQueue(); err != nil {
			_ = s.close(context.Background())
			return nil, err
		}
	}

	reg := cfg.Registerer
	gatherer := cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gatherer = r, r
	}
	if s.queue != nil {
		if err := reg.Register(s.queue.Collector()); err != nil {
			_ = s.close(context.Background())
			return nil, fmt.Errorf("register queue metrics: %w", err)
		}
	}
	if s.workers != nil {
		if err := reg.Register(s.workers.Collector()); err != nil {
			_ = s.close(context.Background())
			return nil, fmt.Errorf("register worker metrics: %w", err)
		}
	}
	if err := reg.Register(newCollector(s.hub)); err != nil {
		_ = s.close(context.Background())
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	s.metrics = promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Broker returns the server's broker (the job pipeline publishes through it).
func (s *Server) Broker() broker.Broker { return s.broker }

// Stats returns the node's counters now.
func (s *Server) Stats() Stats {
	st := s.hub.snapshot()
	if s.queue != nil {
		st.Hooks = &HookStats{
			Accepted:    s.hooks.accepted.Load(),
			Rejected:    s.hooks.rejected.Load(),
			Unavailable: s.hooks.unavailable.Load(),
			Unknown:     s.hooks.unknown.Load(),
		}
		if s.workers != nil {
			ws := s.workers.Stats()
			st.Hooks.Workers = &ws
		}
	}
	if bh, ok := s.broker.(brokerHealth); ok {
		for _, l := range bh.Health().Links {
			st.Links = append(st.Links, statsfile.LinkStats{
				Addr: l.Addr, Up: l.Up, Channels: l.Channels, Since: l.Since, LastError: l.LastError,
				LagMs: float64(l.Lag.Microseconds()) / 1000, ProbeAgeMs: float64(l.ProbeAge.Microseconds()) / 1000, Reason: l.Reason,
			})
		}
	}
	return st
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Serve accepts connections on l until Shutdown. With certFile and keyFile
// it serves TLS with HTTP/2.
func (s *Server) Serve(l net.Listener, certFile, keyFile string) error {
	return s.serve(l, s.mux, certFile, keyFile)
}

// ServeAdmin serves AdminHandler on l until Shutdown (with
// Config.SeparateAdmin, the admin listener: --admin-listen).
func (s *Server) ServeAdmin(l net.Listener) error {
	return s.serve(l, s.AdminHandler(), "", "")
}

func (s *Server) serve(l net.Listener, h http.Handler, certFile, keyFile string) error {
	hs := s.newHTTPServer(h)
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	var err error
	if certFile != "" || keyFile != "" {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		err = hs.ServeTLS(l, certFile, keyFile)
	} else {
		err = hs.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		<-s.done // Serve returns once Shutdown finished
	}
	return err
}

// Shutdown stops accepting connections, tells every subscriber to
// reconnect (a darktime.reconnect event and a jittered retry hint, so
// clients come back spread out, to another node behind the balancer),
// waits until those notices are written or ctx ends, and closes the broker.
// It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.shutdown = true
	servers := s.servers
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = hs.Shutdown(ctx)
		}()
	}
	err := s.close(ctx)
	wg.Wait()
	for _, hs := range servers {
		_ = hs.Close()
	}
	close(s.done)
	return err
}

// startQueue connects the job queue and starts in-process workers.
func (s *Server) startQueue() error {
	// No retries: an enqueue Redis ran but did not answer would run again
	// (and the first answer's error would hide it: a dial error after a
	// timeout reads as "not done").
	qc, err := redisurl.New(s.cfg.RedisURL, -1)
	if err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	s.queueClient = qc
	s.queue, err = queue.New(queue.Config{
		Client: s.queueClient, Name: s.cfg.QueueName, Partitions: s.cfg.QueuePartitions, MaxLen: s.cfg.QueueMaxLen,
		VisibilityTimeout: s.cfg.QueueVisibility, MaxAttempts: s.cfg.QueueMaxAttempts, Logger: s.log,
	})
	if err != nil {
		_ = s.queueClient.Close()
		s.queueClient = nil
		return fmt.Errorf("job queue: %w", err)
	}
	if s.cfg.Workers <= 0 {
		return nil
	}
	s.workers, err = worker.New(worker.Config{
		Queue: s.queue, Publisher: s.broker, Pipelines: s.pipelines, Lanes: s.cfg.Workers,
		Consumer: s.cfg.NodeID, Logger: s.log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWorkers = cancel
	s.workersDone = make(chan struct{})
	go func() {
		defer close(s.workersDone)
		_ = s.workers.Run(ctx)
	}()
	return nil
}

func (s *Server) close(ctx context.Context) error {
	if s.stopWorkers != nil {
		// Workers finish the jobs they claimed (publishing through the
		// broker) before the broker closes.
		s.stopWorkers()
		<-s.workersDone
	}
	if s.queue != nil {
		_ = s.queue.Close()
		_ = s.queueClient.Close()
	}
	s.hub.shutdown(ctx, s.goodbye)
	return s.broker.Close()
}

// PublishMessage is one event to publish through Publish.
type PublishMessage struct {
	Channel string
	Event   string // default "message"
	Data    []byte
	Key     string // idempotency key (see broker.Message.Key)
}

// Publish publishes events through the broker, as POST /pub does. A
// *broker.PartialError (a Redis Cluster batch that a shard failed) comes
// with the ids of the events that were published.
func (s *Server) Publish(ctx context.Context, msgs []PublishMessage) ([]eventid.ID, error) {
	bm := make([]broker.Message, len(msgs))
	for i, m := range msgs {
		if err := validChannel(m.Channel); err != nil {
			return nil, err
		}
		ev := m.Event
		if ev == "" {
			ev = "message"
		}
		if err := validEventName(ev); err != nil {
			return nil, err
		}
		bm[i] = broker.Message{Channel: m.Channel, Body: sse.AppendBody(nil, ev, m.Data), Key: m.Key}
	}
	ids, err := s.broker.Publish(ctx, bm)
	var partial *broker.PartialError
	if errors.As(err, &partial) {
		for _, e := range partial.Errs {
			switch {
			case e == nil:
				s.hub.stats.published.Add(1)
			case outcomeUnknown(e):
				s.hub.stats.publishErrors.Add(1)
				s.hub.stats.publishUnknown.Add(1)
			default:
				s.hub.stats.publishErrors.Add(1)
			}
		}
		return partial.IDs, err
	}
	if err != nil {
		s.hub.stats.publishErrors.Add(uint64(len(msgs)))
		if outcomeUnknown(err) {
			s.hub.stats.publishUnknown.Add(uint64(len(msgs)))
		}
		return nil, err
	}
	s.hub.stats.published.Add(uint64(len(ids)))
	return ids, nil
}
