package fanoutbench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/sse"
)

// readBufferSize is each subscriber's one read buffer. Events are ~100
// bytes; a larger buffer only helps when a backlogged server writes many
// events at once, and 10,000 subscribers × 4 KiB is already 40 MiB.
const readBufferSize = 4 << 10

// latencyShards spreads histogram updates over several mutexes so that
// subscribers on different cores rarely contend; shards are merged at the end.
const latencyShards = 64

// Histogram bounds in microseconds: 1 µs to 60 s at 3 significant figures.
const (
	histMin     = 1
	histMax     = 60_000_000
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// recordMicros records d in h, clamped into the histogram's range so that a
// clock step or a very late event still counts.
func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	us = max(histMin, min(us, histMax))
	_ = h.RecordValue(us) // cannot fail: us is within range
}

// latencyShard holds the delivery counters and latencies of the subscribers
// whose index maps to it.
type latencyShard struct {
	mu         sync.Mutex
	hist       *hdrhistogram.Histogram
	events     int64 // every event with data, including duplicates and foreign ones
	duplicated int64
	reordered  int64
	foreign    int64 // data this benchmark did not publish to the subscriber's channel
}

// errStopped ends a subscriber whose connect raced with the end of the run.
var errStopped = errors.New("benchmark stopping")

// subscriber is one lean SSE client: one goroutine, one raw TCP connection,
// one read buffer, no allocations per event.
type subscriber struct {
	r       *run
	channel int
	source  *net.TCPAddr // nil: let the kernel choose
	shard   *latencyShard
	conn    atomic.Pointer[net.TCPConn]

	stream *sse.Stream // decodes the body in place in buf
	recvNs int64       // wall clock of the read that carried the current event

	// Duplicate and reorder detection over the per-channel index
	// (seq / channels) of the events seen: bit i of seen is set once index i
	// arrived; last is the highest index so far. One bit per planned event
	// keeps it exact even when a backlogged server reorders by thousands.
	seen []uint64
	last int64

	buf [readBufferSize]byte
}

func newSubscriber(r *run, idx int) *subscriber {
	perChannel := (len(r.delivered) + len(r.channels) - 1) / len(r.channels)
	s := &subscriber{
		r:       r,
		channel: idx % len(r.channels),
		shard:   &r.shards[idx%latencyShards],
		seen:    make([]uint64, perChannel/64+1),
		last:    -1,
	}
	if len(r.sources) > 0 {
		s.source = r.sources[idx%len(r.sources)]
	}
	return s
}

// run connects, reports the outcome to the run and then reads events until
// the connection ends.
func (s *subscriber) run() {
	r := s.r
	defer r.subWG.Done()
	start := time.Now()
	leftover, err := s.connect(start)
	if err != nil {
		r.connectFailed(err)
		if c := s.conn.Load(); c != nil {
			c.Close()
		}
		return
	}
	r.connected(s.channel, time.Since(start))
	err = s.readLoop(leftover)
	r.ended(s.channel, err)
	s.close()
}

// connect dials, sends the subscribe request and reads the response head.
// It returns how many body bytes already sit in s.buf after the head.
func (s *subscriber) connect(start time.Time) (leftover []byte, err error) {
	r := s.r
	d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
	if s.source != nil {
		d.LocalAddr = s.source
	}
	c, err := d.DialContext(r.stopCtx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	conn := c.(*net.TCPConn)
	s.conn.Store(conn)
	if r.stopping.Load() {
		return nil, errStopped
	}
	if err := conn.SetDeadline(start.Add(r.cfg.ConnectTimeout)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(r.requests[s.channel]); err != nil {
		return nil, fmt.Errorf("write subscribe request: %w", err)
	}
	n, headEnd := 0, -1
	for headEnd < 0 {
		if n == len(s.buf) {
			return nil, fmt.Errorf("response head larger than %d bytes", len(s.buf))
		}
		m, err := conn.Read(s.buf[n:])
		n += m
		if i := bytes.Index(s.buf[:n], []byte("\r\n\r\n")); i >= 0 {
			headEnd = i + 4
		} else if err != nil {
			return nil, fmt.Errorf("read response head: %w", err)
		}
	}
	stream, err := sse.NewStream(s.buf[:headEnd], sse.Limits{}, s.event)
	if err != nil {
		return nil, err
	}
	s.stream = stream
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return s.buf[headEnd:n], nil
}

func (s *subscriber) readLoop(leftover []byte) error {
	conn := s.conn.Load()
	if len(leftover) > 0 {
		s.recvNs = time.Now().UnixNano()
		if err := s.stream.Feed(leftover); err != nil {
			return err
		}
	}
	for {
		n, err := conn.Read(s.buf[:])
		if n > 0 {
			s.recvNs = time.Now().UnixNano()
			if ferr := s.stream.Feed(s.buf[:n]); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
}

// close drops the connection with a reset rather than a FIN: the client
// side would otherwise keep every source port in TIME_WAIT for a minute and
// back-to-back runs would run out of ports.
func (s *subscriber) close() {
	if c := s.conn.Load(); c != nil {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
}

// event accounts one delivered event.
func (s *subscriber) event(m sse.Message) {
	r := s.r
	seq, ts, ok := parsePayload(m.Data)
	channels := int64(len(r.channels))
	sh := s.shard
	if !ok || seq >= int64(len(r.delivered)) || seq%channels != int64(s.channel) {
		sh.mu.Lock()
		sh.events++
		sh.foreign++
		sh.mu.Unlock()
		return
	}
	idx := seq / channels
	word, bit := idx/64, uint64(1)<<(idx%64)
	dup, reordered := s.seen[word]&bit != 0, false
	if !dup {
		s.seen[word] |= bit
		if idx < s.last {
			reordered = true
		} else {
			s.last = idx
		}
	}
	sh.mu.Lock()
	sh.events++
	switch {
	case dup:
		sh.duplicated++
	case reordered:
		sh.reordered++
		fallthrough
	default:
		recordMicros(sh.hist, time.Duration(s.recvNs-ts))
	}
	sh.mu.Unlock()
	if !dup {
		r.delivered[seq].Add(1)
	}
}
