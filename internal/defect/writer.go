package defect

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// queueLen bounds the frames waiting for their time; a full queue blocks
// the upstream handler (backpressure, as a slow network would).
const queueLen = 4096

type timed struct {
	raw []byte
	due time.Time
}

// writer passes a response through, cutting an event stream into frames
// that a pump goroutine writes at their time.
type writer struct {
	http.ResponseWriter
	cfg  Config
	ctx  context.Context
	once sync.Once

	stream bool
	split  splitter
	queue  chan timed
	done   chan struct{}
	failed chan struct{} // closed when the client's connection failed
}

func (w *writer) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code) // informational: more to come
		return
	}
	w.once.Do(func() {
		ct := w.Header().Get("Content-Type")
		if code == http.StatusOK && strings.HasPrefix(strings.ToLower(ct), "text/event-stream") {
			w.stream = true
			w.queue = make(chan timed, queueLen)
			w.done, w.failed = make(chan struct{}), make(chan struct{})
			w.Header().Del("Content-Length")
			go w.pump()
		}
		w.ResponseWriter.WriteHeader(code)
	})
}

func (w *writer) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if !w.stream {
		return w.ResponseWriter.Write(b)
	}
	now := time.Now()
	for _, f := range w.split.feed(b) {
		drop, delay := w.cfg.decide(f)
		if drop {
			continue
		}
		select {
		case w.queue <- timed{raw: f.raw, due: now.Add(delay)}:
		case <-w.failed:
			return 0, http.ErrAbortHandler
		case <-w.ctx.Done():
			return 0, w.ctx.Err()
		}
	}
	return len(b), nil
}

// Flush flushes a response that is not a stream; a stream's frames are
// flushed by the pump as they go out.
func (w *writer) Flush() {
	if w.stream {
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack refuses: the defect must see every byte of the response, so a
// server that would write to the connection itself (the reference
// server's direct writes) serves the portable way instead.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, fmt.Errorf("defect: %w: the response goes through the defect", http.ErrNotSupported)
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish sends what is left once the handler returns and waits for it.
func (w *writer) finish() {
	if !w.stream {
		return
	}
	if rest := w.split.rest(); len(rest) > 0 {
		select {
		case w.queue <- timed{raw: rest, due: time.Now()}:
		case <-w.failed:
		case <-w.ctx.Done():
		}
	}
	close(w.queue)
	<-w.done
}

func (w *writer) pump() {
	defer close(w.done)
	rc := http.NewResponseController(w.ResponseWriter)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time // the previous frame's time: order is kept
	for f := range w.queue {
		due := f.due
		if due.Before(last) {
			due = last
		}
		last = due
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-w.ctx.Done():
				w.fail()
				continue
			}
		}
		if w.isFailed() {
			continue // drain
		}
		if _, err := w.ResponseWriter.Write(f.raw); err != nil {
			w.fail()
			continue
		}
		if err := rc.Flush(); err != nil {
			w.fail()
		}
	}
}

func (w *writer) fail() {
	if !w.isFailed() {
		close(w.failed)
	}
}

func (w *writer) isFailed() bool {
	select {
	case <-w.failed:
		return true
	default:
		return false
	}
}
