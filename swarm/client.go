package swarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/swarm/resultfile"
)

// The client keeps a lean wire (raw TCP, internal/sse's Handshake and
// in-place Stream: chunked decoding and event splitting, no allocation
// per event; the benchmarks' clients are these) rather than
// r3labs/sse/v2's EventStreamReader: that reader needs an io.Reader body
// (net/http's per-connection goroutines and buffers, or a second copy),
// scans the whole buffer five times per event for the blank line, and
// leaves the field parsing (with an allocated Event per event) to its
// client — well past the 10 µs and 16 KiB per connection this swarm is
// held to. See README "swarm" for the measured figures.

// readBufferSize is each client's one read buffer; also holds the request
// and the response head.
const readBufferSize = 2 << 10

// Why the run cut a client's connection.
const (
	cutNone uint32 = iota
	cutStorm
)

// readOutcome is what one read(2) of a client's stream did.
type readOutcome uint8

const (
	readNothing     readOutcome = iota // EAGAIN: wait for the poller
	readInterrupted                    // EINTR: read again
	readData                           // data, fed to the stream
	readOver                           // the stream ended or failed (readErr)
)

// errLifetimeOver ends a connection whose churn lifetime ran out.
var errLifetimeOver = errors.New("lifetime over")

// connectError is a failed connect, with the kind it is counted under and
// whether a browser would give up (a non-SSE answer) rather than retry.
type connectError struct {
	kind      string
	permanent bool
	err       error
}

