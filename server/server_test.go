package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	r3sse "github.com/r3labs/sse/v2"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
)

// writeModes runs a test with direct socket writes and with the portable
// writer path.
var writeModes = []struct {
	name    string
	disable bool
}{{"direct", false}, {"stream", true}}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv, base := startServer(t, Config{DisableDirectWrites: mode.disable})
			a := subscribe(t, base+"/sub/news", nil)
			b := subscribe(t, base+"/sub?channel=news", nil)
			var ids []string
			for i := 0; i < 100; i++ {
				ids = append(ids, publish(t, base, "news", fmt.Sprintf("line one %d\nline two", i)))
			}
			for _, s := range []*stream{a, b} {
				for i := 0; i < 100; i++ {
					ev := s.next(5 * time.Second)
					if ev.ID != ids[i] || ev.Event != "message" || string(ev.Data) != fmt.Sprintf("line one %d\nline two", i) {
						t.Fatalf("event %d = id %q event %q data %q; want id %q", i, ev.ID, ev.Event, ev.Data, ids[i])
					}
				}
			}
			// Every copy is accounted for: 100 events x 2 subscribers.
			tstest.WaitFor(t, 2*time.Second, "counters to settle", func() bool {
				st := srv.Stats()
				return st.Totals.Written == 200
			})
			st := srv.Stats()
			ch := st.Channels["news"]
			if st.Totals.Published != 100 || ch.Received != 100 || ch.FannedOut != 200 || ch.Written != 200 || ch.Dropped != 0 || st.Balance != 0 {
				t.Fatalf("stats = %+v, channel %+v", st.Totals, ch)
			}
		})
	}
}

