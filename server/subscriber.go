package server

import (
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
)

// Reasons a subscriber's connection ends; they label the dropped and
// disconnect counters.
const (
	reasonClientClosed = "client_closed"
	reasonSlowConsumer = "slow_consumer"
	reasonWriteError   = "write_error"
	reasonWriteTimeout = "write_timeout"
	reasonShutdown     = "shutdown"
	reasonBrokerError  = "broker_error" // the stream could not start: broker unavailable
)

// allReasons indexes the per-reason counters.
var allReasons = [numReasons]string{reasonClientClosed, reasonSlowConsumer, reasonWriteError, reasonWriteTimeout, reasonShutdown, reasonBrokerError, reasonTokenExpired}

const numReasons = 7

type subState uint8

const (
	stateResuming subState = iota // events are held until history is written
	stateLive
	stateClosing // a goodbye is queued; close once it is written
	stateClosed
)

// chunkRoom is reserved in front of queued bytes for an HTTP/1.1 chunk
// header (up to 8 hex digits and CRLF), so a whole batch goes out as one
// chunk in one write.
const chunkRoom = 10

// frame is one event encoded once for every subscriber of its channel, or
// a notice about the channel (a darktime.missed event without id, not
// counted as an event).
type frame struct {
	ch      *channel
	id      eventid.ID
	wire    []byte // "id: <id>\n" + body + "\n"; a notice: the whole event
	bodyOff int    // where the body starts in wire
	notice  bool
	// chunk is wire as one HTTP/1.1 chunk (size line, wire, CRLF): what a
	// chunked stream with nothing queued is sent as it is (deliver). Nil
	// for notices.
	chunk []byte
}

// newFrame encodes an event once for every subscriber: its id line and
// body, and the same bytes as an HTTP/1.1 chunk, in one allocation.
func newFrame(ch *channel, id eventid.ID, body []byte) *frame {
	buf := make([]byte, chunkRoom, chunkRoom+len(body)+40)
	buf = sse.AppendIDLine(buf, id.String())
	bodyOff := len(buf) - chunkRoom
	buf = append(buf, body...)
	buf = append(buf, '\n')
	wire := buf[chunkRoom:len(buf):len(buf)]
	buf, start := sealChunk(buf)
	return &frame{ch: ch, id: id, wire: wire, bodyOff: bodyOff, chunk: buf[start:]}
}

// sealChunk makes buf — chunkRoom bytes reserved, then the chunk's data —
// one HTTP/1.1 chunk: the size line right-aligned into the reserved room
// and CRLF appended. The chunk is buf[start:].
func sealChunk(buf []byte) (_ []byte, start int) {
	var hex [8]byte
	h := strconv.AppendInt(hex[:0], int64(len(buf)-chunkRoom), 16)
	start = chunkRoom - 2 - len(h)
	copy(buf[start:], h)
	buf[chunkRoom-2], buf[chunkRoom-1] = '\r', '\n'
	return append(buf, '\r', '\n'), start
}

// subscriber is one SSE connection. Events are copied into pending by the
// fan-out; a flush writes everything pending in one write. On a plain TCP
// connection (direct) the flush writes to the descriptor from the fan-out
// goroutine without blocking — and an event that finds nothing queued is
// written from its frame, without a copy (deliver) — and only a connection
// whose socket is full gets a writer goroutine until it catches up.
// Otherwise (TLS, HTTP/2) the handler goroutine writes.
type subscriber struct {
	hub     *hub
	chans   []*channel // sorted by name
	multi   bool
	chunked bool

	conn   net.Conn      // raw mode: the hijacked connection
	fd     int           // raw mode with direct: conn's descriptor (see fdOf)
	direct bool          // fd is set: write without blocking from the fan-out
	wake   chan struct{} // stream mode: tells the handler goroutine to write
	done   chan struct{} // closed when the subscriber is closed

	mu        sync.Mutex
	state     subState
	scheduled bool // in some shard's flush list
	writing   bool // a writer owns the connection
	// active says bytes were written since the last keep-alive tick:
	// a stream that carries events needs no keep-alive comments.
	active   bool
	held     []*frame
	pending  []byte
	pendCh   []*channel // the channel of every event in pending
	pendEnd  []int      // where every event in pending ends (an offset into it)
	spare    []byte
	spareCh  []*channel
	spareEnd []int
	inflight int // events a writer is writing now
	// skip holds, after a resume, the newest id written from history per
	// channel: events still on their way through the fan-out that history
	// already carried are not sent again. An entry goes at the first newer
	// event.
	skip   map[*channel]eventid.ID
	cursor eventid.Cursor // multi: last id written per channel
	reason string
	// byeReason is why a goodbye (stateClosing) ends the stream: shutdown,
	// or token_expired; expiry is the timer that ends it when its token
	// expires (subauth.go).
	byeReason string
	expiry    *time.Timer
	// lastID is a single-channel stream's position: the id of the last
	// event queued, or where the stream started (subauth.go gives it to
	// the darktime.renew notice).
	lastID eventid.ID
}