func (e *connectError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// chanState tracks one channel of a client's session: the range of
// sequence numbers it is owed [first, end) and a 64-event window for
// duplicate and reorder detection below the highest seq seen.
type chanState struct {
	ch    int
	first int64
	end   int64
	high  int64
	win   uint64 // bit i: seq high-i arrived
	// gaps are the ranges skipped in this session (a later seq arrived
	// first), each with what the client knew when it opened; fills are
	// seqs of a gap that arrived later after all. Both stay empty on a
	// healthy stream. See attribution.go.
	gaps  []gap
	fills []int64
	// announced is set by a darktime.missed notice for the channel: the
	// next gap was announced by the server.
	announced bool
	// annStream is the stream (Client.streamNo) of the channel's latest
	// darktime.missed notice (-1: none this session); annLast is st.last
	// when it came and annFirst the first event after it (-1 until then).
	// The notice says what the server had after annLast and before
	// annFirst is gone: a gap that opens later on that stream, among the
	// replayed history, covers seqs the server may have put there.
	annStream         int
	annLast, annFirst int64
	// resume is how the client came back since the channel's last event
	// (resumeNone when it did not reconnect); resumeAt is when the
	// reconnect was requested (publishLog clock): an event whose publish
	// had been answered by then, arriving first, came from the server's
	// history. (A seq merely assigned by then may still have been in flight
	// and be delivered live.)
	resume   resumeKind
	resumeAt int64
	// streamCause is what explains, on the current stream, the loss of an
	// event whose publish was sent before the stream was open (streamAt,
	// publishLog clock): lossNoID when it came back with no id to send,
	// lossNotResumed once its first event showed the target did not
	// replay; lossSilent otherwise. Concurrent publishes reach the server
	// in any order, so such an event can be missing past the stream's
	// first event, not only before it.
	streamCause lossCause
	streamAt    int64
	// last is the seq of the channel's last event received (in arrival
	// order; high is the highest); lag is how far behind the stream ran
	// lately: a decaying maximum of receive time minus intended publish
	// time (ns).
	last, lag int64
}

// endpoint is where a subscribe URL's host is dialled; one per distinct
// host, shared by every client.
type endpoint struct {
	addr string // host:port to dial
	host string // Host header
}

// subscribeURL is a client's subscribe URL on one target. Paths are
// interned: clients with the same channels share one string.
type subscribeURL struct {
	ep   *endpoint
	path string // request target
	// tokenAt is where {token} goes in path (at tokenSentinel), or -1.
	tokenAt int
}

// client is one simulated EventSource: one goroutine, one TCP connection
// at a time, one read buffer.
type client struct {
	r *run
	// offline is why a client waiting to come back is not reading: its
	// stream ended by the server (lossServerCut), the swarm's storm cut it
	// (lossReconnecting), or its reconnects fail (lossReconnectFailed);
	// lossTail while it is connected.
	offline lossCause
	idx     int
	uid     int // {client}: the index in the whole run
	chans   []chanState
	source  *net.TCPAddr
	// subs holds the subscribe URL on each target, in Config.Targets
	// order from the client's first target on; sub is the one in use,
	// which moves on when a connect fails below HTTP (failover).
	subs []subscribeURL
	sub  int
	seed uint64
	// readDelay, when positive, makes the client a slow reader: it
	// sleeps that long before every read(2) (Config.Slowdowns).
	readDelay atomic.Int64
	// slowed is set, on the client's goroutine, once it has noticed it
	// turned slow and ended its claims on its channels.
	slowed bool

	conn atomic.Pointer[net.TCPConn]
	cut  atomic.Uint32
	// discarding, during a storm's hang-up, counts events in discarded
	// instead of using them.
	discarding bool
	discarded  int64
	// serverClosed is set by a hang-up that found the stream already
	// ended by the server; hangupTimedOut by one that gave up reading
	// with the stream still flowing.
	serverClosed   bool
	hangupTimedOut bool
	// renew is set by a <notices>renew event: the server ends the stream
	// because the token expired, and the client comes back at once with a
	// fresh one (token.go).
	renew bool
	// streamNo counts the session's connections (0: the first).
	streamNo int
	stream   *sse.Stream
	lastID   []byte
	retry    time.Duration
	recvNs   int64
	started  time.Time // first connect of the session
	waiting  bool      // the session has not received its first event
	feedErr  error     // a stream error found while connecting
	shard    *recShard
	// debits are the ledger debits not yet applied: the ledger takes a
	// lock and a hashed map lookup, so a client sums its events per
	// channel and window and hands them over about once a second.
	debits    []pendingDebit
	flushedNs int64

	buf [readBufferSize]byte
}

// pendingDebit sums a client's events of one channel and ledger window.
type pendingDebit struct {
	ch     int
	window int64 // the window's start, Unix ns
	c      ledger.Counts
}

// debitFlushNs is how often a client hands its debits to the ledger.
const debitFlushNs = int64(time.Second)

// debit adds one event to the client's pending debits.
func (c *client) debit(ch int, ts int64, cnt ledger.Counts) {
	window := int64(0)
	if w := c.r.cfg.LedgerWindow; w > 0 {
		window = time.Unix(0, ts).Truncate(w).UnixNano()
	}
	n := len(c.debits)
	switch {
	case n > 0 && c.debits[n-1].ch == ch && c.debits[n-1].window == window:
		c.debits[n-1].c = c.debits[n-1].c.Add(cnt)
	default:
		found := false
		for i := range c.debits {
			if d := &c.debits[i]; d.ch == ch && d.window == window {
				d.c = d.c.Add(cnt)
				found = true
				break
			}
		}
		if !found {
			c.debits = append(c.debits, pendingDebit{ch: ch, window: window, c: cnt})
		}
	}
	if c.recvNs-c.flushedNs >= debitFlushNs || len(c.debits) >= 16 {
		c.flushDebits()
	}
}

// flushDebits applies the pending debits to the run's ledger.
func (c *client) flushDebits() {
	for _, d := range c.debits {
		at := time.Time{}
		if d.window != 0 {
			at = time.Unix(0, d.window)
		}
		c.r.ledger.Apply(c.r.asg.names[d.ch], at, d.c)
	}
	c.debits = c.debits[:0]
	c.flushedNs = c.recvNs
}

// run is the client's life: sessions of connections until the run stops.
func (c *client) run() {
	r := c.r
	defer r.clientWG.Done()
	defer c.flushDebits()
	first := true
	for session := 0; !r.stopping.Load(); session++ {
		if session > 0 {
			r.count(func(t *totals) { t.Churned++ })
		}
		if !c.session(&first) {
			return
		}
	}
}

// session runs one client session; it reports whether a fresh client
// should take the place of this one (churn).
func (c *client) session(first *bool) bool {
	r := c.r
	c.lastID = c.lastID[:0]
	c.retry = r.cfg.DefaultRetry
	inSession := false
	var lifeEnd time.Time
	failed := 0 // connects failed in a row
	for {
		c.renew = false // set by this connection's <notices>renew, if any (connect may feed it already)
		err := c.connect(inSession)
		var ce *connectError
		permanent := errors.As(err, &ce) && ce.permanent
		// A connect that failed below HTTP (refused, reset, unreachable,
		// timed out) moves to the next target at once, as a load balancer
		// would; a full round of failures waits the retry delay.
		failover := err != nil && !permanent && !errors.Is(err, errStopped) && len(c.subs) > 1
		if err != nil && !permanent {
			failed++
		}
		// A client that gives up is counted before its first attempt is
		// reported: when no client could subscribe, Run reads the counts
		// as soon as every first attempt is in.
		gaveUp := permanent && !r.stopping.Load() && c.cut.Load() != cutStorm
		if gaveUp {
			r.countError(ce.kind, err)
			r.count(func(t *totals) { t.Failed++ })
		}
		if *first && (!failover || failed%len(c.subs) == 0 || r.stopping.Load()) {
			*first = false
			r.firstAttempt(err == nil)
		}
		if r.stopping.Load() {
			cause := c.offline // stopped while coming back
			if err == nil {
				r.open.Add(-1)
				c.hangUp(hangStop)
				cause = c.tailCause()
			}
			c.close()
			c.endSession(inSession, r.finalSeq, cause)
			return false
		}
		if err != nil && c.cut.Swap(cutNone) == cutStorm {
			// Cut by a storm while connecting: not the target's error.
			r.count(func(t *totals) { t.StormCuts++ })
			c.close()
			c.offline = lossReconnecting
			if !r.sleep(c.retry) {
				c.endSession(inSession, r.finalSeq, c.offline)
				return false
			}
			continue
		}
		if err != nil {
			if permanent {
				if !gaveUp {
					r.countError(ce.kind, err)
					r.count(func(t *totals) { t.Failed++ })
				}
				c.endSession(inSession, nil, lossGaveUp)
				return false
			}
			r.countError(errKind(err), err)
			c.close()
			if failover {
				c.sub = (c.sub + 1) % len(c.subs)
				r.count(func(t *totals) { t.Failovers++ })
				if failed%len(c.subs) != 0 {
					continue
				}
			}
			c.offline = lossReconnectFailed
			if !r.sleep(c.retry) {
				c.endSession(inSession, r.finalSeq, c.offline)
				return false
			}
			continue
		}
		failed = 0
		c.offline = lossTail
		if !inSession {
			inSession = true
			c.beginSession()
			if r.cfg.Churn.Enabled() {
				rng := rand.New(rand.NewPCG(c.seed, uint64(time.Now().UnixNano())))
				lifeEnd = time.Now().Add(r.cfg.Churn.Draw(rng.Float64()))
			}
		}
		err = c.readLoop(lifeEnd)
		if id := c.stream.LastEventID(); len(id) > 0 {
			c.lastID = append(c.lastID[:0], id...)
		}
		if ms := c.stream.RetryMs(); ms > 0 {
			c.retry = time.Duration(ms) * time.Millisecond
		}
		r.open.Add(-1)
		switch {
		case r.stopping.Load():
			c.hangUp(hangStop)
			c.endSession(true, r.finalSeq, c.tailCause())
			return false
		case errors.Is(err, errLifetimeOver):
			c.hangUp(hangChurn)
			c.endSession(true, nil, c.tailCause()) // ends were set when the lifetime ran out
			return true
		case c.cut.Swap(cutNone) == cutStorm:
			r.count(func(t *totals) { t.StormCuts++ })
			c.hangUp(hangStorm)
			c.offline = lossReconnecting
		case c.renew:
			// The server asked for a fresh token and ended the stream:
			// reconnect at once with the Last-Event-ID (a stream renewed
			// within a second of its connect waits the retry delay, so a
			// token that lives shorter than the clocks disagree cannot
			// make a client spin).
			c.renew = false
			c.offline = lossServerCut // it ended the stream
			r.count(func(t *totals) { t.Reconnects++ })
			c.close()
			if time.Since(c.started) >= time.Second {
				continue
			}
			if !r.sleep(c.retry) {
				c.endSession(true, r.finalSeq, c.offline)
				return false
			}
			continue
		default:
			r.count(func(t *totals) { t.Drops++ })
			r.countError("drop_"+errKind(err), err)
			c.offline = lossServerCut // the stream ended without the client's leave
		}
		c.close()
		if !r.sleep(c.retry) {
			// The run ended while the client waited to come back: what
			// its channels got since is owed and was never sent to it.
			c.endSession(true, r.finalSeq, c.offline)
			return false
		}
		r.count(func(t *totals) { t.Reconnects++ })
	}
}

// beginSession owes the client every event its channels get from now on:
// a publish whose seq is assigned after this point is sent after the
// server subscribed us.
func (c *client) beginSession() {
	r := c.r
	for i := range c.chans {
		st := &c.chans[i]
		st.first = r.nextSeq[st.ch].Load()
		st.end = math.MaxInt64
		if c.slowed {
			st.end = st.first // a slow client is owed nothing new
		}
		st.high, st.last = st.first-1, st.first-1
		st.win = 0
		st.gaps, st.fills = nil, nil
		st.announced, st.resume = false, resumeNone
		st.streamCause = lossSilent
		st.annStream, st.annLast, st.annFirst = -1, -1, -1
		st.lag = 0
	}
	c.streamNo = 0
	c.waiting = true
}

// endSession records the session's ranges for the ledger. ends gives the
// last seq (exclusive) per channel; nil means "up to now". tail is why
// whatever came after the session's last event never arrived.
func (c *client) endSession(inSession bool, ends []int64, tail lossCause) {
	if !inSession {
		return
	}
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range c.chans {
		st := &c.chans[i]
		end := st.end
		if end == math.MaxInt64 {
			if ends != nil {
				end = ends[st.ch]
			} else {
				end = r.nextSeq[st.ch].Load()
			}
		}
		if end > st.first {
			r.sessions = append(r.sessions, session{ch: st.ch, first: st.first, end: end, high: st.high,
				gaps: st.gaps, fills: st.fills, tail: tail, lastStream: c.streamNo, endedAt: time.Now().UnixNano(), lag: st.lag})
		}
		st.gaps, st.fills = nil, nil
	}
}

// connect dials, subscribes (resuming with Last-Event-ID when resume) and
// reads the response head.
func (c *client) connect(resume bool) error {
	r := c.r
	start := time.Now()
	d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
	if c.source != nil {
		d.LocalAddr = c.source
		d.Control = bindNoPort
	}
	sub := c.subs[c.sub]
	nc, err := d.DialContext(r.stopCtx, "tcp", sub.ep.addr)
	if err != nil {
		return err
	}
	conn := nc.(*net.TCPConn)
	c.conn.Store(conn)
	if r.stopping.Load() {
		return errStopped
	}
	if err := conn.SetDeadline(start.Add(r.cfg.ConnectTimeout)); err != nil {
		return err
	}
	var token string
	if r.signer != nil {
		if token, err = c.mintToken(); err != nil {
			return &connectError{kind: "token", permanent: true, err: err}
		}
	}
	req := append(c.buf[:0], "GET "...)
	if sub.tokenAt >= 0 {
		req = append(req, sub.path[:sub.tokenAt]...)
		req = append(req, token...)
		req = append(req, sub.path[sub.tokenAt+len(tokenSentinel):]...)
	} else {
		req = append(req, sub.path...)
	}
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, sub.ep.host...)
	req = append(req, "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: darktime-swarm\r\n"...)
	req = c.appendSubscribeHeaders(req, token)
	if resume && len(c.lastID) > 0 {
		req = append(req, "Last-Event-ID: "...)
		req = append(req, c.lastID...)
		req = append(req, "\r\n"...)
	}
	if resume {
		// What the channels had published when the request left: an event
		// answered before it that comes first was replayed from history.
		at := r.pubs.now()
		for i := range c.chans {
			c.chans[i].resumeAt = at
		}
	}
	req = append(req, "\r\n"...)
	headEnd, n, err := sse.Handshake(conn, req, c.buf[:])
	if errors.Is(err, sse.ErrHeadTooLarge) {
		return &connectError{kind: "bad_response", permanent: true, err: err}
	} else if err != nil {
		return err
	}
	head := c.buf[:headEnd]
	if err := checkStatus(head); err != nil {
		return err
	}
	stream, err := sse.NewStream(head, sse.Limits{}, func(m sse.Message) { c.event(m.Type, m.Data) })
	if err != nil {
		return &connectError{kind: "not_sse", permanent: true, err: err}
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.stream = stream
	c.started = start
	if resume {
		c.streamNo++
		kind := resumeWithID
		if len(c.lastID) == 0 {
			kind = resumeNoID
		}
		at := r.pubs.now()
		for i := range c.chans {
			c.chans[i].resume = kind
			c.chans[i].streamCause, c.chans[i].streamAt = lossSilent, at
			if kind == resumeNoID {
				c.chans[i].streamCause = lossNoID
			}
		}
		r.tally(func(a *Attribution) {
			if kind == resumeWithID {
				a.Resumes.WithID++
			} else {
				a.Resumes.NoID++
			}
		})
	}
	took := time.Since(start)
	r.open.Add(1)
	r.connected(c.shard, took)
	if rest := c.buf[headEnd:n]; len(rest) > 0 {
		c.recvNs = time.Now().UnixNano()
		c.feedErr = stream.Feed(rest) // the read loop reports it
	}
	return nil
}

// checkStatus classifies a response status as a browser does: anything but
// 200 fails the EventSource for good.
func checkStatus(head []byte) error {
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.")) {
		return &connectError{kind: "bad_response", permanent: true, err: fmt.Errorf("bad status line %q", firstLine(head))}
	}
	code, err := strconv.Atoi(string(head[9:12]))
	if err != nil {
		return &connectError{kind: "bad_response", permanent: true, err: fmt.Errorf("bad status line %q", firstLine(head))}
	}
	if code == 200 {
		return nil
	}
	kind := "status_" + strconv.Itoa(code/100) + "xx"
	switch code {
	case 401:
		kind = errAuthUnauthorized
	case 403:
		kind = errAuthForbidden
	}
	return &connectError{kind: kind, permanent: true, err: fmt.Errorf("subscribe answered %q, want 200", firstLine(head)[9:])}
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		return b[:i]
	}
	return b
}

