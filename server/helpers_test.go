package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/sse"
)

// startServer runs a Server on a loopback port for the test.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
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
	return srv, "http://" + l.Addr().String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// stream is a test SSE subscriber reading with the sse package's parser.
type stream struct {
	t      *testing.T
	resp   *http.Response
	events chan sse.Event
	err    chan error
}

// subscribe opens an SSE stream; hdr may set Last-Event-ID.
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
	if ct := resp.Header.Get("Content-Type"); ct != sse.ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	s := &stream{t: t, resp: resp, events: make(chan sse.Event, 10000), err: make(chan error, 1)}
	go func() {
		r := sse.NewReader(bufio.NewReader(resp.Body), 0)
		for {
			ev, err := r.Next()
			if err != nil {
				s.err <- err
				close(s.events)
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

// next returns the next event or fails the test after timeout.
func (s *stream) next(timeout time.Duration) sse.Event {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("stream ended: %v", <-s.err)
		}
		return ev
	case <-time.After(timeout):
		s.t.Fatalf("no event within %v", timeout)
	}
	return sse.Event{}
}

// ended waits until the stream ends.
func (s *stream) ended(timeout time.Duration) []sse.Event {
	s.t.Helper()
	var got []sse.Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-deadline:
			s.t.Fatalf("stream did not end within %v", timeout)
		}
	}
}

// publish posts data to channel and returns the assigned id.
func publish(t *testing.T, base, channel, data string) string {
	t.Helper()
	resp, err := http.Post(base+"/pub?id="+channel, "text/plain", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r PublishResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish to %s: status %d, %v", channel, resp.StatusCode, err)
	}
	return r.ID
}

// do sends a request and decodes the JSON answer.
func do(t *testing.T, method, url string, hdr map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, url, raw)
		}
	}
	return resp.StatusCode, out
}

func newReader(r io.Reader) *sse.Reader { return sse.NewReader(bufio.NewReader(r), 0) }