func (s *subscriber) queuedLocked() int {
	n := len(s.pending)
	if s.chunked && n > 0 {
		n -= chunkRoom
	}
	return n
}

// startLocked makes pending ready for appends.
func (s *subscriber) startLocked() {
	if s.chunked && len(s.pending) == 0 {
		if cap(s.pending) < chunkRoom {
			s.pending = make([]byte, chunkRoom, 512)
		} else {
			s.pending = s.pending[:chunkRoom]
		}
	}
}

// appendFrameLocked queues the frame's bytes.
func (s *subscriber) appendFrameLocked(f *frame) {
	s.startLocked()
	if s.multi {
		s.cursor[f.ch.name] = f.id
		s.pending = append(s.pending, "id: "...)
		s.pending = s.appendCursor(s.pending)
		s.pending = append(s.pending, '\n')
		s.pending = append(s.pending, f.wire[f.bodyOff:]...)
	} else {
		s.lastID = f.id
		s.pending = append(s.pending, f.wire...)
	}
	s.pendCh = append(s.pendCh, f.ch)
	s.pendEnd = append(s.pendEnd, len(s.pending))
}

// appendCursor appends the cursor in channel-name order (as
// eventid.Cursor.String does) without allocating.
func (s *subscriber) appendCursor(dst []byte) []byte {
	first := true
	for _, ch := range s.chans {
		id, ok := s.cursor[ch.name]
		if !ok {
			continue
		}
		if !first {
			dst = append(dst, ';')
		}
		first = false
		dst = append(dst, ch.name...)
		dst = append(dst, '=')
		dst = id.Append(dst)
	}
	return dst
}

// outcome is what deliver did with an event.
type outcome uint8

const (
	outRefused outcome = iota // not for this subscriber (closed, resuming, already sent)
	outWritten                // in the kernel
	outQueued                 // pending: the caller flushes the subscriber after the batch
	outTaken                  // pending, and some writer or flush list has it already
)

// deliver is the fan-out's path for a batch of one event: a live
// single-channel stream with nothing queued gets the frame's own bytes in
// one non-blocking write, under one lock, with nothing copied. Anything
// else goes the way of enqueue.
func (s *subscriber) deliver(f *frame) outcome {
	s.mu.Lock()
	if !s.direct || s.state != stateLive || s.writing || s.multi || s.skip != nil || s.queuedLocked() > 0 {
		return s.enqueueLocked(f)
	}
	b := f.wire
	if s.chunked {
		b = f.chunk
	}
	n, err := writeNonblock(s.fd, b)
	if err == nil && n == len(b) {
		s.lastID = f.id
		s.active = true
		s.mu.Unlock()
		return outWritten
	}
	// An error, or the socket took part of it: as a flush of it would.
	s.appendFrameLocked(f)
	buf, base := s.sealLocked()
	s.afterFlushLocked(buf, base, n, err)
	return outTaken
}

// enqueue is called by the fan-out for each event of a subscribed channel
// of a batch: outQueued and outTaken say the event was queued for writing
// (it counts as fanned out), outQueued that the caller must flush this
// subscriber after its batch.
func (s *subscriber) enqueue(f *frame) outcome {
	s.mu.Lock()
	return s.enqueueLocked(f)
}

// enqueueLocked is enqueue with s.mu held; it releases s.mu.
func (s *subscriber) enqueueLocked(f *frame) outcome {
	switch s.state {
	case stateResuming:
		s.held = append(s.held, f)
		if len(s.held)*len(f.wire) > s.hub.cfg.MaxQueueBytes {
			detach := s.closeLocked(reasonSlowConsumer)
			s.mu.Unlock()
			s.finish(detach)
			return outRefused
		}
		s.mu.Unlock()
		return outRefused
	case stateLive:
	default:
		s.mu.Unlock()
		return outRefused
	}
	if s.skip != nil {
		if upTo, ok := s.skip[f.ch]; ok {
			if !upTo.Less(f.id) {
				s.mu.Unlock()
				return outRefused
			}
			delete(s.skip, f.ch)
		}
	}
	s.appendFrameLocked(f)
	if s.queuedLocked() > s.hub.cfg.MaxQueueBytes {
		detach := s.closeLocked(reasonSlowConsumer)
		s.mu.Unlock()
		s.finish(detach)
		return outTaken
	}
	schedule := !s.scheduled
	s.scheduled = true
	s.mu.Unlock()
	if schedule {
		return outQueued
	}
	return outTaken
}

