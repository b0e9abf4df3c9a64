package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/server/broker"
)

func init() { subcommands = append(subcommands, newServerCmd) }

// serverOptions are the flags of `darktime server`.
type serverOptions struct {
	cfg                     server.Config
	listen                  server.Listen
	pipelinesFile, authFile string
	logLevel                string
	trustedProxies          []string
}

func newServerCmd() *cobra.Command {
	var o serverOptions
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
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.flags(cmd.Flags())
	return cmd
}

func (o *serverOptions) run(cmd *cobra.Command) error {
	cfg, l := o.cfg, o.listen
	var err error
	if cfg.Logger, err = newLogger(o.logLevel); err != nil {
		return err
	}
	src := server.Sources{PipelinesFile: o.pipelinesFile, AuthFile: o.authFile, TrustedProxies: o.trustedProxies, Read: yamlReader(cmd)}
	if err := src.Apply(&cfg, l); err != nil {
		return usageIf(err, server.ErrConfig)
	}
	l.Banner = os.Stderr
	return usageIf(server.Run(cmd.Context(), cfg, l), server.ErrConfig)
}

func (o *serverOptions) flags(f *pflag.FlagSet) {
	c, l := &o.cfg, &o.listen
	f.StringVar(&l.Addr, "listen", server.DefaultListen, "address to listen on")
	f.StringVar(&c.RedisURL, "redis", "", "Redis URL for the Redis broker (several nodes): redis://host:port/db, or redis+cluster://host:port,host:port for a Redis Cluster; empty: in-process broker")
	f.StringVar(&c.RedisPrefix, "redis-prefix", server.DefaultRedisPrefix, "prefix of Redis keys and pub/sub channels")
	f.BoolVar(&c.RedisSharded, "redis-sharded", false, "use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7; always on with a redis+cluster:// URL)")
	f.DurationVar(&c.HealthProbe, "health-probe", broker.DefaultProbeInterval, "how often a health probe goes through each Redis pub/sub link (negative: none)")
	f.DurationVar(&c.HealthLag, "health-lag", broker.DefaultProbeTimeout, "how long a health probe may take before /healthz answers 503")
	f.StringVar(&c.NodeID, "node-id", "", "node name in /stats (default hostname:pid)")
	f.IntVar(&c.HistoryLength, "history-length", server.DefaultHistoryLength, "events kept per channel for resume")
	f.DurationVar(&c.HistoryAge, "history-age", server.DefaultHistoryAge, "how long events are kept for resume")
	f.DurationVar(&c.KeepAlive, "keepalive", server.DefaultKeepAlive, "the longest a stream stays silent: keep-alive comments go to streams silent for half of it")
	f.DurationVar(&c.RetryHint, "retry", server.DefaultRetryHint, "reconnection delay hinted to clients (retry:)")
	f.DurationVar(&c.WriteTimeout, "write-timeout", server.DefaultWriteTimeout, "give up on a subscriber whose socket stays full this long")
	f.IntVar(&c.MaxQueueBytes, "max-queue", server.DefaultMaxQueueBytes, "bytes queued for one subscriber before it is cut off as a slow consumer")
	f.Int64Var(&c.MaxBodyBytes, "max-body", server.DefaultMaxBodyBytes, "largest publish body in bytes (413 beyond)")
	f.IntVar(&c.MaxChannels, "max-channels", server.DefaultMaxChannels, "channels per connection")
	f.StringVar(&c.PublishToken, "publish-token", "", "bearer token required to publish (env DARKTIME_PUBLISH_TOKEN); without it only loopback may publish")
	f.StringSliceVar(&c.CORSOrigins, "cors-origin", nil, "origins allowed by CORS (repeat, or * for any); a page of any other origin may not publish, post hooks or replay")
	f.StringVar(&c.AdminToken, "admin-token", "", "bearer token that opens the dead letters (env DARKTIME_ADMIN_TOKEN; the publish token does too)")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxy", nil, "proxy address or CIDR whose X-Forwarded-For/Forwarded is believed (repeat); default none")
	f.StringVar(&l.Admin, "admin-listen", "", "serve /stats, /metrics, /queue/stats and the dead letters on this address instead of --listen")
	f.DurationVar(&c.ShutdownJitter, "shutdown-jitter", server.DefaultShutdownJitter, "on SIGTERM each subscriber gets a retry drawn from [--retry, --retry + this]")
	f.IntVar(&c.Workers, "workers", 0, "in-process hook worker lanes (needs --redis; 0: run `darktime worker` processes instead)")
	f.StringVar(&o.authFile, "auth", "", "channel rules and JWT key for subscribing (YAML; see examples/server-auth.yaml); default: every channel open")
	f.StringVar(&o.pipelinesFile, "pipelines", "", "pipeline config YAML for hooks (default: the built-in post and thread models)")
	f.StringVar(&c.QueueName, "queue", server.DefaultQueueName, "job queue name")
	f.IntVar(&c.QueuePartitions, "queue-partitions", 0, "partition streams of the job queue, spread over a cluster's shards (0: 1 on one Redis, 16 on a cluster); servers and workers must agree")
	f.Int64Var(&c.QueueMaxLen, "queue-max-len", 0, "jobs the queue may hold before /hooks answers 503 (0: unbounded; split evenly over the partitions)")
	f.DurationVar(&c.QueueVisibility, "visibility-timeout", server.DefaultQueueVisibility, "a claimed job not acked within this is redelivered")
	f.IntVar(&c.QueueMaxAttempts, "max-attempts", server.DefaultQueueMaxAttempts, "deliveries before a job is dead-lettered")
	f.Int64Var(&c.MaxHookBytes, "max-hook-body", server.DefaultMaxHookBytes, "largest /hooks body in bytes (413 beyond)")
	f.BoolVar(&c.DisableDirectWrites, "no-direct-writes", false, "use a writer goroutine per subscriber instead of direct socket writes")
	f.StringVar(&l.TLSCert, "tls-cert", "", "TLS certificate file (serves HTTPS with HTTP/2)")
	f.StringVar(&l.TLSKey, "tls-key", "", "TLS key file")
	f.BoolVar(&l.Demo, "demo", false, "publish a tick event to channel \"demo\" every second")
	f.DurationVar(&l.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long SIGTERM waits for subscribers to be told to reconnect")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
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