// readLoop reads events until the connection ends. When lifeEnd is set,
// the client decides to leave then, keeps reading what was published
// before for ChurnGrace, and returns errLifetimeOver.
func (c *client) readLoop(lifeEnd time.Time) error {
	conn := c.conn.Load()
	if err := c.feedErr; err != nil {
		c.feedErr = nil
		return err
	}
	leaving := false
	if !lifeEnd.IsZero() {
		if err := conn.SetReadDeadline(lifeEnd); err != nil {
			return err
		}
	}
	// After every deadline change: a wake (storm, stop) that came before
	// it was overwritten, and the flags say so.
	if c.cut.Load() != cutNone || c.r.stopping.Load() {
		return errStopped
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var readErr error
	// read does one read(2) and feeds what it got to the stream.
	read := func(fd uintptr) readOutcome {
		n, err := syscall.Read(int(fd), c.buf[:])
		switch {
		case err == syscall.EINTR:
			return readInterrupted
		case err == syscall.EAGAIN:
			return readNothing
		case err != nil:
			readErr = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
			return readOver
		case n == 0:
			readErr = io.EOF
			return readOver
		}
		c.recvNs = time.Now().UnixNano()
		if ferr := c.stream.Feed(c.buf[:n]); ferr != nil {
			readErr = ferr
			return readOver
		}
		return readData
	}
	// Read until EAGAIN, then wait for the poller. A short read is not
	// enough to stop at: when a server writes its last bytes and closes
	// (a goodbye notice, a slow-consumer cut), the data and the FIN can
	// reach the poller as one readiness event, and the EOF only shows on
	// the read after the data; waiting instead would wait forever.
	drain := func(fd uintptr) bool {
		for {
			switch read(fd) {
			case readInterrupted:
				continue
			case readOver:
				return true
			case readNothing:
				return false
			}
			if c.readDelay.Load() > 0 {
				return true // turned slow: the loop below goes on with readOnce
			}
		}
	}
	// A slow reader does one read(2) per call, after its delay, which is
	// slept outside the poller callback: only this client waits.
	readOnce := func(fd uintptr) bool {
		for {
			switch read(fd) {
			case readInterrupted:
				continue
			case readNothing:
				return false
			}
			return true
		}
	}
	for {
		readErr = nil
		var err error
		if delay := c.readDelay.Load(); delay > 0 {
			if !c.r.sleep(time.Duration(delay)) {
				return errStopped
			}
			err = raw.Read(readOnce)
		} else {
			err = raw.Read(drain)
		}
		if err == nil && readErr == nil {
			continue // one slow read done, or the client turned slow
		}
		if err == nil {
			err = readErr
		}
		if c.cut.Load() != cutNone || c.r.stopping.Load() {
			return err // a storm or the end of the run woke the read
		}
		if !lifeEnd.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) {
			if leaving {
				return errLifetimeOver
			}
			leaving = true
			for i := range c.chans {
				c.chans[i].end = c.r.nextSeq[c.chans[i].ch].Load()
			}
			if err := conn.SetReadDeadline(time.Now().Add(c.r.cfg.ChurnGrace)); err != nil {
				return err
			}
			if c.cut.Load() != cutNone || c.r.stopping.Load() {
				return errStopped // woken while the deadline moved (see wake)
			}
			continue
		}
		return err
	}
}