// enqueueNotice queues a notice frame in its place among the channel's
// events: held while history is written, like events. accepted says the
// notice will be written; schedule as for enqueue.
func (s *subscriber) enqueueNotice(f *frame) (accepted, schedule bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateResuming:
		s.held = append(s.held, f)
		return true, false
	case stateLive:
	default:
		return false, false
	}
	s.startLocked()
	s.pending = append(s.pending, f.wire...)
	schedule = !s.scheduled
	s.scheduled = true
	return true, schedule
}

// keepAlive is called every half keep-alive interval: a stream that
// wrote nothing since the last call gets a comment. So no stream is silent
// for longer than the interval, and one that carries events gets none.
func (s *subscriber) keepAlive(b []byte) {
	s.mu.Lock()
	if s.active || s.state != stateLive {
		s.active = false
		s.mu.Unlock()
		return
	}
	s.startLocked()
	s.pending = append(s.pending, b...)
	s.mu.Unlock()
	s.flush()
}

// sealLocked finishes the chunk around pending and returns the bytes to
// write; they start at pending[base] (pendEnd offsets minus base are
// offsets into them).
func (s *subscriber) sealLocked() (buf []byte, base int) {
	if !s.chunked {
		return s.pending, 0
	}
	var start int
	s.pending, start = sealChunk(s.pending)
	return s.pending[start:], start
}

// takeLocked hands pending to a writer and starts a fresh pending buffer.
// ends are where its events end in buf: a write that fails part way
// counts those it wrote whole.
func (s *subscriber) takeLocked() ([]byte, []*channel, []int) {
	buf, base := s.sealLocked()
	chs, ends := s.pendCh, s.pendEnd
	for i := range ends {
		ends[i] -= base
	}
	s.inflight = len(chs)
	s.pending, s.pendCh, s.pendEnd = s.spare[:0], s.spareCh[:0], s.spareEnd[:0]
	s.spare, s.spareCh, s.spareEnd = nil, nil, nil
	return buf, chs, ends
}

// giveBackLocked returns written buffers for reuse (unless they grew big).
func (s *subscriber) giveBackLocked(buf []byte, chs []*channel, ends []int) {
	if cap(buf) <= 16<<10 {
		s.spare = buf[:0]
	}
	if cap(chs) <= 1024 {
		clear(chs)
		s.spareCh, s.spareEnd = chs[:0], ends[:0]
	}
}

// flush writes what is pending. In raw mode it writes directly without
// blocking; what the socket does not take goes to a writer goroutine.
func (s *subscriber) flush() {
	s.mu.Lock()
	s.scheduled = false
	if (s.state != stateLive && s.state != stateClosing) || s.writing || s.queuedLocked() == 0 {
		s.mu.Unlock()
		return
	}
	if s.conn == nil {
		s.writing = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return
	}
	buf, base := s.sealLocked()
	n, err := 0, error(nil)
	if s.direct {
		n, err = writeNonblock(s.fd, buf)
	}
	s.afterFlushLocked(buf, base, n, err)
}

// afterFlushLocked accounts a non-blocking write of n bytes of buf (the
// sealed pending, starting at pending[base]) and releases s.mu: a failure
// closes the stream, a whole write empties pending, and what a full socket
// did not take goes to a writer goroutine.
func (s *subscriber) afterFlushLocked(buf []byte, base, n int, err error) {
	if err != nil {
		s.pending = s.pending[:0]
		detach := s.closeLocked(reasonWriteError)
		s.mu.Unlock()
		s.finish(detach)
		return
	}
	if n > 0 {
		s.active = true
	}
	if n == len(buf) {
		s.hub.stats.wrote(s.pendCh)
		clear(s.pendCh)
		s.pendCh, s.pendEnd = s.pendCh[:0], s.pendEnd[:0]
		if cap(s.pending) > 16<<10 {
			s.pending = nil
		} else {
			s.pending = s.pending[:0]
		}
		closing := s.state == stateClosing
		var detach bool
		if closing {
			detach = s.closeLocked(s.byeReason)
		}
		s.mu.Unlock()
		s.finish(detach)
		return
	}
	// The socket is full: a writer goroutine takes over the rest.
	chs, ends := s.pendCh, s.pendEnd
	for i := range ends {
		ends[i] -= base
	}
	s.inflight = len(chs)
	s.pending, s.pendCh, s.pendEnd = nil, nil, nil
	s.writing = true
	s.hub.wg.Add(1)
	s.mu.Unlock()
	go s.writeLoop(buf, n, chs, ends)
}

