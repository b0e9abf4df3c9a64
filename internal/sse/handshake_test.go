package sse

import (
	"errors"
	"io"
	"testing"
)

// pipeConn answers a request with canned bytes, a few at a time.
type pipeConn struct {
	wrote []byte
	reply []byte
	step  int
}

func (p *pipeConn) Write(b []byte) (int, error) { p.wrote = append(p.wrote, b...); return len(b), nil }

func (p *pipeConn) Read(b []byte) (int, error) {
	if len(p.reply) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), p.step)], p.reply)
	p.reply = p.reply[n:]
	return n, nil
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
	for _, step := range []int{1, 2, 3, 5, 1000} {
		c := &pipeConn{reply: []byte(head + "data: x\n\n"), step: step}
		buf := make([]byte, 256)
		headEnd, n, err := Handshake(c, []byte("GET / HTTP/1.1\r\n\r\n"), buf)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if string(c.wrote) != "GET / HTTP/1.1\r\n\r\n" || string(buf[:headEnd]) != head {
			t.Errorf("step %d: wrote %q, head %q", step, c.wrote, buf[:headEnd])
		}
		if rest := string(buf[headEnd:n]) + string(c.reply); rest != "data: x\n\n" {
			t.Errorf("step %d: body %q", step, rest)
		}
	}
	if _, _, err := Handshake(&pipeConn{reply: []byte(head), step: 7}, nil, make([]byte, 20)); !errors.Is(err, ErrHeadTooLarge) {
		t.Errorf("small buffer: %v, want ErrHeadTooLarge", err)
	}
	if _, _, err := Handshake(&pipeConn{reply: []byte("HTTP/1.1 200 OK\r\n"), step: 7}, nil, make([]byte, 256)); !errors.Is(err, io.EOF) {
		t.Errorf("cut head: %v, want EOF", err)
	}
}