func TestStreamHeadersAndRetry(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{RetryHint: 1500 * time.Millisecond, KeepAlive: 50 * time.Millisecond, CORSOrigins: []string{"https://app.example"}})
	req, _ := http.NewRequest("GET", base+"/sub/x", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Type":                "text/event-stream",
		"Cache-Control":               "no-cache",
		"X-Accel-Buffering":           "no",
		"Access-Control-Allow-Origin": "https://app.example",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The stream starts with the retry hint and then keep-alive comments.
	buf := make([]byte, 64)
	var got []byte
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(string(got), "retry: 1500\n\n:\n\n") && time.Now().Before(deadline) {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !strings.HasPrefix(string(got), "retry: 1500\n\n:\n\n") {
		t.Fatalf("stream starts %q, want retry hint then a keep-alive comment", got)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{CORSOrigins: []string{"https://ok.example"}})
	code, _ := do(t, "OPTIONS", base+"/pub", map[string]string{"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}, "")
	if code != http.StatusNoContent {
		t.Fatalf("allowed preflight: %d", code)
	}
	code, body := do(t, "OPTIONS", base+"/pub", map[string]string{"Origin": "https://evil.example"}, "")
	if code != http.StatusForbidden || body["error"] == nil {
		t.Fatalf("refused preflight: %d %v", code, body)
	}
}

// r3Backoff makes r3labs reconnect every 100ms until ctx ends; its
// default backoff ignores the subscription's context, which keeps the
// client's goroutine alive for minutes after the test.
type r3Backoff struct{ ctx context.Context }

func (b r3Backoff) NextBackOff() time.Duration {
	if b.ctx.Err() != nil {
		return -1 // backoff.Stop
	}
	return 100 * time.Millisecond
}

func (b r3Backoff) Reset()                   {}
func (b r3Backoff) Context() context.Context { return b.ctx }

func TestR3labsClient(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	client := r3sse.NewClient(base + "/sub/r3")
	events := make(chan *r3sse.Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	client.ReconnectStrategy = r3Backoff{ctx}
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	connected := make(chan struct{})
	var once sync.Once
	client.OnConnect(func(*r3sse.Client) { once.Do(func() { close(connected) }) })
	go func() {
		defer close(done)
		_ = client.SubscribeRawWithContext(ctx, func(ev *r3sse.Event) {
			// r3labs dispatches blocks without data (our opening retry
			// hint); the specification and browsers do not.
			if len(ev.Data) > 0 {
				events <- ev
			}
		})
	}()
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("r3labs client did not connect")
	}
	// The connection is open; give the subscription a moment to register.
	var id string
	tstest.WaitFor(t, 2*time.Second, "r3labs event", func() bool {
		id = publish(t, base, "r3", `{"hello":"r3labs"}`)
		select {
		case ev := <-events:
			if string(ev.Data) != `{"hello":"r3labs"}` || string(ev.Event) != "message" || len(ev.ID) == 0 {
				t.Fatalf("r3labs got %+v", ev)
			}
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	if id == "" {
		t.Fatal("no id")
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	srv, base := startServer(t, Config{HistoryLength: 5})
	s := subscribe(t, base+"/sub/r", nil)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, publish(t, base, "r", fmt.Sprint(i)))
	}
	for i := 0; i < 3; i++ {
		s.next(2 * time.Second)
	}
	s.close()
	for i := 3; i < 6; i++ {
		ids = append(ids, publish(t, base, "r", fmt.Sprint(i)))
	}

	t.Run("header", func(t *testing.T) {
		s := subscribe(t, base+"/sub/r", map[string]string{"Last-Event-ID": ids[2]})
		for i := 3; i < 6; i++ {
			if ev := s.next(2 * time.Second); ev.ID != ids[i] || string(ev.Data) != fmt.Sprint(i) {
				t.Fatalf("resumed event = %q %q, want %q", ev.ID, ev.Data, ids[i])
			}
		}
		// Live events follow history without a gap or a duplicate.
		id := publish(t, base, "r", "live")
		if ev := s.next(2 * time.Second); ev.ID != id {
			t.Fatalf("live event after history = %q, want %q", ev.ID, id)
		}
	})
	t.Run("query parameter", func(t *testing.T) {
		s := subscribe(t, base+"/sub/r?last_event_id="+ids[4], nil)
		if ev := s.next(2 * time.Second); ev.ID != ids[5] {
			t.Fatalf("resumed from query = %q, want %q", ev.ID, ids[5])
		}
	})
	t.Run("too old", func(t *testing.T) {
		// History keeps 5 of the 7 events: resuming from the first misses one.
		s := subscribe(t, base+"/sub/r", map[string]string{"Last-Event-ID": ids[0]})
		ev := s.next(2 * time.Second)
		if ev.Event != "darktime.missed" {
			t.Fatalf("first event = %+v, want darktime.missed", ev)
		}
		var n missedNotice
		if err := json.Unmarshal(ev.Data, &n); err != nil || n.Channel != "r" || n.LastEventID != ids[0] || n.Reason != "history_trimmed" {
			t.Fatalf("notice = %s (%v)", ev.Data, err)
		}
		if ev := s.next(2 * time.Second); ev.ID != ids[2] {
			t.Fatalf("first event after the notice = %q, want the oldest kept, %q", ev.ID, ids[2])
		}
		if srv.Stats().Totals.MissedNotices != 1 {
			t.Fatalf("missed_notices = %d", srv.Stats().Totals.MissedNotices)
		}
	})
	t.Run("invalid id", func(t *testing.T) {
		code, body := do(t, "GET", base+"/sub/r", map[string]string{"Last-Event-ID": "garbage"}, "")
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error"]), "Last-Event-ID") {
			t.Fatalf("bad Last-Event-ID: %d %v", code, body)
		}
	})
}

func TestMultiChannelCursor(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	// "b" has history before the connection, so its cursor starts there.
	before := publish(t, base, "b", "old")
	s := subscribe(t, base+"/sub/a/b", nil)
	idA := publish(t, base, "a", "a1")
	ev := s.next(2 * time.Second)
	want := "a=" + idA + ";b=" + before
	if ev.ID != want || string(ev.Data) != "a1" {
		t.Fatalf("event id %q data %q, want id %q", ev.ID, ev.Data, want)
	}
	s.close()
	// While away: one event on each channel.
	idB := publish(t, base, "b", "b1")
	idA2 := publish(t, base, "a", "a2")
	r := subscribe(t, base+"/sub/a/b", map[string]string{"Last-Event-ID": ev.ID})
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		ev := r.next(2 * time.Second)
		got[string(ev.Data)] = true
	}
	if !got["b1"] || !got["a2"] || got["old"] {
		t.Fatalf("resumed %v, want exactly a2 and b1 (ids %s %s)", got, idA2, idB)
	}
	if _, err := eventid.ParseCursor(ev.ID); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	srv, base := startServer(t, Config{MaxBodyBytes: 100, MaxChannels: 3})
	for _, tc := range []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"bad channel", "GET", "/sub/bad%20name", "", "", 400},
		{"channel too long", "GET", "/sub/" + strings.Repeat("x", 129), "", "", 400},
		{"too many channels", "GET", "/sub/a/b/c/d", "", "", 400},
		{"no channel", "GET", "/sub", "", "", 400},
		{"publish bad channel", "POST", "/pub?id=no/slash", "", "x", 400},
		{"publish bad event name", "POST", "/pub?id=ok&event=a%20b", "", "x", 400},
		{"publish too big", "POST", "/pub?id=ok", "", strings.Repeat("x", 101), 413},
		{"publish without id", "POST", "/pub", "text/plain", "x", 400},
		{"batch bad json", "POST", "/pub", "application/json", "{", 400},
		{"batch unknown field", "POST", "/pub", "application/json", `{"events":[{"channel":"a","data":"x","bogus":1}]}`, 400},
		{"batch empty", "POST", "/pub", "application/json", `{"events":[]}`, 400},
		{"batch no channel", "POST", "/pub", "application/json", `{"events":[{"data":"x"}]}`, 400},
		{"batch no data", "POST", "/pub", "application/json", `{"events":[{"channel":"a"}]}`, 400},
		{"unknown endpoint", "GET", "/nope", "", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, base+tc.path, map[string]string{"Content-Type": tc.ctype}, tc.body)
			if code != tc.want || body["error"] == nil || body["status"] != float64(tc.want) {
				t.Fatalf("%s %s: %d %v, want %d with a JSON error", tc.method, tc.path, code, body, tc.want)
			}
		})
	}
	if st := srv.Stats(); st.Totals.Published != 0 || st.Totals.Rejected != 14 {
		t.Fatalf("published %d, rejected %d", st.Totals.Published, st.Totals.Rejected)
	}
}