// writeLoop is the raw-mode writer for a subscriber that fell behind: it
// writes with a deadline until nothing is pending, then exits.
func (s *subscriber) writeLoop(buf []byte, done int, chs []*channel, ends []int) {
	defer s.hub.wg.Done()
	for {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.hub.cfg.WriteTimeout))
		n, err := s.conn.Write(buf[done:])
		s.mu.Lock()
		if !s.afterWriteLocked(err, done+n, buf, chs, ends) {
			return
		}
		buf, chs, ends = s.takeLocked()
		done = 0
		s.mu.Unlock()
	}
}

// afterWriteLocked accounts a finished write of buf (events chs ending at
// ends), by the raw-mode writer goroutine or the stream-mode handler;
// written is how many bytes of buf reached the kernel. It returns true,
// with s.mu still held, when there is more to write; otherwise it has
// released the writer role and s.mu.
func (s *subscriber) afterWriteLocked(err error, written int, buf []byte, chs []*channel, ends []int) bool {
	s.inflight = 0
	if err != nil {
		reason := reasonWriteError
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			reason = reasonWriteTimeout
		}
		if s.state == stateClosed {
			reason = s.reason
		}
		// The events the kernel took whole before the failure were
		// written: the client reads them (a slow consumer cut while its
		// writer was part way through a batch). A half-written one can
		// never be read as an event: dropped.
		whole := 0
		for whole < len(ends) && ends[whole] <= written {
			whole++
		}
		s.hub.stats.wrote(chs[:whole])
		s.hub.stats.dropped(chs[whole:], reason)
		s.writing = false
		detach := s.closeLocked(reason)
		s.mu.Unlock()
		s.finish(detach)
		return false
	}
	s.hub.stats.wrote(chs)
	s.active = true
	s.giveBackLocked(buf, chs, ends)
	if s.state == stateClosed {
		s.writing = false
		s.mu.Unlock()
		return false
	}
	if s.queuedLocked() == 0 {
		s.writing = false
		var detach bool
		if s.state == stateClosing {
			detach = s.closeLocked(s.byeReason)
		}
		s.mu.Unlock()
		s.finish(detach)
		return false
	}
	return true
}

// closeLocked marks the subscriber closed and counts what it still held as
// dropped. It returns true when the caller must call finish after
// releasing s.mu (the first close).
func (s *subscriber) closeLocked(reason string) bool {
	if s.state == stateClosed {
		return false
	}
	// Closed while history is read: the handler accounts the held events
	// (settleHeld) once it knows which of them history carried.
	resuming := s.state == stateResuming
	s.state = stateClosed
	s.reason = reason
	s.hub.stats.dropped(s.pendCh, reason)
	clear(s.pendCh)
	s.pendCh, s.pendEnd, s.pending, s.spare, s.spareCh, s.spareEnd = nil, nil, nil, nil, nil, nil
	if !resuming {
		s.held = nil
	}
	return true
}

// settleHeld accounts the events held for a subscriber closed before it
// went live: those history did not carry (after replayedUpTo) were given
// to it by the fan-out and are dropped with the closing reason, so that a
// client cut while resuming shows in fanned out = written + dropped. A
// no-op for a subscriber that went live or holds nothing.
func (s *subscriber) settleHeld(replayedUpTo map[*channel]eventid.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateClosed || len(s.held) == 0 {
		return
	}
	var chs []*channel
	for _, f := range s.held {
		if f.notice {
			continue
		}
		if upTo, ok := replayedUpTo[f.ch]; ok && !upTo.Less(f.id) {
			continue
		}
		f.ch.stats.fannedOut.Add(1)
		chs = append(chs, f.ch)
	}
	s.hub.stats.fannedOut.Add(uint64(len(chs)))
	s.hub.stats.dropped(chs, s.reason)
	s.held = nil
}

