package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/darktime/darktime/internal/redisurl"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
)

// DefaultListen is where a worker process serves /stats and /metrics.
const DefaultListen = "127.0.0.1:9091"

// ErrProcessConfig wraps the errors of ProcessConfig the user fixes (a
// flag): Redis URL, listen address.
var ErrProcessConfig = errors.New("worker: invalid process config")

// processError wraps ErrProcessConfig and says only what is wrong.
type processError struct{ err error }

func (e processError) Error() string   { return e.err.Error() }
func (e processError) Unwrap() []error { return []error{ErrProcessConfig, e.err} }

func processErrorf(format string, args ...any) error {
	return processError{fmt.Errorf(format, args...)}
}

// ProcessConfig is a worker process apart from the web tier (`darktime
// worker`): the queue and the broker it publishes through, both on one
// Redis, and the pool's settings.
type ProcessConfig struct {
	// RedisURL is the job queue's and the broker's Redis (required).
	RedisURL string
	// Prefix and Sharded are the broker's, as the servers use them.
	Prefix  string
	Sharded bool
	// Queue configures the job queue (its Client is set here).
	Queue queue.Config
	// HistoryLength and HistoryAge bound each channel's history, as the
	// servers do (broker defaults).
	HistoryLength int
	HistoryAge    time.Duration
	// Pipelines, Lanes, Batch and StopTimeout are the pool's (Config).
	Pipelines   *pipeline.Config
	Lanes       int
	Batch       int
	StopTimeout time.Duration
	// Listen is where /stats and /metrics are served (DefaultListen).
	Listen string
	Logger *slog.Logger
}

// RunProcess runs a worker process until ctx ends: it claims jobs, runs
// the pipelines, publishes through Redis to every server node and acks,
// serving its counters at Listen.
func RunProcess(ctx context.Context, pc ProcessConfig) error {
	if pc.RedisURL == "" {
		return processErrorf("--redis is required: workers take jobs from the Redis job queue")
	}
	rc, err := redisurl.New(pc.RedisURL, 0)
	if err != nil {
		return processErrorf("--redis %q: %v", pc.RedisURL, err)
	}
	if pc.Logger == nil {
		pc.Logger = slog.Default()
	}
	log := pc.Logger
	defer rc.Close()
	qc := pc.Queue
	qc.Client, qc.Logger = rc, log
	q, err := queue.New(qc)
	if err != nil {
		return err
	}
	defer q.Close()
	// The worker only publishes; it subscribes to nothing.
	b, err := broker.NewRedis(broker.RedisConfig{
		Config: broker.Config{Handler: func(broker.Delivery) {}, MaxLen: pc.HistoryLength, MaxAge: pc.HistoryAge},
		Client: rc, Prefix: pc.Prefix, Sharded: pc.Sharded, Logger: log,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), q.Collector())
	pool, err := New(Config{Queue: q, Publisher: b, Pipelines: pc.Pipelines, Lanes: pc.Lanes, Batch: pc.Batch, StopTimeout: pc.StopTimeout, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	if pc.Listen == "" {
		pc.Listen = DefaultListen
	}
	l, err := net.Listen("tcp", pc.Listen)
	if err != nil {
		return processErrorf("listen on %s: %v", pc.Listen, err)
	}
	hs := &http.Server{Handler: statsHandler(reg, q, pool), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	log.Info("darktime worker running", "lanes", pool.cfg.Lanes, "models", pool.cfg.Pipelines.ModelNames(), "stats", "http://"+l.Addr().String()+"/stats")
	err = pool.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	st := pool.Stats()
	log.Info("worker stopped", "claimed", st.Claimed, "acked", st.Acked, "retried", st.Retried, "rejected", st.Rejected, "events", st.Events)
	return err
}

// statsHandler serves /metrics and /stats: the pool's counters and the
// queue's.
func statsHandler(reg *prometheus.Registry, q *queue.Queue, pool *Pool) http.Handler {
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
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	return mux
}