// hangup is why the client itself ends a connection.
type hangup uint8

const (
	hangStorm hangup = iota // a reconnect storm cut it
	hangChurn               // the client leaves (churn)
	hangStop                // the run ends
)

// HangupTimeout bounds how long a hang-up waits for the server to close
// its side after the client's FIN (resultfile.HangupTimeout: results
// count the hang-ups that hit it).
const HangupTimeout = resultfile.HangupTimeout

// peerCloseWait is how long a hang-up waits for more of the stream before
// it sends its FIN: a server that closed first has its FIN right behind
// its data.
const peerCloseWait = 10 * time.Millisecond

// hangUp ends the connection by the client's own decision. A browser just
// drops it; the swarm first sends FIN and reads until the server closes in
// turn, so that every copy the server wrote reaches the ledger: used as
// any event (a leaving client, the end of the run: it had arrived), or
// counted as discarded (a storm: the stream resumes before it, with the
// Last-Event-ID of the last event used). Then it resets the connection,
// as close does.
func (c *client) hangUp(why hangup) {
	conn := c.conn.Load()
	if conn == nil || c.stream == nil {
		c.close()
		return
	}
	c.discarding, c.discarded = why == hangStorm, 0
	// First, before saying anything: did the server end the stream
	// already? Its close arrives after what it had sent, which the client
	// may still be reading (a slow reader, a stream the server cut off).
	// An EOF before the client's own FIN is the server's.
	c.serverClosed = false
	for began := time.Now(); !c.serverClosed && time.Since(began) < HangupTimeout; {
		_ = conn.SetReadDeadline(time.Now().Add(peerCloseWait))
		n, err := conn.Read(c.buf[:])
		if n > 0 {
			c.recvNs = time.Now().UnixNano()
			if c.stream.Feed(c.buf[:n]) != nil {
				break
			}
		}
		if err != nil {
			c.serverClosed = errors.Is(err, io.EOF)
			break
		}
	}
	if !c.serverClosed {
		_ = conn.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(HangupTimeout))
	timedOut := false
	for !c.serverClosed {
		n, err := conn.Read(c.buf[:])
		if n > 0 {
			c.recvNs = time.Now().UnixNano()
			if c.stream.Feed(c.buf[:n]) != nil {
				break
			}
		}
		if err != nil {
			timedOut = errors.Is(err, os.ErrDeadlineExceeded)
			break
		}
	}
	c.discarding = false
	c.hangupTimedOut = timedOut
	c.r.tally(func(a *Attribution) {
		switch why {
		case hangStorm:
			a.Hangups.Storm++
		case hangChurn:
			a.Hangups.Churn++
		default:
			a.Hangups.Stop++
		}
		a.Hangups.Discarded += c.discarded
		if timedOut {
			a.Hangups.Timeouts++
		}
	})
	c.close()
}

