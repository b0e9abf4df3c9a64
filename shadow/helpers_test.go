package shadow

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// serve runs h on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = hs.Close()
		<-done
	})
	return "http://" + l.Addr().String()
}

// refServer is a reference realtime server on a loopback port.
type refServer struct {
	srv  *server.Server
	url  string
	done chan struct{}
}

func startRef(t *testing.T) *refServer {
	t.Helper()
	srv, err := server.New(server.Config{Logger: testLogger(t), KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &refServer{srv: srv, url: "http://" + l.Addr().String(), done: make(chan struct{})}
	go func() { defer close(r.done); _ = srv.Serve(l, "", "") }()
	t.Cleanup(r.stop)
	return r
}

func (r *refServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	<-r.done
}

// startProxy runs a Proxy and its admin API on loopback ports.
func startProxy(t *testing.T, cfg Config) (p *Proxy, url, admin string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return p, serve(t, p), serve(t, p.AdminHandler())
}

// stream is a test SSE subscriber.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events chan sse.Event
}

func subscribe(t *testing.T, url string, hdr map[string]string) *stream {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("subscribe %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("subscribe %s: status %d: %s", url, resp.StatusCode, body)
	}
	s := &stream{t: t, resp: resp, events: make(chan sse.Event, 10000)}
	go func() {
		defer close(s.events)
		r := sse.NewReader(bufio.NewReader(resp.Body), 0)
		for {
			ev, err := r.Next()
			if err != nil {
				return
			}
			ev.Data = append([]byte(nil), ev.Data...)
			s.events <- ev
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() { s.resp.Body.Close() }

// next returns the next event that is not a darktime.* control event.
func (s *stream) next(timeout time.Duration) sse.Event {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("stream ended")
			}
			if strings.HasPrefix(ev.Event, "darktime.") {
				continue
			}
			return ev
		case <-deadline:
			s.t.Fatalf("no event within %v", timeout)
		}
	}
}

func publish(t *testing.T, base, channel, data string) {
	t.Helper()
	resp, err := http.Post(base+"/pub?id="+channel, "text/plain", strings.NewReader(data))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: status %d: %s", resp.StatusCode, body)
	}
}

// waitFor is tstest.WaitFor, under the name this package's tests use.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tstest.WaitFor(t, timeout, what, cond)
}

func getReport(t *testing.T, admin string) Report {
	t.Helper()
	resp, err := http.Get(admin + "/_darktime/ledger")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func targetOf(r Report, name string) TargetReport {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return TargetReport{}
}

func userCookie(user int) map[string]string {
	return map[string]string{"Cookie": fmt.Sprintf("uid=u%d", user)}
}

func mustURL(t *testing.T, s string) *neturl.URL {
	t.Helper()
	u, err := neturl.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func parseQuery(q string) (neturl.Values, error) { return neturl.ParseQuery(q) }

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }
