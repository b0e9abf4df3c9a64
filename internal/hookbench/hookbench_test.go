package hookbench

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer serves a reference server with in-process workers on Redis
// and returns its base URL.
func startServer(t *testing.T, workers int) string {
	t.Helper()
	return startServerConfig(t, server.Config{Workers: workers})
}

// startServerConfig is startServer with more of the server's config.
func startServerConfig(t *testing.T, cfg server.Config) string {
	t.Helper()
	rds := redistest.Start(t)
	cfg.RedisURL = rds.URL
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l, "", "")
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	return "http://" + l.Addr().String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRunAgainstServer runs both phases, small, against the reference
// server: every hook is acked once and delivered once, and latencies and
// CPU are measured.
func TestRunAgainstServer(t *testing.T) {
	base := startServer(t, 2)
	res, err := Run(t.Context(), Config{
		Target:       base,
		Subscribers:  5,
		Jobs:         2_000,
		Batch:        100,
		Rate:         500,
		Duration:     2 * time.Second,
		LatencyBatch: 10,
		Processes:    []Process{{Name: "self", PID: os.Getpid()}},
		Settle:       100 * time.Millisecond,
		Drain:        5 * time.Second,
		StallTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%v", err, res)
	}
	t.Logf("\n%s", res)
	if res.SubscribersConnected != 5 || res.SubscribersDropped != 0 || res.ForeignEvents != 0 {
		t.Errorf("subscribers %d connected, %d dropped; %d foreign events", res.SubscribersConnected, res.SubscribersDropped, res.ForeignEvents)
	}
	tp := res.Throughput
	if tp == nil {
		t.Fatal("no throughput result")
	}
	if tp.HooksAccepted != 2_000 || tp.Acked != 2_000 || tp.Imbalance != 0 || tp.DeadLettered != 0 {
		t.Errorf("throughput: %d accepted, %d acked, imbalance %d, %d dead", tp.HooksAccepted, tp.Acked, tp.Imbalance, tp.DeadLettered)
	}
	if tp.EventsExpected != 2_000 || tp.EventsReceived != 2_000 || tp.EventsLost != 0 || tp.EventsDuplicated != 0 {
		t.Errorf("throughput delivery: %+v", tp.Delivery)
	}
	if tp.JobsPerSec <= 0 || tp.LatencyMaxMs <= 0 || len(tp.Processes) != 1 || tp.Processes[0].CPUSeconds <= 0 {
		t.Errorf("throughput: %.0f jobs/s, max latency %.2f ms, processes %+v", tp.JobsPerSec, tp.LatencyMaxMs, tp.Processes)
	}
	lat := res.Latency
	if lat == nil {
		t.Fatal("no latency result")
	}
	// 2 s at 50 requests/s of 10 hooks.
	if lat.HooksAccepted < 900 || lat.HooksFailed != 0 || lat.Acked != lat.HooksAccepted || lat.Imbalance != 0 {
		t.Errorf("latency: %d accepted, %d failed, %d acked, imbalance %d", lat.HooksAccepted, lat.HooksFailed, lat.Acked, lat.Imbalance)
	}
	if lat.EventsExpected != lat.HooksAccepted || lat.EventsReceived != lat.EventsExpected || lat.EventsLost != 0 || lat.EventsDuplicated != 0 || lat.EventsUnexpected != 0 {
		t.Errorf("latency delivery: %+v", lat.Delivery)
	}
	if lat.LatencySamples != lat.EventsReceived || lat.LatencyP50Ms <= 0 || lat.LatencyP99Ms < lat.LatencyP50Ms || lat.LatencyMaxMs < lat.LatencyP99Ms {
		t.Errorf("latency: %d samples, p50 %.2f, p99 %.2f, max %.2f", lat.LatencySamples, lat.LatencyP50Ms, lat.LatencyP99Ms, lat.LatencyMaxMs)
	}
	if !strings.Contains(res.String(), "hook→wire: p50") {
		t.Errorf("summary lacks the latency line:\n%s", res)
	}
}

// TestRunStalls: without workers nothing is acked, and the run says so
// instead of waiting forever.
func TestRunStalls(t *testing.T) {
	base := startServer(t, 0)
	res, err := Run(t.Context(), Config{
		Target: base, Subscribers: 2, Phase: PhaseThroughput, Jobs: 10, Batch: 5,
		Settle: time.Millisecond, StallTimeout: 300 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "are workers running?") {
		t.Fatalf("Run without workers: %v", err)
	}
	if res == nil || res.Throughput == nil || res.Throughput.HooksAccepted != 10 || res.Throughput.Acked != 0 {
		t.Fatalf("result %+v", res)
	}
}

// TestRunQueueFull: a queue that holds fewer jobs than the posters send
// answers 503, and the throughput phase posts those batches again until
// every job is in.
func TestRunQueueFull(t *testing.T) {
	base := startServerConfig(t, server.Config{Workers: 1, QueueMaxLen: 150})
	res, err := Run(t.Context(), Config{
		Target: base, Subscribers: 3, Phase: PhaseThroughput, Jobs: 2_000, Batch: 100, Posters: 4,
		Settle: time.Millisecond, StallTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%v", err, res)
	}
	tp := res.Throughput
	if tp.HooksAccepted != 2_000 || tp.HooksFailed != 0 || tp.RequestsFailed != 0 || tp.RequestsRetried == 0 || tp.Requests != 20+tp.RequestsRetried {
		t.Errorf("throughput: %d accepted, %d failed; %d requests, %d failed, %d retried", tp.HooksAccepted, tp.HooksFailed, tp.Requests, tp.RequestsFailed, tp.RequestsRetried)
	}
	if tp.EventsReceived != 2_000 || tp.EventsLost != 0 || tp.EventsDuplicated != 0 {
		t.Errorf("throughput delivery: %+v", tp.Delivery)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"phase", Config{Phase: "warmup"}, "phase"},
		{"batch", Config{Batch: MaxBatch + 1}, "batch must be"},
		{"rate", Config{Rate: -1}, "rate"},
		{"prefix", Config{ThreadPrefix: "a-b"}, "thread prefix"},
		{"target", Config{Target: "https://example.com"}, "plain HTTP/1.1"},
		{"pid", Config{Processes: []Process{{Name: "x"}}}, "positive pid"},
		{"too many hooks", Config{Rate: 1e6, Duration: 24 * time.Hour}, "hooks planned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Run(t.Context(), tt.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRunNoServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Run(t.Context(), Config{Target: "http://" + addr})
	if err == nil || errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--redis") {
		t.Fatalf("err %v, want a hint", err)
	}
}