// tailCause is why a session that ends now never got what it was still
// owed: the server had ended its stream (found by the last hang-up), or
// nothing known.
func (c *client) tailCause() lossCause {
	switch {
	case c.serverClosed:
		c.serverClosed = false
		return lossServerCut
	case c.hangupTimedOut:
		c.hangupTimedOut = false
		return lossInFlight
	}
	return lossTail
}

// wake interrupts whatever the client's goroutine reads on its
// connection (a storm, the end of the run); it checks the flags after
// every deadline change of its own.
func (c *client) wake() {
	if conn := c.conn.Load(); conn != nil {
		_ = conn.SetReadDeadline(time.Now())
	}
}

// close drops the connection with a reset, not a FIN, so that source
// ports do not pile up in TIME_WAIT.
func (c *client) close() {
	if conn := c.conn.Swap(nil); conn != nil {
		_ = conn.SetLinger(0)
		_ = conn.Close()
	}
}

// event accounts one received event.
func (c *client) event(typ, data []byte) {
	r := c.r
	sh := c.shard
	if c.discarding {
		c.discarded++
		return
	}
	if p := r.prof.Notices; p != "" && len(typ) > len(p) && string(typ[:len(p)]) == p {
		c.notice(typ[len(p):], data)
		return
	}
	if r.eventType != "" && string(typ) != r.eventType && !(len(typ) == 0 && r.eventType == "message") {
		sh.add(func(s *recShard) { s.c.OtherType++ })
		return
	}
	seq, ts, name, ok := r.extract(data)
	if !ok {
		sh.add(func(s *recShard) { s.c.Malformed++ })
		return
	}
	st := &c.chans[0]
	if len(c.chans) > 1 {
		st = nil
		if ch, known := r.chanIndex[string(name)]; known {
			for i := range c.chans {
				if c.chans[i].ch == ch {
					st = &c.chans[i]
				}
			}
		}
		if st == nil {
			sh.add(func(s *recShard) { s.c.Foreign++ })
			return
		}
	}
	if !c.slowed && c.readDelay.Load() > 0 {
		// Turned slow: leave the measured population now, as a client
		// leaving does (the ledger owes it what was published until now).
		c.slowed = true
		for i := range c.chans {
			c.chans[i].end = min(c.chans[i].end, r.nextSeq[c.chans[i].ch].Load())
		}
	}
	if seq < st.first || seq >= st.end {
		if c.slowed && seq >= st.end {
			sh.add(func(s *recShard) { s.c.Slow++ })
			return
		}
		sh.add(func(s *recShard) { s.c.Outside++ })
		return
	}
	var dup, reordered bool
	switch {
	case seq > st.high:
		gapped := seq > st.high+1
		if gapped {
			c.openGap(st, seq)
		}
		if st.resume != resumeNone {
			c.firstAfterResume(st, seq, gapped)
		}
		st.announced = false
		if d := seq - st.high; d >= 64 {
			st.win = 1
		} else {
			st.win = st.win<<d | 1
		}
		st.high = seq
	case st.high-seq >= 64:
		// Older than the window: a seq of a gap arriving late, or a
		// duplicate of one received before.
		dup = !skippedIn(st.gaps, st.fills, seq)
		if !dup {
			st.fills = append(st.fills, seq)
			reordered = r.pubs.orderedBefore(st.ch, seq, st.high)
		}
	default:
		bit := uint64(1) << (st.high - seq)
		dup = st.win&bit != 0
		if !dup {
			st.fills = append(st.fills, seq) // below high and not seen: it was in a gap
			reordered = r.pubs.orderedBefore(st.ch, seq, st.high)
		}
		st.win |= bit
	}
	if !dup {
		st.last = seq
		if st.annFirst < 0 && st.annStream == c.streamNo {
			st.annFirst = seq
		}
	}
	lat := time.Duration(c.recvNs - ts)
	if !dup {
		// A decaying maximum: how far behind the stream ran lately, its
		// jitter included.
		st.lag = max(st.lag-st.lag/8, int64(lat))
	}
	late := lat > r.cfg.LateAfter
	first := c.waiting && !dup
	c.waiting = c.waiting && dup
	sh.mu.Lock()
	sh.c.Events++
	switch {
	case dup:
		sh.c.Duplicated++
	default:
		if reordered {
			sh.c.Reordered++
		}
		if late {
			sh.c.Late++
		}
		recordMicros(sh.delivery, lat)
		if first {
			recordMicros(sh.firstEvent, time.Duration(c.recvNs-c.started.UnixNano()))
		}
	}
	sh.mu.Unlock()
	cnt := ledger.Counts{Debit: 1}
	if dup {
		cnt.Duplicated = 1
	}
	if reordered {
		cnt.Reordered = 1
	}
	if late && !dup {
		cnt.Late = 1
	}
	c.debit(st.ch, ts, cnt)
}

