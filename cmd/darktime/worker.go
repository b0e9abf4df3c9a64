package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
	"github.com/darktime/darktime/server/worker"
)

func init() { subcommands = append(subcommands, newWorkerCmd) }

func newWorkerCmd() *cobra.Command {
	var (
		redisURL, prefix, queueName, pipelinesFile, listen, logLevel string
		sharded                                                      bool
		lanes, batch, maxAttempts, historyLength                     int
		visibility, historyAge, stopTimeout                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run hook workers: claim jobs from the Redis queue, run the pipelines, publish",
		Long: `Run hook workers apart from the web tier, so the two scale apart.

A worker claims model-hook jobs (POST /hooks on any server) from the Redis
job queue, runs each through its model's pipeline of stages, publishes the
events through Redis to every server node, and acks the job. It serves its
counters at --listen (/stats, /metrics).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if redisURL == "" {
				return usagef("--redis is required: workers take jobs from the Redis job queue")
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			pipes, err := loadPipelines(cmd, pipelinesFile)
			if err != nil {
				return err
			}
			opt, err := redis.ParseURL(redisURL)
			if err != nil {
				return usagef("--redis %q: %v", redisURL, err)
			}
			rc := redis.NewClient(opt)
			defer rc.Close()
			q, err := queue.New(queue.Config{Client: rc, Name: queueName, VisibilityTimeout: visibility, MaxAttempts: maxAttempts, Logger: log})
			if err != nil {
				return err
			}
			defer q.Close()
			// The worker only publishes; it subscribes to nothing.
			b, err := broker.NewRedis(broker.RedisConfig{
				Config: broker.Config{Handler: func(broker.Delivery) {}, MaxLen: historyLength, MaxAge: historyAge},
				Client: rc, Prefix: prefix, Sharded: sharded, Logger: log,
			})
			if err != nil {
				return err
			}
			defer b.Close()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), q.Collector())
			pool, err := worker.New(worker.Config{Queue: q, Publisher: b, Pipelines: pipes, Lanes: lanes, Batch: batch, StopTimeout: stopTimeout, Logger: log, Registerer: reg})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return usagef("listen on %s: %v", listen, err)
			}
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
				qs, err := q.Stats(r.Context())
				w.Header().Set("Content-Type", "application/json")
				body := map[string]any{"workers": pool.Stats()}
				if err == nil {
					body["queue"] = qs
					body["imbalance"] = qs.Imbalance()
				} else {
					body["queue_error"] = err.Error()
				}
				_ = jsonEncode(w, body)
			})
			hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = hs.Serve(l) }()
			log.Info("darktime worker running", "lanes", lanes, "models", pipes.ModelNames(), "stats", "http://"+l.Addr().String()+"/stats")
			err = pool.Run(cmd.Context())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
			st := pool.Stats()
			log.Info("worker stopped", "claimed", st.Claimed, "acked", st.Acked, "retried", st.Retried, "rejected", st.Rejected, "events", st.Events)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&redisURL, "redis", "", "Redis URL of the job queue and the broker (required)")
	f.StringVar(&prefix, "redis-prefix", "darktime:", "prefix of the broker's Redis keys (as the servers use)")
	f.BoolVar(&sharded, "redis-sharded", false, "publish with SPUBLISH (as the servers subscribe)")
	f.StringVar(&queueName, "queue", "darktime:jobs", "job queue name")
	f.StringVar(&pipelinesFile, "pipelines", "", "pipeline config YAML (default: the built-in post and thread models)")
	f.IntVar(&lanes, "lanes", 2, "processing goroutines; jobs of one object stay on one lane, in order")
	f.IntVar(&batch, "batch", 256, "jobs per claim")
	f.IntVar(&maxAttempts, "max-attempts", 5, "deliveries before a job is dead-lettered")
	f.DurationVar(&visibility, "visibility-timeout", 30*time.Second, "a claimed job not acked within this is redelivered")
	f.IntVar(&historyLength, "history-length", 100, "events kept per channel (as the servers)")
	f.DurationVar(&historyAge, "history-age", 5*time.Minute, "how long events are kept (as the servers)")
	f.DurationVar(&stopTimeout, "stop-timeout", 10*time.Second, "on SIGTERM, how long to finish claimed jobs")
	f.StringVar(&listen, "listen", "127.0.0.1:9091", "address for /stats and /metrics")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// loadPipelines reads a pipeline YAML file, or returns the default config.
func loadPipelines(cmd *cobra.Command, path string) (*pipeline.Config, error) {
	if path == "" {
		return pipeline.DefaultConfig(), nil
	}
	data, err := readYAMLFile(cmd, path)
	if err != nil {
		return nil, usagef("--pipelines: %v", err)
	}
	cfg, err := pipeline.LoadConfig(data)
	if err != nil {
		if errors.Is(err, pipeline.ErrInvalidConfig) {
			return nil, usagef("--pipelines %s: %v", path, err)
		}
		return nil, err
	}
	return cfg, nil
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
