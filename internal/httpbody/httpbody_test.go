package httpbody

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// collect is a Sink that concatenates what it is fed.
type collect struct{ bytes.Buffer }

func (c *collect) Feed(b []byte) error { c.Write(b); return nil }

func feedAll(d *Decoder, input []byte, step int) error {
	if step <= 0 {
		step = len(input) + 1
	}
	for len(input) > 0 {
		n := min(step, len(input))
		if err := d.Feed(input[:n]); err != nil {
			return err
		}
		input = input[n:]
	}
	return nil
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		framing Framing
		length  int64
		input   string
		want    string
		wantErr error // nil: the body is still open at the end
	}{
		{"chunked", Chunked, 0, "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n", "hello 0123456789", nil},
		{"chunked end", Chunked, 0, "3\r\nabc\r\n0\r\n\r\n", "abc", ErrBodyEnded},
		{"chunked end, trailer not read", Chunked, 0, "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n", "abc", ErrBodyEnded},
		{"chunked bare lf", Chunked, 0, "3\nabc\n2\nde\n", "abcde", nil},
		{"chunked upper hex", Chunked, 0, "1F\r\n" + strings.Repeat("z", 31) + "\r\n", strings.Repeat("z", 31), nil},
		{"chunked bad size", Chunked, 0, "xyz\r\n", "", ErrMalformed},
		{"chunked empty size", Chunked, 0, "\r\n", "", ErrMalformed},
		{"chunked huge size", Chunked, 0, "fffffffffffffff\r\n", "", ErrMalformed},
		{"chunked missing crlf", Chunked, 0, "2\r\nabX", "ab", ErrMalformed},
		{"chunked CR without LF", Chunked, 0, "2\rab", "", ErrMalformed},
		{"length", ContentLength, 4, "abcdef", "abcd", ErrBodyEnded},
		{"length zero", ContentLength, 0, "abc", "", ErrBodyEnded},
		{"until close", UntilClose, 0, "anything\r\n0\r\n", "anything\r\n0\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []int{0, 1, 2, 5} {
				out := &collect{}
				err := feedAll(NewDecoder(tt.framing, tt.length, out), []byte(tt.input), step)
				if (err == nil) != (tt.wantErr == nil) || !errors.Is(err, tt.wantErr) && tt.wantErr != nil {
					t.Fatalf("step %d: err = %v, want %v", step, err, tt.wantErr)
				}
				if out.String() != tt.want {
					t.Errorf("step %d: decoded %q, want %q", step, out.String(), tt.want)
				}
			}
		})
	}
}

func TestDecoderSinkError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	d := NewDecoder(Chunked, 0, SinkFunc(func([]byte) error { return stop }))
	if err := d.Feed([]byte("3\r\nabc\r\n")); err != stop {
		t.Fatalf("err = %v, want the sink's", err)
	}
}

func TestParseHead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		head    string
		want    Head
		wantErr string
	}{
		{"nchan", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: keep-alive\r\n\r\n",
			Head{Status: 200, StatusLine: "HTTP/1.1 200 OK", ContentType: "text/event-stream; charset=utf-8", Framing: UntilClose}, ""},
		{"chunked", "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
			Head{Status: 200, StatusLine: "HTTP/1.1 200 OK", ContentType: "text/event-stream", Framing: Chunked}, ""},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
			Head{Status: 200, StatusLine: "HTTP/1.1 200 OK", Framing: Chunked}, ""},
		{"length", "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 12\r\n\r\n",
			Head{Status: 200, StatusLine: "HTTP/1.0 200 OK", ContentType: "text/event-stream", Framing: ContentLength, Length: 12}, ""},
		{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
			Head{Status: 404, StatusLine: "HTTP/1.1 404 Not Found", Framing: ContentLength}, ""},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", Head{}, "Content-Length"},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", Head{}, "status line"},
		{"bad code", "HTTP/1.1 2x0 OK\r\n\r\n", Head{}, "status line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := ParseHead([]byte(tt.head))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || h != tt.want {
				t.Errorf("got %+v, %v; want %+v", h, err, tt.want)
			}
		})
	}
}

func FuzzChunked(f *testing.F) {
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
		out := &collect{}
		if err := feedAll(NewDecoder(Chunked, 0, out), enc, int(step)); !errors.Is(err, ErrBodyEnded) {
			t.Fatalf("decode: err = %v, want ErrBodyEnded", err)
		}
		if !bytes.Equal(out.Bytes(), payload) {
			t.Fatalf("decoded %q, want %q", out.Bytes(), payload)
		}
		// Arbitrary bytes must never panic.
		_ = feedAll(NewDecoder(Chunked, 0, &collect{}), payload, int(step))
	})
}