func TestBatchPublish(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	a := subscribe(t, base+"/sub/a", nil)
	b := subscribe(t, base+"/sub/b", nil)
	code, body := do(t, "POST", base+"/pub", map[string]string{"Content-Type": "application/json"},
		`{"events":[{"channels":["a","b"],"event":"post","data":{"id":7}},{"channel":"a","data":"plain\ntext"}]}`)
	if code != http.StatusCreated {
		t.Fatalf("batch: %d %v", code, body)
	}
	if evs, _ := body["events"].([]any); len(evs) != 3 {
		t.Fatalf("batch answer %v, want 3 ids", body)
	}
	if ev := a.next(2 * time.Second); ev.Event != "post" || string(ev.Data) != `{"id":7}` {
		t.Fatalf("a got %+v %q", ev, ev.Data)
	}
	if ev := a.next(2 * time.Second); ev.Event != "message" || string(ev.Data) != "plain\ntext" {
		t.Fatalf("a got %+v %q", ev, ev.Data)
	}
	if ev := b.next(2 * time.Second); ev.Event != "post" {
		t.Fatalf("b got %+v", ev)
	}
}

func TestPublishAuth(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{PublishToken: "s3cret"})
	for _, tc := range []struct {
		name string
		auth string
		want int
	}{
		{"missing", "", 401},
		{"not bearer", "Basic abc", 401},
		{"wrong", "Bearer nope", 403},
		{"right", "Bearer s3cret", 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, "POST", base+"/pub?id=auth", map[string]string{"Authorization": tc.auth}, "x")
			if code != tc.want {
				t.Fatalf("Authorization %q: %d %v, want %d", tc.auth, code, body, tc.want)
			}
		})
	}
	t.Run("no token: loopback only", func(t *testing.T) {
		srv, _ := startServer(t, Config{})
		req := httptest.NewRequest("POST", "/pub?id=x", strings.NewReader("x"))
		req.RemoteAddr = "192.0.2.10:4711" // a documentation address; no traffic is sent
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "loopback") {
			t.Fatalf("remote publish without token: %d %s", rec.Code, rec.Body)
		}
		req = httptest.NewRequest("POST", "/pub?id=x", strings.NewReader("x"))
		req.RemoteAddr = "[::1]:4711"
		rec = httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("loopback publish without token: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv, base := startServer(t, Config{MaxQueueBytes: 1 << 20, WriteTimeout: 2 * time.Second, DisableDirectWrites: mode.disable, MaxBodyBytes: 1 << 20})
			// A client that subscribes and never reads, with a tiny receive buffer.
			conn := dialStuck(t, base, "/sub/slow")
			fast := subscribe(t, base+"/sub/slow", nil)
			tstest.WaitFor(t, 2*time.Second, "two subscribers", func() bool { return srv.Stats().Totals.Subscribers == 2 })

			payload := strings.Repeat("p", 30000)
			batch := `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"channel":"slow","data":"`+payload+`"},`, 20), ",") + `]}`
			start := time.Now()
			const n = 400 // 12 MB: far beyond the socket buffers and the 1 MiB queue
			for i := 0; i < n/20; i++ {
				if code, body := do(t, "POST", base+"/pub", map[string]string{"Content-Type": "application/json"}, batch); code != http.StatusCreated {
					t.Fatalf("batch publish: %d %v", code, body)
				}
				// The fast subscriber reads each batch (600 kB) before the
				// next: on a busy machine its reader could otherwise fall
				// 1 MiB behind and be cut off as a slow consumer too.
				for j := 0; j < 20; j++ {
					if ev := fast.next(5 * time.Second); len(ev.Data) != len(payload) {
						t.Fatalf("fast subscriber event %d has %d bytes", i*20+j, len(ev.Data))
					}
				}
			}
			publishTime := time.Since(start)
			tstest.WaitFor(t, 20*time.Second, "the slow consumer to be cut off", func() bool {
				return srv.Stats().Totals.DisconnectsByReason[reasonSlowConsumer] == 1
			})
			// A write that was under way when the consumer was cut off ends
			// within WriteTimeout and is then counted (written or dropped);
			// until then the closed stream is no longer in the queued gauge.
			tstest.WaitFor(t, 5*time.Second, "the counters to come to rest", func() bool {
				ch := srv.Stats().Channels["slow"]
				return ch.Written+ch.Dropped == ch.FannedOut
			})
			st := srv.Stats()
			ch := st.Channels["slow"]
			if ch.FannedOut < n || ch.Written+ch.Dropped != ch.FannedOut || ch.DroppedBy[reasonSlowConsumer] == 0 || st.Balance != 0 {
				t.Fatalf("channel %+v totals %+v", ch, st.Totals)
			}
			// Every copy counted as written reaches the slow client, and no
			// other: the events its writer had written whole when the cut
			// came are written, not dropped (the kernel still delivers them).
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			rd := sse.NewReader(resp.Body, 1<<20)
			read := uint64(0)
			for {
				ev, err := rd.Next()
				if err != nil {
					break
				}
				if ev.Event == "message" {
					read++
				}
			}
			// Through net/http (stream mode) what its buffers held when the
			// write failed is unknown, up to streamBuffered: an event ending
			// there counts as dropped and may still arrive.
			slack := uint64(0)
			if mode.disable {
				slack = uint64(streamBuffered/len(payload) + 1)
			}
			if slowWritten := ch.Written - n; read < slowWritten || read > slowWritten+slack {
				t.Errorf("the slow client read %d events; the server counted %d copies written to it (slack %d)", read, slowWritten, slack)
			}
			t.Logf("%d publishes (and the fast subscriber's reads) took %v with a stuck subscriber; slow consumer dropped %d, read %d", n, publishTime, ch.Dropped, read)
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv, base := startServer(t, Config{DisableDirectWrites: mode.disable, RetryHint: time.Second})
			s := subscribe(t, base+"/sub/bye", nil)
			publish(t, base, "bye", "before")
			s.next(2 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- srv.Shutdown(ctx) }()
			rest := s.ended(5 * time.Second)
			if len(rest) != 1 || rest[0].Event != "darktime.reconnect" || rest[0].Retry < 1000 || rest[0].Retry > 2000 { // [RetryHint, RetryHint + ShutdownJitter (1s)]
				t.Fatalf("after shutdown got %+v, want one darktime.reconnect with a jittered retry", rest)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := http.Get(base + "/stats"); err == nil {
				t.Fatal("server still accepts connections after Shutdown")
			}
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("second Shutdown: %v", err)
			}
			if st := srv.Stats(); st.Balance != 0 || st.Totals.DisconnectsByReason[reasonShutdown] != 1 {
				t.Fatalf("after shutdown: %+v", st.Totals)
			}
		})
	}
}

func TestStatsAndMetricsEndpoints(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	s := subscribe(t, base+"/sub/m", nil)
	publish(t, base, "m", "x")
	s.next(2 * time.Second)
	code, st := do(t, "GET", base+"/stats", nil, "")
	if code != 200 || st["balance"] != float64(0) || st["channels"].(map[string]any)["m"] == nil {
		t.Fatalf("/stats: %d %v", code, st)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	b := string(raw)
	for _, want := range []string{"darktime_server_published_total 1", "darktime_server_written_total 1", `darktime_server_dropped_total{reason="slow_consumer"} 0`, "darktime_server_subscribers 1"} {
		if !strings.Contains(b, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// smallRcvBuf makes a client socket with a tiny receive buffer, so a
// client that does not read fills up quickly.
func smallRcvBuf(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
}

func TestDemoPage(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), "new EventSource(") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