// notice accounts a control event of the server (Profile.Notices); kind
// is its type after the prefix. A missed notice marks its channel: the
// next gap there was announced.
func (c *client) notice(kind, data []byte) {
	c.shard.add(func(s *recShard) { s.c.Notices++ })
	if string(kind) == renewNotice {
		// Counted as it comes, also when the client is hanging up at the
		// end of the run and will not come back.
		c.renew = true
		c.r.count(func(t *totals) { t.Renewals++ })
		return
	}
	if string(kind) != "missed" {
		return
	}
	var n struct {
		Channel string `json:"channel"`
	}
	_ = json.Unmarshal(data, &n) // rare: may allocate
	for i := range c.chans {
		st := &c.chans[i]
		if len(c.chans) == 1 || c.r.asg.names[st.ch] == n.Channel || strings.HasSuffix(n.Channel, ":"+c.r.asg.names[st.ch]) {
			st.announced = true
			st.annStream, st.annLast, st.annFirst = c.streamNo, st.last, -1
			// The notice says the events after the stream's last one are
			// (partly) gone: that covers the seqs of gaps still open that
			// the server may have ordered after it (publishes in flight
			// together), not those it had to deliver before it.
			for j := range st.gaps {
				if st.gaps[j].announcedAfter < 0 {
					st.gaps[j].announcedAfter = st.last
				}
			}
		}
	}
}

// errKind names a connection error for the error counters.
func errKind(err error) string {
	var ce *connectError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return ce.kind
	case errors.Is(err, sse.ErrStreamEnded):
		return "stream_ended"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "dial"
	}
	if errors.As(err, &op) && (op.Op == "read" || op.Op == "raw-read") {
		return "read"
	}
	if errors.Is(err, errStopped) {
		return "stopped"
	}
	return "stream"
}
