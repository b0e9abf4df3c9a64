package live

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.uber.org/goleak"

	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/swarm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// startServer runs darktime's reference server on a free loopback port
// for the test and returns its base URL.
func startServer(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Config{Logger: slog.New(slog.DiscardHandler), RetryHint: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// quickRun is a short real run against target.
func quickRun(target string) swarm.Config {
	cfg := swarm.Config{
		Target: target, Clients: 40, Channels: 4, Ramp: 2000, Rate: 200,
		Phases: []swarm.Phase{
			{Name: "warm", Duration: 1500 * time.Millisecond},
			{Name: "spike", Duration: 1500 * time.Millisecond, Rate: 400},
		},
		Settle: 300 * time.Millisecond, Drain: 800 * time.Millisecond,
		DefaultRetry: 100 * time.Millisecond, Seed: 42, RunID: "live-" + time.Now().Format("150405.000000"),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return cfg
}

// receiver is a remote-write endpoint of a test: it decodes every
// request (snappy, prompb.WriteRequest) and answers with status(n) for
// the n-th (from 0), 204 when status is nil.
type receiver struct {
	status func(n int) int

	mu       sync.Mutex
	requests []*prompb.WriteRequest
	headers  []http.Header
	paths    []string
	answered int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	n := rc.answered
	rc.answered++
	code := http.StatusNoContent
	if rc.status != nil {
		code = rc.status(n)
	}
	if code/100 == 2 {
		rc.requests = append(rc.requests, &req)
		rc.headers = append(rc.headers, r.Header.Clone())
		rc.paths = append(rc.paths, r.URL.Path)
	}
	rc.mu.Unlock()
	w.WriteHeader(code)
}

func (rc *receiver) accepted() ([]*prompb.WriteRequest, []http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*prompb.WriteRequest(nil), rc.requests...), append([]http.Header(nil), rc.headers...)
}
