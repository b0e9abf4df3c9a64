package fanoutbench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// collector is an eventSink that keeps copies of the events.
type collector struct{ events []string }

func (c *collector) event(_, data []byte) { c.events = append(c.events, string(data)) }

// parseAll feeds input to a fresh eventParser in pieces of at most step
// bytes (step <= 0: all at once).
func parseAll(input []byte, step int) ([]string, error) {
	c := &collector{}
	p := &eventParser{sink: c}
	if step <= 0 {
		step = len(input) + 1
	}
	for len(input) > 0 {
		n := min(step, len(input))
		if err := p.feed(input[:n]); err != nil {
			return c.events, err
		}
		input = input[n:]
	}
	return c.events, nil
}

// referenceEvents is a direct, non-streaming reading of the event-stream
// interpretation rules, to check eventParser against.
func referenceEvents(input string) []string {
	input = strings.ReplaceAll(input, "\r\n", "\n")
	input = strings.ReplaceAll(input, "\r", "\n")
	lines := strings.Split(input, "\n")
	lines = lines[:len(lines)-1] // the last piece has no line ending yet
	var events []string
	var data strings.Builder
	hasData := false
	for _, line := range lines {
		switch {
		case line == "":
			if hasData {
				events = append(events, strings.TrimSuffix(data.String(), "\n"))
			}
			data.Reset()
			hasData = false
		case line[0] == ':':
		default:
			field, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			if field == "data" {
				data.WriteString(value + "\n")
				hasData = true
			}
		}
	}
	return events
}

func TestEventParser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"lf", "id: 1\nevent: m\ndata: hello\n\n", []string{"hello"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"cr", "data: a\r\rdata: b\r\r", []string{"a", "b"}},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"a\nb"}},
		{"no space", "data:x\n\n", []string{"x"}},
		{"two spaces keep one", "data:  x\n\n", []string{" x"}},
		{"empty data", "data\n\ndata:\n\n", []string{"", ""}},
		{"comment and keep-alive", ": hi\n\n:\n\ndata: z\n\n", []string{"z"}},
		{"no data no event", "id: 7\nevent: e\n\n", nil},
		{"incomplete event dropped", "data: a\n\ndata: b\n", []string{"a"}},
		{"nchan", ": hi\n\nid: 1795628608:0\ndata: {\"seq\":1}\n\n", []string{`{"seq":1}`}},
		{"other fields", "retry: 10\ndatax: no\ndata: yes\n\n", []string{"yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if ref := referenceEvents(tt.input); fmt.Sprint(ref) != fmt.Sprint(tt.want) {
				t.Fatalf("reference disagrees with the table: %q", ref)
			}
			for _, step := range []int{0, 1, 2, 3, 7} {
				got, err := parseAll([]byte(tt.input), step)
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("step %d: got %q, want %q", step, got, tt.want)
				}
			}
		})
	}
}

func TestEventParserLimits(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("x"), maxLineBytes+1)
	if _, err := parseAll(long, 4096); !errors.Is(err, errLineTooLong) {
		t.Errorf("long line: err = %v, want errLineTooLong", err)
	}
	line := append([]byte("data: "), bytes.Repeat([]byte("y"), 60_000)...)
	line = append(line, '\n')
	var many []byte
	for range 20 {
		many = append(many, line...)
	}
	if _, err := parseAll(many, 4096); !errors.Is(err, errEventTooLong) {
		t.Errorf("big event: err = %v, want errEventTooLong", err)
	}
}

// sinkBuffer is a bodySink that concatenates what it is fed.
type sinkBuffer struct{ bytes.Buffer }

func (s *sinkBuffer) feed(b []byte) error { s.Write(b); return nil }

func decodeAll(d *bodyDecoder, input []byte, step int) error {
	if step <= 0 {
		step = len(input) + 1
	}
	for len(input) > 0 {
		n := min(step, len(input))
		if err := d.feed(input[:n]); err != nil {
			return err
		}
		input = input[n:]
	}
	return nil
}

func TestBodyDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mode    bodyMode
		length  int64
		input   string
		want    string
		wantErr error // nil: the body is still open at the end
	}{
		{"chunked", bodyChunked, 0, "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n", "hello 0123456789", nil},
		{"chunked end", bodyChunked, 0, "3\r\nabc\r\n0\r\n\r\n", "abc", errBodyEnd},
		{"chunked bare lf", bodyChunked, 0, "3\nabc\n2\nde\n", "abcde", nil},
		{"chunked upper hex", bodyChunked, 0, "1F\r\n" + strings.Repeat("z", 31) + "\r\n", strings.Repeat("z", 31), nil},
		{"chunked bad size", bodyChunked, 0, "xyz\r\n", "", errors.New("bad byte")},
		{"chunked missing crlf", bodyChunked, 0, "2\r\nabX", "ab", errors.New("missing CRLF")},
		{"length", bodyLength, 4, "abcdef", "abcd", errBodyEnd},
		{"close", bodyClose, 0, "anything\r\n0\r\n", "anything\r\n0\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []int{0, 1, 2, 5} {
				out := &sinkBuffer{}
				d := &bodyDecoder{sink: out, mode: tt.mode, remaining: tt.length}
				err := decodeAll(d, []byte(tt.input), step)
				switch {
				case tt.wantErr == nil && err != nil,
					tt.wantErr != nil && err == nil,
					tt.wantErr != nil && !errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error()):
					t.Fatalf("step %d: err = %v, want %v", step, err, tt.wantErr)
				}
				if out.String() != tt.want {
					t.Errorf("step %d: decoded %q, want %q", step, out.String(), tt.want)
				}
			}
		})
	}
}

