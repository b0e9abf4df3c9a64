package hookbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/darktime/darktime/internal/sse"
)

// connectTimeout bounds each subscriber's dial and response head.
const connectTimeout = 10 * time.Second

// readBufferSize is each subscriber's read buffer: a subscriber gets
// Jobs/Subscribers events of ~250 bytes, often many per read.
const readBufferSize = 32 << 10

// subscriber is one lean SSE client on one thread channel: a raw TCP
// connection decoded in place by internal/sse's Stream.
type subscriber struct {
	r      *run
	index  int // thread index: hook id mod Subscribers
	conn   atomic.Pointer[net.TCPConn]
	stream *sse.Stream
	recvNs int64 // wall clock of the read that carried the current event
	buf    [readBufferSize]byte
}

// connectAll connects every subscriber concurrently and starts their read
// loops; it fails if any cannot connect.
func (r *run) connectAll(ctx context.Context) (int, error) {
	errs := make(chan error, len(r.subs))
	for _, s := range r.subs {
		go func() { errs <- s.connect(ctx) }()
	}
	connected := 0
	var first error
	for range r.subs {
		if err := <-errs; err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		connected++
	}
	for _, s := range r.subs {
		if s.stream != nil {
			r.subWG.Add(1)
			go s.readLoop()
		}
	}
	if first != nil {
		return connected, fmt.Errorf("%d of %d subscribers could not connect to %s: %w", len(r.subs)-connected, len(r.subs), r.cfg.Target, first)
	}
	return connected, nil
}

// connect dials, subscribes and reads the response head; body bytes that
// came with the head are decoded at once.
func (s *subscriber) connect(ctx context.Context) error {
	r := s.r
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return err
	}
	conn := c.(*net.TCPConn)
	s.conn.Store(conn)
	if err := conn.SetDeadline(time.Now().Add(connectTimeout)); err != nil {
		return err
	}
	req := fmt.Appendf(nil, "GET %s/sub/thread:%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: darktime-hookbench\r\n\r\n",
		r.path, r.threads[s.index], r.host)
	headEnd, n, err := sse.Handshake(conn, req, s.buf[:])
	if err != nil {
		return err
	}
	stream, err := sse.NewStream(s.buf[:headEnd], sse.Limits{}, s.event)
	if err != nil {
		return err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return err
	}
	s.stream = stream
	if rest := s.buf[headEnd:n]; len(rest) > 0 {
		s.recvNs = time.Now().UnixNano()
		return s.stream.Feed(rest)
	}
	return nil
}

func (s *subscriber) readLoop() {
	defer s.r.subWG.Done()
	conn := s.conn.Load()
	for {
		n, err := conn.Read(s.buf[:])
		if n > 0 {
			s.recvNs = time.Now().UnixNano()
			if ferr := s.stream.Feed(s.buf[:n]); ferr != nil {
				err = ferr
			}
		}
		if err != nil {
			if errors.Is(err, sse.ErrStreamEnded) {
				err = fmt.Errorf("thread %s: %w", s.r.threads[s.index], err)
			}
			s.r.ended(err)
			return
		}
	}
}

// close drops the connection with a reset rather than a FIN, so that
// back-to-back runs do not leave ports in TIME_WAIT.
func (s *subscriber) close() {
	if c := s.conn.Load(); c != nil {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
}

// event accounts one event: its hook id picks the phase, its send time
// gives the latency.
func (s *subscriber) event(m sse.Message) {
	r := s.r
	id, sendNs, ok := parseEvent(m.Data)
	if !ok || id >= int64(len(r.delivered)) || id%int64(len(r.subs)) != int64(s.index) {
		r.foreign.Add(1)
		return
	}
	if r.delivered[id].Add(1) > 1 {
		return // a duplicate: counted from delivered, not timed twice
	}
	phase := 0
	if r.cfg.Phase != PhaseThroughput && id >= r.latencyBase() {
		phase = 1
	}
	r.phases[phase].record(s.index, time.Duration(s.recvNs-sendNs))
}
