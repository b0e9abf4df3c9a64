package fanoutbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darktime/darktime/internal/procstat"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testBroker is a minimal pub/sub SSE server with the benchmark's URLs.
type testBroker struct {
	// closeDelimited answers subscribers without chunked encoding, as
	// nchan does, by hijacking the connection.
	closeDelimited bool
	// dropDelivery, when > 0, silently skips that (1-based) delivery.
	dropDelivery int64

	deliveries atomic.Int64
	mu         sync.Mutex
	subs       map[string][]chan []byte
}

func newTestBroker(t *testing.T, b *testBroker) *httptest.Server {
	t.Helper()
	srv := startTestBroker(b)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

func startTestBroker(b *testBroker) *httptest.Server {
	b.subs = make(map[string][]chan []byte)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sub/{channel}", b.subscribe)
	mux.HandleFunc("POST /pub", b.publish)
	return httptest.NewServer(mux)
}

func (b *testBroker) subscribe(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, 1024)
	channel := r.PathValue("channel")
	b.mu.Lock()
	b.subs[channel] = append(b.subs[channel], ch)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		subs := b.subs[channel]
		for i, c := range subs {
			if c == ch {
				b.subs[channel] = append(subs[:i], subs[i+1:]...)
				break
			}
		}
	}()

	var (
		out   io.Writer = w
		flush           = func() error { return http.NewResponseController(w).Flush() }
		done            = r.Context().Done()
	)
	if b.closeDelimited {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		out, flush = rw, rw.Flush
		fmt.Fprint(rw, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n\r\n: hi\n\n")
		closed := make(chan struct{})
		go func() { // notice the client going away
			_, _ = io.Copy(io.Discard, conn)
			close(closed)
		}()
		done = closed
	} else {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
	}
	if err := flush(); err != nil {
		return
	}
	for id := 0; ; id++ {
		select {
		case <-done:
			return
		case data := <-ch:
			fmt.Fprintf(out, "id: %d\nevent: message\ndata: %s\n\n", id, data)
			if err := flush(); err != nil {
				return
			}
		}
	}
}