func TestPayload(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 10, 50, 100, 1000} {
		b := appendPayload(nil, 123, 1_795_628_608_000_000_000, size)
		if size >= 60 && len(b) != size {
			t.Errorf("size %d: body is %d bytes: %s", size, len(b), b)
		}
		seq, ts, ok := parsePayload(b)
		if !ok || seq != 123 || ts != 1_795_628_608_000_000_000 {
			t.Errorf("size %d: parsePayload(%s) = %d, %d, %v", size, b, seq, ts, ok)
		}
	}
	for _, bad := range []string{"", "{}", `{"seq":,"ts":1}`, `{"seq":1,"ts":x}`, `{"seq":99999999999999999999,"ts":1}`, `{"seq":1}`} {
		if _, _, ok := parsePayload([]byte(bad)); ok {
			t.Errorf("parsePayload(%q) accepted", bad)
		}
	}
	if _, _, ok := parsePayload(fmt.Appendf(nil, `{"seq":1,"ts":%d}`, int64(math.MaxInt64))); !ok {
		t.Error("parsePayload refused MaxInt64")
	}
}

func TestParseResponseHead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		head    string
		mode    bodyMode
		length  int64
		wantErr string
	}{
		{"nchan", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: keep-alive\r\n\r\n", bodyClose, 0, ""},
		{"chunked", "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n", bodyChunked, 0, ""},
		{"length", "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 12\r\n\r\n", bodyLength, 12, ""},
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 0, "404"},
		{"html", "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", 0, 0, "text/html"},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, 0, "status line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode, length, err := parseResponseHead([]byte(tt.head))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || mode != tt.mode || length != tt.length {
				t.Errorf("got %v, %d, %v; want %v, %d", mode, length, err, tt.mode, tt.length)
			}
		})
	}
}

func FuzzEventParser(f *testing.F) {
	f.Add([]byte("id: 1\nevent: m\ndata: hello\n\n"), uint8(1))
	f.Add([]byte("data: a\r\n\r\ndata: b\r\rdata\n\n: c\n\n"), uint8(3))
	f.Add([]byte("data:x\r"), uint8(6))
	f.Fuzz(func(t *testing.T, input []byte, step uint8) {
		want := referenceEvents(string(input))
		got, err := parseAll(input, int(step))
		if err != nil {
			return // limits; inputs this large are rare under fuzzing
		}
		if len(got) != len(want) {
			t.Fatalf("got %d events %q, want %d %q", len(got), got, len(want), want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("event %d: got %q, want %q", i, got[i], want[i])
			}
		}
	})
}

func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("hello world, this is an event"), uint8(3), uint8(1))
	f.Add([]byte{}, uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, payload []byte, chunk, step uint8) {
		// Encode payload in chunks of at most chunk bytes, then decode it
		// fed in pieces of step bytes.
		size := int(chunk%32) + 1
		var enc []byte
		for rest := payload; len(rest) > 0; {
			n := min(size, len(rest))
			enc = fmt.Appendf(enc, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		enc = append(enc, "0\r\n\r\n"...)
		out := &sinkBuffer{}
		d := &bodyDecoder{sink: out, mode: bodyChunked}
		if err := decodeAll(d, enc, int(step)); !errors.Is(err, errBodyEnd) {
			t.Fatalf("decode: err = %v, want errBodyEnd", err)
		}
		if !bytes.Equal(out.Bytes(), payload) {
			t.Fatalf("decoded %q, want %q", out.Bytes(), payload)
		}
		// Arbitrary bytes must never panic.
		_ = decodeAll(&bodyDecoder{sink: &sinkBuffer{}, mode: bodyChunked}, payload, int(step))
	})
}

func FuzzParsePayload(f *testing.F) {
	f.Add(int64(0), int64(1), 100)
	f.Add(int64(123456), int64(1795628608000000000), 10)
	f.Fuzz(func(t *testing.T, seq, ts int64, size int) {
		if seq < 0 || ts < 0 || size < 0 || size > 4096 {
			return
		}
		b := appendPayload(nil, seq, ts, size)
		gotSeq, gotTS, ok := parsePayload(b)
		if !ok || gotSeq != seq || gotTS != ts {
			t.Fatalf("parsePayload(%s) = %d, %d, %v", b, gotSeq, gotTS, ok)
		}
		_, _, _ = parsePayload(b[:len(b)/2]) // truncated bodies must not panic
	})
}