// close ends the subscriber for reason (a no-op when already closed).
func (s *subscriber) close(reason string) {
	s.mu.Lock()
	detach := s.closeLocked(reason)
	s.mu.Unlock()
	s.finish(detach)
}

// finish releases the connection and unregisters the subscriber. Called
// without s.mu held, once, after the closing closeLocked.
func (s *subscriber) finish(detach bool) {
	if !detach {
		return
	}
	close(s.done)
	// conn is set under s.mu after the subscriber joined; if it is not set
	// yet, serveHijacked sees the closed state and closes it itself.
	s.mu.Lock()
	conn := s.conn
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	s.hub.detach(s)
}

// goodbye queues a final notice, then closes once it is written.
func (s *subscriber) goodbye(notice []byte) { s.sayGoodbye(notice, reasonShutdown, false) }

// sayGoodbye queues a final notice after what is queued, then closes for
// reason once it is written; events that arrive meanwhile are not taken.
// A stream still writing its history is closed at once. It reports
// whether it ended the stream (false: it was closed or leaving already;
// only a shutdown cuts a leaving stream short). withID gives the notice
// the stream's position as its id, so the client resumes exactly there.
func (s *subscriber) sayGoodbye(notice []byte, reason string, withID bool) bool {
	s.mu.Lock()
	if s.state == stateClosed || s.state == stateClosing && reason != reasonShutdown {
		s.mu.Unlock()
		return false
	}
	if reason == reasonTokenExpired {
		// Counted before the stream can end: whoever sees it gone sees
		// it counted.
		s.hub.stats.auth.expiredStreams.Add(1)
	}
	if s.state != stateLive {
		detach := s.closeLocked(reason)
		s.mu.Unlock()
		s.finish(detach)
		return true
	}
	s.startLocked()
	if withID {
		s.pending = s.appendPositionLocked(s.pending)
	}
	s.pending = append(s.pending, notice...)
	s.state = stateClosing
	s.byeReason = reason
	s.mu.Unlock()
	s.flush()
	return true
}

// drainStream is the stream-mode writer, run on the handler goroutine
// whenever it is woken: it writes and flushes until nothing is pending.
func (s *subscriber) drainStream(write func([]byte) (int, error)) {
	s.mu.Lock()
	for s.state != stateClosed && s.queuedLocked() > 0 {
		buf, chs, ends := s.takeLocked()
		s.mu.Unlock()
		n, err := write(buf)
		s.mu.Lock()
		if !s.afterWriteLocked(err, n, buf, chs, ends) {
			return
		}
	}
	s.writing = false
	var detach bool
	if s.state == stateClosing {
		detach = s.closeLocked(s.byeReason)
	}
	s.mu.Unlock()
	s.finish(detach)
}

// goLive releases the events held while history was written, skipping
// those the history already contained.
func (s *subscriber) goLive(replayedUpTo map[*channel]eventid.ID) {
	s.mu.Lock()
	if s.state != stateResuming {
		s.mu.Unlock()
		s.settleHeld(replayedUpTo) // cut while resuming
		return
	}
	s.state = stateLive
	s.active = true // its start was just written
	if len(replayedUpTo) > 0 {
		s.skip = replayedUpTo
	}
	n := 0
	for _, f := range s.held {
		if f.notice {
			s.startLocked()
			s.pending = append(s.pending, f.wire...)
			continue
		}
		if upTo, ok := s.skip[f.ch]; ok {
			if !upTo.Less(f.id) {
				continue
			}
			delete(s.skip, f.ch)
		}
		s.appendFrameLocked(f)
		f.ch.stats.fannedOut.Add(1)
		n++
	}
	s.hub.stats.fannedOut.Add(uint64(n))
	s.held = nil
	s.mu.Unlock()
	s.flush()
}

// setChannel records the i-th channel the subscriber joined. It returns
// false when the subscriber is closed already: detach, which leaves the
// channels recorded, has run or is running without this one.
func (s *subscriber) setChannel(i int, ch *channel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chans[i] = ch
	return s.state != stateClosed
}

// joined returns the channels the subscriber joined so far.
func (s *subscriber) joined() []*channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*channel(nil), s.chans...)
}

// queuedEvents returns the number of events queued but not yet written.
func (s *subscriber) queuedEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pendCh) + s.inflight
}

// sseComment is a keep-alive comment.
var sseComment = sse.AppendComment(nil, "")