func (b *testBroker) publish(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	subs := b.subs[r.URL.Query().Get("id")]
	for _, ch := range subs {
		if n := b.deliveries.Add(1); n == b.dropDelivery {
			continue
		}
		ch <- data
	}
	b.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func testConfig(target string) Config {
	return Config{
		Target:      target,
		Subscribers: 50,
		Channels:    5,
		Rate:        100,
		Duration:    500 * time.Millisecond,
		Ramp:        5000,
		Sources:     2,
		ServerPID:   os.Getpid(), // the test broker lives in this process
		Settle:      50 * time.Millisecond,
		Drain:       300 * time.Millisecond,
	}
}

func TestRunAccounting(t *testing.T) {
	tests := []struct {
		name     string
		broker   *testBroker
		wantLost int64
	}{
		{"chunked", &testBroker{}, 0},
		{"close-delimited", &testBroker{closeDelimited: true}, 0},
		{"one dropped", &testBroker{dropDelivery: 77}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestBroker(t, tt.broker)
			res, err := Run(t.Context(), testConfig(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", res)
			if res.SubscribersConnected != 50 || res.ConnectErrors != 0 || res.SubscribersDropped != 0 {
				t.Fatalf("connected %d, errors %d (%s), dropped %d", res.SubscribersConnected, res.ConnectErrors, res.ConnectErrorSample, res.SubscribersDropped)
			}
			if res.PublishesOK < 25 || res.PublishesFailed != 0 { // ~50 planned; slow under -race
				t.Fatalf("publishes: %d ok, %d failed %v", res.PublishesOK, res.PublishesFailed, res.PublishErrors)
			}
			if want := res.PublishesOK * 10; res.ExpectedDeliveries != want {
				t.Errorf("expected deliveries %d, want %d (publishes × subscribers per channel)", res.ExpectedDeliveries, want)
			}
			if res.LostDeliveries != tt.wantLost || res.ReceivedDeliveries != res.ExpectedDeliveries-tt.wantLost {
				t.Errorf("expected %d, received %d, lost %d; want lost %d", res.ExpectedDeliveries, res.ReceivedDeliveries, res.LostDeliveries, tt.wantLost)
			}
			if res.DuplicatedDeliveries+res.ReorderedDeliveries+res.UnexpectedDeliveries+res.ForeignEvents != 0 {
				t.Errorf("dup %d, reordered %d, unexpected %d, foreign %d; want none", res.DuplicatedDeliveries, res.ReorderedDeliveries, res.UnexpectedDeliveries, res.ForeignEvents)
			}
			if res.LatencyP50Ms <= 0 || res.LatencyMaxMs < res.LatencyP99Ms || res.LatencyMaxMs > 1000 {
				t.Errorf("latency p50 %v, p99 %v, max %v ms", res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs)
			}
			if res.ServerRSSIdleKiB <= 0 || res.ClientCPUSeconds <= 0 || res.AchievedDeliveriesPerSec <= 0 {
				t.Errorf("rss %d KiB, client cpu %v s, achieved %v/s", res.ServerRSSIdleKiB, res.ClientCPUSeconds, res.AchievedDeliveriesPerSec)
			}
		})
	}
}

// Two nodes sharing one broker: the subscribers and the publishes spread
// over both, every delivery is accounted for, and the extra processes are
// measured per delivery.
func TestRunTwoNodes(t *testing.T) {
	b := &testBroker{subs: make(map[string][]chan []byte)}
	var hits [2]atomic.Int64
	node := func(i int) *httptest.Server { // one broker (b.subs) behind two nodes
		mux := http.NewServeMux()
		mux.HandleFunc("GET /sub/{channel}", b.subscribe)
		mux.HandleFunc("POST /pub", b.publish)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			mux.ServeHTTP(w, r)
		}))
		t.Cleanup(func() {
			srv.CloseClientConnections()
			srv.Close()
		})
		return srv
	}
	node1, node2 := node(0), node(1)
	cfg := testConfig(node1.URL + "," + node2.URL)
	cfg.Processes = []procstat.Named{{Name: "self", PID: os.Getpid()}}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res)
	if res.LostDeliveries != 0 || res.ReceivedDeliveries != res.ExpectedDeliveries || res.ExpectedDeliveries == 0 {
		t.Errorf("expected %d, received %d, lost %d", res.ExpectedDeliveries, res.ReceivedDeliveries, res.LostDeliveries)
	}
	if hits[0].Load() < 10 || hits[1].Load() < 10 {
		t.Errorf("requests per node %d, %d: want both nodes used", hits[0].Load(), hits[1].Load())
	}
	if len(res.Processes) != 1 || res.Processes[0].Name != "self" || res.Processes[0].CPUSeconds <= 0 || res.Processes[0].MicrosPerDelivery <= 0 {
		t.Errorf("processes %+v: want self measured", res.Processes)
	}
	if !strings.Contains(res.String(), "self:") {
		t.Errorf("summary does not show the process:\n%s", res)
	}
}

func TestRunDroppedSubscribers(t *testing.T) {
	b := &testBroker{}
	srv := newTestBroker(t, b)
	cfg := testConfig(srv.URL)
	cfg.ServerPID = 0
	go func() { // cut every stream shortly into the publish window
		time.Sleep(cfg.Settle + 250*time.Millisecond)
		srv.CloseClientConnections()
	}()
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.SubscribersDropped != 50 || res.DropErrorSample == "" {
		t.Errorf("dropped %d (%q), want 50", res.SubscribersDropped, res.DropErrorSample)
	}
	if res.LostDeliveries == 0 || res.LostDeliveries != res.ExpectedDeliveries-res.ReceivedDeliveries {
		t.Errorf("expected %d, received %d, lost %d", res.ExpectedDeliveries, res.ReceivedDeliveries, res.LostDeliveries)
	}
}

func TestRunNoServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // nothing listens there any more
	cfg := testConfig(srv.URL)
	cfg.ServerPID = 0
	res, err := Run(t.Context(), cfg)
	if err == nil || res == nil || res.ConnectErrors != 50 || res.ConnectErrorSample == "" {
		t.Fatalf("res %+v, err %v; want 50 connect errors and an error", res, err)
	}
}

func TestRunCancel(t *testing.T) {
	srv := newTestBroker(t, &testBroker{})
	cfg := testConfig(srv.URL)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || res == nil {
		t.Fatalf("err = %v, want deadline exceeded with a partial result", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled run took %v", took)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Target: "https://127.0.0.1:1"},
		{Target: "127.0.0.1:8080"},
		{Target: "http://127.0.0.1:1,127.0.0.1:2"},
		{Processes: []procstat.Named{{Name: "x"}}},
		{Subscribers: 5, Channels: 10},
		{Rate: -1},
		{Sources: 300},
		{ChannelPrefix: "a-b"},
		{Rate: 1e6, Duration: time.Hour},
	} {
		if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
