package swarm

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darktime/darktime/server"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(procsWorker(spec))
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
	)
}

// startServer runs darktime's reference server on a free loopback port
// and returns its base URL.
func startServer(t *testing.T, cfg server.Config) string {
	t.Helper()
	return startNode(t, cfg, nodeOptions{}).url
}

// nodeOptions change how startNode serves.
type nodeOptions struct {
	// wrap, when set, wraps the server's handler.
	wrap func(http.Handler) http.Handler
	// sendBuffer, when set, fixes the send buffer of the accepted
	// connections (they inherit the listener's): loopback autotunes it to
	// megabytes, which a slow reader would take seconds to drain.
	sendBuffer int
}

// node is a reference server under test.
type node struct {
	srv *server.Server
	url string
	// stop shuts the node down (a graceful Shutdown: subscribers are told
	// to reconnect, the listener closes); safe to call twice.
	stop func()
}

// startNode runs darktime's reference server on a free loopback port; the
// test's cleanup stops it.
func startNode(t *testing.T, cfg server.Config, opt nodeOptions) *node {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryHint == 0 {
		cfg.RetryHint = 100 * time.Millisecond // storms reconnect within a short test run
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	if opt.sendBuffer > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, opt.sendBuffer)
			})
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	var hs *http.Server
	if opt.wrap == nil {
		go func() { served <- srv.Serve(ln, "", "") }()
	} else {
		hs = &http.Server{Handler: opt.wrap(srv.Handler())}
		go func() { served <- hs.Serve(ln) }()
	}
	var once sync.Once
	n := &node{srv: srv, url: "http://" + ln.Addr().String()}
	n.stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			if hs != nil {
				_ = hs.Shutdown(ctx)
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(n.stop)
	return n
}

// quickConfig is a small, fast run against target.
func quickConfig(t *testing.T, target string) Config {
	t.Helper()
	cfg := Config{
		Target:       target,
		Clients:      40,
		Channels:     4,
		Ramp:         2000,
		Rate:         40,
		Duration:     1500 * time.Millisecond,
		Settle:       200 * time.Millisecond,
		Drain:        700 * time.Millisecond,
		DefaultRetry: 100 * time.Millisecond,
		Seed:         42,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return cfg
}

// checkBalanced fails unless every owed delivery arrived exactly once.
func checkBalanced(t *testing.T, res *Result) {
	t.Helper()
	tot := res.Ledger.Totals()
	if tot.Credit == 0 || tot.Credit != tot.Debit || tot.Lost != 0 || tot.Duplicated != 0 {
		t.Errorf("ledger totals %+v: want credit = debit > 0, nothing lost or duplicated; unbalanced: %+v", tot, res.Ledger.Unbalanced())
	}
	if res.Publish.OK != res.Publish.Attempted || res.Publish.Failed != 0 {
		t.Errorf("publishes %+v: want all ok", res.Publish)
	}
}

// serveEvents answers a subscribe of a test SSE server: the stream's
// head and first bytes, then every event sent on c until the client
// leaves; what c holds then is written before the close (a client hanging
// up reads until it).
func serveEvents(w http.ResponseWriter, r *http.Request, first []byte, c <-chan []byte) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(first)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			for {
				select {
				case ev := <-c:
					_, _ = w.Write(ev)
				default:
					w.(http.Flusher).Flush()
					return
				}
			}
		case ev := <-c:
			_, _ = w.Write(ev)
			w.(http.Flusher).Flush()
		}
	}
}
