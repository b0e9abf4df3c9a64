package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/darktime/darktime/server"
)

func init() { subcommands = append(subcommands, newServerCmd) }

func newServerCmd() *cobra.Command {
	var (
		cfg             server.Config
		listen          string
		tlsCert, tlsKey string
		demo            bool
		pipelinesFile   string
		authFile        string
		shutdownWait    time.Duration
		logLevel        string
		trustedProxies  []string
		adminListen     string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the reference realtime server (SSE subscribe, HTTP publish, Redis fan-out)",
		Long: `Run the reference realtime server.

  GET  /sub/{channel}[/{channel}...]   subscribe (Server-Sent Events); also /sub?channel=a,b
  POST /pub?id={channel}                publish the body as one event; or a JSON batch
  POST /hooks                           model hooks into the Redis job queue (--redis)
  GET  /stats                           +1/-1 counters as JSON
  GET  /metrics                         Prometheus metrics
  GET  /queue/stats, /queue/dead        the job queue, its dead letters (token); POST /queue/dead/replay
  GET  /                                demo page (EventSource)

/stats, /metrics and /queue/* move to --admin-listen when it is given.
Publishing answers 201/202 done, 503 not done (retry), 504 outcome unknown
(retry with the answer's Idempotency-Key: delivered once).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tlsCert == "") != (tlsKey == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if shutdownWait < 0 {
				return usagef("--shutdown-timeout %v is negative", shutdownWait)
			}
			if cfg.PublishToken == "" {
				cfg.PublishToken = os.Getenv("DARKTIME_PUBLISH_TOKEN")
			}
			if cfg.AdminToken == "" {
				cfg.AdminToken = os.Getenv("DARKTIME_ADMIN_TOKEN")
			}
			var err error
			if cfg.TrustedProxies, err = server.ParseTrustedProxies(trustedProxies); err != nil {
				return usagef("--trusted-proxy: %v", err)
			}
			cfg.SeparateAdmin = adminListen != ""
			if err := cfg.Validate(); err != nil {
				return usagef("%v", err)
			}
			// The TLS library reads them whole: check they are regular
			// files of at most 1 MiB first (README: Input limits).
			for _, f := range []struct{ flag, path string }{{"--tls-cert", tlsCert}, {"--tls-key", tlsKey}} {
				if f.path == "" {
					continue
				}
				if _, err := readYAMLFile(cmd, f.path); err != nil {
					return usagef("%s: %v", f.flag, err)
				}
			}
			if tlsCert != "" {
				// Load the pair now: a missing or bad file is an error before
				// "listening" is logged, not after.
				if _, err := tls.LoadX509KeyPair(tlsCert, tlsKey); err != nil {
					return usagef("--tls-cert %s / --tls-key %s: %v", tlsCert, tlsKey, err)
				}
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = log
			if cfg.Pipelines, err = loadPipelines(cmd, pipelinesFile); err != nil {
				return err
			}
			if cfg.Authorizer, err = loadAuth(cmd, authFile); err != nil {
				return err
			}
			if cfg.Workers > 0 && cfg.RedisURL == "" {
				return usagef("--workers needs --redis: hooks go through the Redis job queue")
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Registerer, cfg.Gatherer = reg, reg

			l, err := net.Listen("tcp", listen)
			if err != nil {
				return usagef("listen on %s: %v", listen, err)
			}
			if host, _, _ := net.SplitHostPort(l.Addr().String()); cfg.PublishToken == "" && !net.ParseIP(host).IsLoopback() {
				log.Warn("no --publish-token: publishing is refused to every client that is not on loopback", "listen", l.Addr().String())
			}
			var al net.Listener
			if adminListen != "" {
				if al, err = net.Listen("tcp", adminListen); err != nil {
					_ = l.Close()
					return usagef("--admin-listen %s: %v", adminListen, err)
				}
			}
			srv, err := server.New(cfg)
			if err != nil {
				_ = l.Close()
				if al != nil {
					_ = al.Close()
				}
				return err
			}
			ctx := cmd.Context()
			if demo {
				go srv.RunDemoPublisher(ctx, "demo", time.Second)
			}
			scheme := "http"
			if tlsCert != "" {
				scheme = "https"
			}
			base := scheme + "://" + l.Addr().String()
			log.Info("darktime server listening", "url", base, "broker", srv.Stats().Broker, "node", srv.Stats().Node)
			if demo {
				fmt.Fprintf(os.Stderr, "\n  demo page:   %s/\n  subscribe:   curl -N %s/sub/demo\n  publish:     curl -d 'hello' '%s/pub?id=demo'\n  counters:    curl %s/stats\n\n", base, base, base, base)
			}
			errc := make(chan error, 2)
			go func() { errc <- srv.Serve(l, tlsCert, tlsKey) }()
			serving := 1
			if al != nil {
				log.Info("admin listening", "url", "http://"+al.Addr().String(), "serves", "/stats /metrics /queue/stats /queue/dead /healthz")
				serving++
				go func() { errc <- srv.ServeAdmin(al) }()
			}
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			log.Info("shutting down: telling subscribers to reconnect", "deadline", shutdownWait)
			sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return err
			}
			for range serving {
				if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			}
			st := srv.Stats()
			log.Info("stopped", "published", st.Totals.Published, "written", st.Totals.Written, "dropped", st.Totals.Dropped, "balance", st.Balance)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&cfg.RedisURL, "redis", "", "Redis URL for the Redis broker (several nodes); empty: in-process broker")
	f.StringVar(&cfg.RedisPrefix, "redis-prefix", "darktime:", "prefix of Redis keys and pub/sub channels")
	f.BoolVar(&cfg.RedisSharded, "redis-sharded", false, "use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7)")
	f.StringVar(&cfg.NodeID, "node-id", "", "node name in /stats (default hostname:pid)")
	f.IntVar(&cfg.HistoryLength, "history-length", 100, "events kept per channel for resume")
	f.DurationVar(&cfg.HistoryAge, "history-age", 5*time.Minute, "how long events are kept for resume")
	f.DurationVar(&cfg.KeepAlive, "keepalive", 15*time.Second, "interval of keep-alive comments")
	f.DurationVar(&cfg.RetryHint, "retry", 2*time.Second, "reconnection delay hinted to clients (retry:)")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", 10*time.Second, "give up on a subscriber whose socket stays full this long")
	f.IntVar(&cfg.MaxQueueBytes, "max-queue", 256<<10, "bytes queued for one subscriber before it is cut off as a slow consumer")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body", 64<<10, "largest publish body in bytes (413 beyond)")
	f.IntVar(&cfg.MaxChannels, "max-channels", 32, "channels per connection")
	// Secrets from the environment are read when the command runs, not as
	// flag defaults: --help would print them.
	f.StringVar(&cfg.PublishToken, "publish-token", "", "bearer token required to publish (env DARKTIME_PUBLISH_TOKEN); without it only loopback may publish")
	f.StringSliceVar(&cfg.CORSOrigins, "cors-origin", nil, "origins allowed by CORS (repeat, or * for any); a page of any other origin may not publish, post hooks or replay")
	f.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token that opens the dead letters (env DARKTIME_ADMIN_TOKEN; the publish token does too)")
	f.StringSliceVar(&trustedProxies, "trusted-proxy", nil, "proxy address or CIDR whose X-Forwarded-For/Forwarded is believed (repeat); default none")
	f.StringVar(&adminListen, "admin-listen", "", "serve /stats, /metrics, /queue/stats and the dead letters on this address instead of --listen")
	f.DurationVar(&cfg.ShutdownJitter, "shutdown-jitter", time.Second, "on SIGTERM each subscriber gets a retry drawn from [--retry, --retry + this]")
	f.IntVar(&cfg.Workers, "workers", 0, "in-process hook worker lanes (needs --redis; 0: run `darktime worker` processes instead)")
	f.StringVar(&authFile, "auth", "", "channel rules and JWT key for subscribing (YAML; see examples/server-auth.yaml); default: every channel open")
	f.StringVar(&pipelinesFile, "pipelines", "", "pipeline config YAML for hooks (default: the built-in post and thread models)")
	f.StringVar(&cfg.QueueName, "queue", "darktime:jobs", "job queue name")
	f.Int64Var(&cfg.QueueMaxLen, "queue-max-len", 0, "jobs the queue may hold before /hooks answers 503 (0: unbounded)")
	f.DurationVar(&cfg.QueueVisibility, "visibility-timeout", 30*time.Second, "a claimed job not acked within this is redelivered")
	f.IntVar(&cfg.QueueMaxAttempts, "max-attempts", 5, "deliveries before a job is dead-lettered")
	f.Int64Var(&cfg.MaxHookBytes, "max-hook-body", 1<<20, "largest /hooks body in bytes (413 beyond)")
	f.BoolVar(&cfg.DisableDirectWrites, "no-direct-writes", false, "use a writer goroutine per subscriber instead of direct socket writes")
	f.StringVar(&tlsCert, "tls-cert", "", "TLS certificate file (serves HTTPS with HTTP/2)")
	f.StringVar(&tlsKey, "tls-key", "", "TLS key file")
	f.BoolVar(&demo, "demo", false, "publish a tick event to channel \"demo\" every second")
	f.DurationVar(&shutdownWait, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for subscribers to be told to reconnect")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments: %v", args)
	}
	return nil
}

// quietLogLevel is level raised to warn at least (--quiet); a level that
// does not parse is left for newLogger to refuse.
func quietLogLevel(level string) string {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err == nil && l < slog.LevelWarn {
		return "warn"
	}
	return level
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
