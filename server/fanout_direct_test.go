package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
)

// TestDirectWriteFallsBehind publishes events one at a time — each a batch
// of one, written from its frame by deliver — to a client that does not
// read: its socket fills, a write is taken in part, a writer goroutine
// takes over and later events queue behind it. When the client reads, it
// gets every event whole and in order, and the counters balance.
func TestDirectWriteFallsBehind(t *testing.T) {
	t.Parallel()
	srv, base := startServer(t, Config{MaxQueueBytes: 16 << 20})
	conn := dialStuck(t, base, "/sub/behind")
	tstest.WaitFor(t, 5*time.Second, "the subscriber", func() bool { return srv.Stats().Totals.Subscribers == 1 })

	const n = 300 // 300 × 20 kB: far beyond the socket buffers
	payload := func(i int) string { return fmt.Sprintf("%04d:%s", i, strings.Repeat("x", 20000)) }
	for i := range n {
		publish(t, base, "behind", payload(i))
	}
	tstest.WaitFor(t, 10*time.Second, "every event fanned out", func() bool {
		return srv.Stats().Channels["behind"].FannedOut == n
	})

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	rd := sse.NewReader(resp.Body, 1<<20)
	for i := range n {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(ev.Data) != payload(i) {
			t.Fatalf("event %d: got %.10q… (%d bytes)", i, ev.Data, len(ev.Data))
		}
	}
	tstest.WaitFor(t, 5*time.Second, "every copy counted written", func() bool {
		ch := srv.Stats().Channels["behind"]
		return ch.Written == n && ch.Dropped == 0
	})
}

// dialStuck subscribes to path from a socket with a tiny receive buffer
// that the test reads only when it chooses to.
func dialStuck(t *testing.T, base, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: smallRcvBuf}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return conn
}

// TestKeepAliveOnlyWhenSilent drives the half-interval keep-alive tick by
// hand: a stream that carried an event since the last tick gets no
// comment, a silent one gets one, and so no stream is silent for longer
// than the keep-alive interval (two ticks) while busy ones pay nothing.
func TestKeepAliveOnlyWhenSilent(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			// The ticker never fires by itself: the test ticks.
			srv, base := startServer(t, Config{KeepAlive: time.Hour, DisableDirectWrites: mode.disable})
			busy := rawStream(t, base+"/sub/busy")
			idle := rawStream(t, base+"/sub/idle")
			tstest.WaitFor(t, 5*time.Second, "two subscribers", func() bool { return srv.Stats().Totals.Subscribers == 2 })
			// Both streams wrote their start; the first tick clears that.
			srv.hub.keepAlive()
			// The first tick found both active (their starts): nothing
			// sent. A marker event on each proves it: it comes next.
			publish(t, base, "busy", "b1")
			publish(t, base, "idle", "i1")
			busy.want(t, "data: b1")
			idle.want(t, "data: i1")
			srv.hub.keepAlive() // both wrote an event since: no comment
			publish(t, base, "busy", "b2")
			busy.want(t, "data: b2")
			srv.hub.keepAlive() // busy wrote b2; idle was silent since the last tick: a comment
			idle.want(t, ":")
			publish(t, base, "busy", "b3")
			publish(t, base, "idle", "i2")
			busy.want(t, "data: b3") // no comment came before it
			idle.want(t, "data: i2")
			srv.hub.keepAlive() // both wrote since: nothing
			srv.hub.keepAlive() // both silent for two ticks: a comment each
			busy.want(t, ":")
			idle.want(t, ":")
			publish(t, base, "busy", "b4")
			busy.want(t, "data: b4")
		})
	}
}

// lineStream reads an event stream's lines, skipping blank ones and the
// id, retry and event lines.
type lineStream struct {
	lines chan string
}

func rawStream(t *testing.T, url string) *lineStream {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	ls := &lineStream{lines: make(chan string, 100)}
	go func() {
		defer close(ls.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, "id:") && !strings.HasPrefix(l, "retry:") && !strings.HasPrefix(l, "event:") {
				ls.lines <- l
			}
		}
	}()
	return ls
}

// want fails unless the next line is line.
func (ls *lineStream) want(t *testing.T, line string) {
	t.Helper()
	select {
	case got, ok := <-ls.lines:
		if !ok || got != line {
			t.Fatalf("next line %q (open %v), want %q", got, ok, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no line within 10s, want %q", line)
	}
}

// TestFanStartSpreads: over consecutive events every subscriber of a
// channel comes first about equally often (and so last too), for lists of
// any length, and the start is always in the list.
func TestFanStartSpreads(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3, 10, 997, 1000} {
		first := make([]int, n)
		events := 200 * n
		for seq := range uint64(events) {
			at := fanStart(n, seq)
			if at < 0 || at >= n {
				t.Fatalf("n %d seq %d: start %d", n, seq, at)
			}
			first[at]++
		}
		for i, c := range first {
			if c < 100 || c > 300 { // 200 each if even
				t.Fatalf("n %d: subscriber %d first in %d of %d events, want about 200", n, i, c, events)
			}
		}
	}
	if fanStart(0, 5) != 0 || fanStart(1, 5) != 0 {
		t.Fatal("a list of 0 or 1 starts at 0")
	}
}
