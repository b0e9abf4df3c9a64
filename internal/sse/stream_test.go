package sse

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/httpbody"
)

const chunkedHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// chunk frames body as chunks of at most size bytes.
func chunk(body string, size int) []byte {
	var out []byte
	for len(body) > 0 {
		n := min(size, len(body))
		out = fmt.Appendf(out, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	return out
}

// TestStreamChunked decodes events whose lines, line breaks (a CRLF too)
// and BOM are cut by chunk boundaries, with the wire fed in reads that cut
// the chunk framing too.
func TestStreamChunked(t *testing.T) {
	t.Parallel()
	body := "\xEF\xBB\xBFretry: 1500\n\nid: 1\nevent: tick\ndata: a\r\n\r\ndata: b\rdata: c\r\r: keep-alive\n\nid: 2\ndata: d\n\n"
	want := []string{"tick|a|1", "message|b\nc|1", "message|d|2"}
	for _, size := range []int{1, 2, 3, 5, 8, 13, len(body)} {
		wire := chunk(body, size)
		for _, read := range []int{1, 2, 3, 7, 64, len(wire)} {
			var got []string
			s, err := NewStream([]byte(chunkedHead), Limits{}, func(m Message) {
				got = append(got, string(m.Type)+"|"+string(m.Data)+"|"+string(m.LastEventID))
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(wire); i += read {
				if err := s.Feed(wire[i:min(i+read, len(wire))]); err != nil {
					t.Fatalf("chunks of %d, reads of %d: %v", size, read, err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || string(s.LastEventID()) != "2" || s.RetryMs() != 1500 {
				t.Fatalf("chunks of %d, reads of %d: events %q, last id %q, retry %d; want %q, 2, 1500",
					size, read, got, s.LastEventID(), s.RetryMs(), want)
			}
			if err := s.Feed([]byte("0\r\n\r\n")); !errors.Is(err, ErrStreamEnded) {
				t.Fatalf("end of body: %v, want ErrStreamEnded", err)
			}
		}
	}
}

func TestStreamFraming(t *testing.T) {
	t.Parallel()
	var got []string
	on := func(m Message) { got = append(got, string(m.Data)) }
	s, err := NewStream([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nContent-Length: 22\r\n\r\n"), Limits{}, on)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Feed([]byte("data: a\n\ndata: b\n\ndata: c\n\n")); !errors.Is(err, ErrStreamEnded) || fmt.Sprint(got) != "[a b]" {
		t.Fatalf("Content-Length body: %v, events %q", err, got)
	}
	got = nil
	s, err = NewStream([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"), Limits{}, on)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Feed([]byte("data: a\n\n0\r\n\r\n")); err != nil || fmt.Sprint(got) != "[a]" {
		t.Fatalf("close-delimited body: %v, events %q", err, got)
	}
	s, _ = NewStream([]byte(chunkedHead), Limits{}, on)
	if err := s.Feed([]byte("zz\r\n")); !errors.Is(err, httpbody.ErrMalformed) {
		t.Fatalf("bad chunk: %v, want ErrMalformed", err)
	}
	s, _ = NewStream([]byte(chunkedHead), Limits{MaxLine: 4}, on)
	if err := s.Feed(chunk("data: long\n\n", 100)); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v, want ErrLineTooLong", err)
	}
}

func TestStreamHead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ head, wantErr string }{
		{"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", "404 Not Found"},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", "text/html"},
		{"HTTP/1.1 200 OK\r\n\r\n", `Content-Type ""`},
		{"SSH-2.0-OpenSSH\r\n\r\n", "status line"},
	} {
		if _, err := NewStream([]byte(tc.head), Limits{}, nil); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: err = %v, want one mentioning %q", tc.head, err, tc.wantErr)
		}
	}
}

func TestStreamNoAllocs(t *testing.T) {
	events := 0
	s, err := NewStream([]byte(chunkedHead), Limits{}, func(Message) { events++ })
	if err != nil {
		t.Fatal(err)
	}
	stream := serverLikeStream(1000)
	var wire []byte
	for i := 0; i < len(stream); i += 150 {
		wire = append(wire, chunk(string(stream[i:min(i+150, len(stream))]), 150)...)
	}
	feed := func() {
		for i := 0; i < len(wire); i += 700 {
			if err := s.Feed(wire[i:min(i+700, len(wire))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	feed()
	if allocs := testing.AllocsPerRun(10, feed); allocs != 0 {
		t.Errorf("%v allocations per 1000 events, want 0", allocs)
	}
}
