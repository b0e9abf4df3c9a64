package shadow

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hopHeaders are the hop-by-hop headers net/http/httputil strips.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// mirrorHeader is what a target gets of the client's headers: the
// end-to-end ones, with the forwarding headers the primary gets
// (X-Forwarded-For, -Host, -Proto; the incoming chain and Forwarded only
// from a trusted proxy: forwarded.go), without Accept-Encoding (the
// transport negotiates its own, so a mirrored stream is read decoded, as
// the primary's is sent), then the route's header rules, then the mark.
func mirrorHeader(d *decision, targetName string) http.Header {
	in := d.in
	h := in.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	for _, f := range h["Connection"] {
		for _, name := range strings.Split(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	h.Del("Accept-Encoding")
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // as ReverseProxy: not Go's default
	}
	xff, keepForwarded := mirrorForwarded(in, d.st.trusted)
	h.Del("X-Forwarded-For")
	if !keepForwarded {
		h.Del("Forwarded")
	}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	h.Set("X-Forwarded-Host", in.Host)
	if in.TLS != nil {
		h.Set("X-Forwarded-Proto", "https")
	} else {
		h.Set("X-Forwarded-Proto", "http")
	}
	d.rt.headers.apply(h)
	h.Set(d.st.cfg.Mirror.Header, targetName)
	return h
}

// newMirrorRequest builds the stream request a target gets for the
// client's. With identity data the sides have ids of their own, so the
// user's resume point (Last-Event-ID, or the last_event_id query
// parameter), an id of the primary's, means nothing to the target: it is
// not sent, and the target's stream starts live (see resumePoint).
func newMirrorRequest(ctx context.Context, d *decision, t *target, body []byte) (*http.Request, error) {
	in := d.in
	u := *t.url
	u.Path, u.RawPath = joinPath(t.url, candidatePath(d.rt, in.URL.Path)), ""
	u.RawQuery = in.URL.RawQuery
	independent := d.st.cfg.Mirror.Identity == IdentityData
	if independent {
		u.RawQuery = withoutQuery(u.RawQuery, lastEventIDParam)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, in.Method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	req.Header = mirrorHeader(d, t.name)
	if independent {
		req.Header.Del("Last-Event-ID")
	}
	return req, nil
}

// lastEventIDParam is the query parameter the reference server (and the
// swarm's first connect) resume with where a browser cannot set headers.
const lastEventIDParam = "last_event_id"

// resumePoint reports whether a stream request resumes from an event id.
func resumePoint(r *http.Request) bool {
	if r.Header.Get("Last-Event-ID") != "" {
		return true
	}
	_, ok := queryValue(r.URL.RawQuery, lastEventIDParam)
	return ok
}

// withoutQuery drops every name=value pair of a raw query whose name is
// name, keeping the others as they were.
func withoutQuery(raw, name string) string {
	if raw == "" {
		return raw
	}
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}

// mirrorJob is one ordinary request waiting for a mirror lane.
type mirrorJob struct {
	order   *mirrorOrder
	t       *target
	method  string
	url     string
	header  http.Header
	body    []byte
	timeout time.Duration
	// publish: a publish the publish clock times (pubclock.go), with the
	// query it is sent with.
	publish bool
	query   string
}

// mirrorOrder is what a lane needs to keep the primary's order: when the
// request reached the proxy, when the primary's answer went back (0: not
// yet), and a channel closed when its mirror is done.
type mirrorOrder struct {
	arrived  int64
	answered atomic.Int64
	done     chan struct{}
}

func newMirrorOrder() *mirrorOrder {
	return &mirrorOrder{arrived: time.Now().UnixNano(), done: make(chan struct{})}
}

// after reports whether o must be sent after prev: the primary answered
// prev before o arrived, so the primary ordered them and so must the
// candidate. Requests in flight together at the primary have no order.
func (o *mirrorOrder) after(prev *mirrorOrder) bool {
	a := prev.answered.Load()
	return a != 0 && a < o.arrived
}

// mirrorLanes sends a target's mirrored requests: a few worker lanes with
// bounded queues. Requests with the same path and query (publishes to one
// channel) share a lane, which sends them in the order the primary got
// them: each is written to the candidate before the next starts, and one
// the primary answered before the next arrived is answered by the
// candidate before the next leaves (mirrorOrder.after); requests that were
// in flight together at the primary — as the primary's own clients keep
// several going — are in flight together at the candidate too, up to
// laneInflight of them, so one slow answer does not hold a busy lane back
// (a serial lane fell behind under load and left publishes unmirrored). A
// full lane drops the mirror, never delays the primary.
type mirrorLanes struct {
	lanes []chan mirrorJob
}

const (
	laneCount    = 8
	laneInflight = 32
	// orderWait bounds how long after it reached the proxy a request may
	// wait for the candidate's answer to one the primary had answered
	// before it came.
	orderWait = 20 * time.Millisecond
)

// orderTimer is a lane's reusable timer for orderWait.
type orderTimer struct{ t *time.Timer }

// C (re)starts the timer for d and returns its channel.
func (o *orderTimer) C(d time.Duration) <-chan time.Time {
	if o.t == nil {
		o.t = time.NewTimer(d)
	} else {
		o.t.Reset(d)
	}
	return o.t.C
}

func (p *Proxy) startLanes(queue int) *mirrorLanes {
	ml := &mirrorLanes{}
	for range laneCount {
		ch := make(chan mirrorJob, max(queue/laneCount, 1))
		ml.lanes = append(ml.lanes, ch)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			slots := make(chan struct{}, laneInflight)
			var inflight sync.WaitGroup
			defer inflight.Wait()
			var sent []*mirrorOrder // in flight, in the order they left
			var wait orderTimer
			for {
				select {
				case <-p.base.Done():
					return
				case job := <-ch:
					kept, relaxed := sent[:0], false
					for _, o := range sent {
						select {
						case <-o.done:
							continue
						default:
						}
						if !relaxed && job.order.after(o) {
							// Wait at most until orderWait after the job
							// reached the proxy: a lane that lags more
							// than that sends at once, and catches up.
							left := time.Until(time.Unix(0, job.order.arrived+int64(orderWait)))
							if left <= 0 {
								p.m.mirrorOrderRelaxed.WithLabelValues(job.t.name).Inc()
								relaxed = true
								kept = append(kept, o)
								continue
							}
							select {
							case <-o.done:
								continue
							case <-wait.C(left):
								// The candidate is slow: stop keeping the
								// order rather than fall behind (counted).
								p.m.mirrorOrderRelaxed.WithLabelValues(job.t.name).Inc()
								relaxed = true
							case <-p.base.Done():
								job.t.breaker.release()
								return
							}
						}
						kept = append(kept, o)
					}
					clear(sent[len(kept):])
					sent = append(kept, job.order)
					select {
					case slots <- struct{}{}:
					case <-p.base.Done():
						job.t.breaker.release()
						return
					}
					wrote := make(chan struct{})
					inflight.Add(1)
					go func() {
						defer inflight.Done()
						defer func() { <-slots }()
						p.runMirror(job, wrote)
					}()
					// The next request of the lane leaves after this one.
					select {
					case <-wrote:
					case <-p.base.Done():
						return
					}
				}
			}
		}()
	}
	return ml
}

// mirrorRequest queues a copy of an ordinary request for t; a lane sends
// it, reads the answer to the end and throws it away. False when it was
// not queued (the circuit is open or the lane full); otherwise its order,
// to be stamped when the primary has answered. A publish is timed by the
// publish clock when its lane sends it.
func (p *Proxy) mirrorRequest(d *decision, t *target, body []byte, publish bool) (*mirrorOrder, bool) {
	if !t.breaker.allow() {
		p.m.circuitOpen.WithLabelValues(t.name).Inc()
		p.m.mirrorSkipped.WithLabelValues(t.name, "circuit_open").Inc()
		return nil, false
	}
	in := d.in
	u := *t.url
	u.Path, u.RawPath = joinPath(t.url, candidatePath(d.rt, in.URL.Path)), ""
	u.RawQuery = in.URL.RawQuery
	job := mirrorJob{order: newMirrorOrder(), t: t, method: in.Method, url: u.String(), body: body, timeout: d.st.cfg.Mirror.Timeout,
		header: mirrorHeader(d, t.name), publish: publish, query: u.RawQuery}
	lane := t.lanes.lanes[hashBytes(fnvOffset, []byte(in.URL.RequestURI()))%laneCount]
	select {
	case lane <- job:
		return job.order, true
	default:
		t.breaker.release()
		p.m.mirrorSkipped.WithLabelValues(t.name, "inflight_full").Inc()
		return nil, false
	}
}

// runMirror sends one mirrored request; wrote is closed once the request
// is written (or failed), so the lane can send the next.
func (p *Proxy) runMirror(job mirrorJob, wrote chan struct{}) {
	defer close(job.order.done)
	var once sync.Once
	done := func() { once.Do(func() { close(wrote) }) }
	defer done()
	t := job.t
	ctx, cancel := context.WithTimeout(p.base, job.timeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { done() }})
	var body io.Reader
	if job.body != nil {
		body = bytes.NewReader(job.body)
	}
	req, err := http.NewRequestWithContext(ctx, job.method, job.url, body)
	if err != nil {
		t.breaker.release()
		p.log.Debug("cannot build a mirror request", "target", t.name, "err", err)
		return
	}
	req.Header = job.header
	if job.publish {
		// The target's send, with the headers it gets (its rules may
		// change the event's type): its event's delays count from here.
		p.clock.sent(roleOfTarget(t.name), publishIdentity(job.query, job.header, job.body), p.now().UnixNano())
	}
	resp, err := p.mirrorTransport.RoundTrip(req)
	if err != nil {
		p.candidateFailed(t, errorKind(err), err)
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		kind := "read"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = "timeout"
		}
		p.candidateFailed(t, kind, err)
	case resp.StatusCode >= 500:
		p.candidateFailed(t, "status", nil)
	default:
		t.breaker.success()
		p.m.mirroredReqs.WithLabelValues(t.name).Inc()
	}
}

// spawn runs f on a goroutine the Proxy waits for, unless it is shutting
// down.
func (p *Proxy) spawn(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

func (p *Proxy) candidateFailed(t *target, kind string, err error) {
	if p.base.Err() != nil {
		return // shutting down: not the candidate's fault
	}
	t.breaker.failure()
	p.m.candidateErrors.WithLabelValues(t.name, kind).Inc()
	if t.breaker.open() {
		p.m.circuitState.WithLabelValues(t.name).Set(1)
	}
	p.log.Debug("mirror failed", "target", t.name, "kind", kind, "err", err)
}

// streamMirror is one mirrored event stream: the user's primary stream,
// teed through a scanner into a reconciler per target, and a leg per
// target that reads the same stream from it.
type streamMirror struct {
	p       *Proxy
	route   string // the route's path, for rollback
	path    string // the request path: the channel of the cohorts' reference log
	start   int64  // unix ns when the user's request reached the proxy
	resumed bool   // the user resumed from an event id
	channel string
	bucket  int
	ignore  []string
	legs    []*leg
	ended   atomic.Int64 // unix ns when the primary stream ended; 0 while open
	pending atomic.Int32 // legs still running
}

// leg is the mirror of one stream on one target.
type leg struct {
	t            *target
	rec          *reconciler
	live         atomic.Bool // counting: the target answered and is still streaming
	overflowSeen atomic.Bool
	cancel       context.CancelFunc
}

// mirrorStream starts mirroring the primary stream resp of a selected
// user to every target; resp.Body is replaced by a tee that feeds the
// reconcilers as the bytes pass through to the user.
func (p *Proxy) mirrorStream(d *decision, resp *http.Response) {
	cfg := d.st.cfg
	if resp.Header.Get("Content-Encoding") != "" {
		p.skip(d.st, "encoded_stream") // the bytes we see are not the events
		return
	}
	opened, resumed := p.now().UnixNano(), resumePoint(d.in)
	s := &streamMirror{p: p, route: d.rt.Path, path: channelOf(d.in), start: d.start, resumed: resumed,
		channel: channelLabel(d.rt, d.in), bucket: d.bucket, ignore: cfg.Mirror.IgnoreEvents}
	for _, t := range d.st.targets {
		if !t.breaker.allow() {
			p.m.circuitOpen.WithLabelValues(t.name).Inc()
			p.m.mirrorSkipped.WithLabelValues(t.name, "circuit_open").Inc()
			continue
		}
		if p.nstreams.Add(1) > int64(cfg.Mirror.MaxStreams) {
			t.breaker.release()
			p.nstreams.Add(-1)
			p.m.mirrorSkipped.WithLabelValues(t.name, "streams_full").Inc()
			continue
		}
		ctx, cancel := context.WithCancel(p.base)
		req, err := newMirrorRequest(ctx, d, t, nil)
		if err != nil {
			cancel()
			t.breaker.release()
			p.nstreams.Add(-1)
			continue
		}
		l := &leg{t: t, rec: newReconciler(cfg.Ledger.Settle, cfg.Ledger.Late, cfg.Ledger.Edge, cfg.Mirror.MaxPending), cancel: cancel}
		l.rec.opened(true, opened)
		l.rec.skips = t.book.skipLogFor(s.channel, int64(cfg.Ledger.Settle))
		s.legs = append(s.legs, l)
		t.book.streamEvent(1, 1, 0, 0)
		if resumed {
			t.book.resumedStream()
		}
		p.m.mirroredStreams.WithLabelValues(t.name).Inc()
		p.m.activeStreams.WithLabelValues(t.name).Inc()
		defer func() {
			if !p.spawn(func() { s.run(l, req, cfg) }) {
				s.legDone(l)
			}
		}()
	}
	if len(s.legs) == 0 {
		p.referenceStream(d, resp, nil)
		return
	}
	s.pending.Store(int32(len(s.legs)))
	p.mu.Lock()
	p.streams[s] = struct{}{}
	p.mu.Unlock()
	// The user's stream, scanned once: for the mirror's reconcilers and
	// as its channel's reference.
	ob := p.referenceStream(d, resp, func(_ []byte, id uint64, now int64) { s.primaryEvent(id, now) })
	ob.onEnd = func(now int64) {
		for _, l := range s.legs {
			l.rec.closed(true, now)
		}
		s.ended.Store(now)
	}
}

// channelLabel names a stream's channels in the ledger: the path below
// the route's prefix (/sub/a/b under /sub/: "a/b"), else the channel or
// id query parameter, else the path.
func channelLabel(rt *route, r *http.Request) string {
	if rest := strings.TrimPrefix(r.URL.Path, rt.Path); rest != "" && rt.Path != "/" {
		return rest
	}
	for _, name := range [...]string{"channel", "id"} {
		if v, ok := queryValue(r.URL.RawQuery, name); ok {
			return v
		}
	}
	return r.URL.Path
}

func (s *streamMirror) ignored(typ []byte) bool { return ignoredType(s.ignore, typ) }

// primaryEvent: the user's stream delivered a counted event (ignored
// types are left out by the scanner's owner).
func (s *streamMirror) primaryEvent(id uint64, now int64) {
	for _, l := range s.legs {
		if l.live.Load() {
			l.rec.primary(id, now)
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// run reads the target's copy of the stream until the user's stream ended
// and nothing is owed, the target fails, or the proxy shuts down.
func (s *streamMirror) run(l *leg, req *http.Request, cfg Config) {
	p, t := s.p, l.t
	defer s.legDone(l)
	role := roleOfTarget(t.name)
	start := p.now().UnixNano()
	p.cohortCount(role, "streams")
	if s.resumed {
		p.cohortCount(role, "reconnects")
	}
	resp, err := headerTimeout{p.mirrorTransport, p}.RoundTrip(req)
	if err != nil {
		if req.Context().Err() == nil || errors.Is(err, errTimeout) {
			p.candidateFailed(t, errorKind(err), err)
			t.book.streamEvent(0, 0, 0, 1)
			p.cohortCount(role, "errors")
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !isEventStream(resp.Header.Get("Content-Type")) {
		p.candidateFailed(t, "status", nil)
		t.book.streamEvent(0, 0, 0, 1)
		p.cohortCount(role, "errors")
		return
	}
	t.breaker.success()
	opened := p.now().UnixNano()
	l.rec.opened(false, opened)
	l.live.Store(true)
	cs := p.tracker.open(role, s.path, start, opened, false)
	defer func() { cs.close(p.now().UnixNano()) }()
	sc := newScanner(cfg.Mirror.Identity == IdentityID, func(typ []byte, id uint64) {
		if !s.ignored(typ) {
			now := p.now().UnixNano()
			l.rec.candidate(id, now)
			cs.event(id, now)
		}
	})
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for {
		n, err := resp.Body.Read(*bp)
		if n > 0 {
			_, _ = sc.Write((*bp)[:n])
		}
		if err == nil {
			continue
		}
		l.live.Store(false)
		l.rec.closed(false, p.now().UnixNano())
		if req.Context().Err() == nil { // the target ended or broke the stream, not us
			kind := "read"
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				kind = "stream_ended"
			}
			p.candidateFailed(t, kind, err)
			t.book.streamEvent(0, 0, 0, 1)
			p.cohortCount(role, "errors")
		}
		return
	}
}

// legDone settles a finished leg; the last one unregisters the stream.
func (s *streamMirror) legDone(l *leg) {
	l.live.Store(false)
	l.rec.closed(false, s.p.now().UnixNano())
	l.cancel()
	s.flushLeg(l, settleAll)
	l.t.book.releaseSkipLog(s.channel, l.rec.skips)
	l.t.book.streamEvent(0, -1, 0, 0)
	s.p.m.activeStreams.WithLabelValues(l.t.name).Dec()
	s.p.nstreams.Add(-1)
	if s.pending.Add(-1) == 0 {
		s.p.mu.Lock()
		delete(s.p.streams, s)
		s.p.mu.Unlock()
	}
}

// flush settles what is older than cutoff on every leg and moves the
// findings into the targets' ledgers.
func (s *streamMirror) flush(cutoff int64) {
	for _, l := range s.legs {
		s.flushLeg(l, cutoff)
	}
}

func (s *streamMirror) flushLeg(l *leg, cutoff int64) {
	l.rec.settleUntil(cutoff)
	t, overflow := l.rec.take()
	if overflow && l.overflowSeen.CompareAndSwap(false, true) {
		l.t.book.streamEvent(0, 0, 1, 0)
	}
	if t == (tally{}) {
		return
	}
	l.t.book.apply(s.channel, s.bucket, t)
	s.p.m.addLedger(l.t.name, t)
}

// sweep is the Proxy's one background loop: it settles every open stream
// and closes the mirrors of streams whose user left once nothing is owed
// (or the settle window passed).
func (p *Proxy) sweep() {
	defer p.wg.Done()
	for {
		settle := p.Config().Ledger.Settle
		every := min(max(settle/4, 20*time.Millisecond), 250*time.Millisecond)
		select {
		case <-p.base.Done():
			return
		case <-time.After(every):
		}
		now := p.now().UnixNano()
		p.mu.Lock()
		open := make([]*streamMirror, 0, len(p.streams))
		for s := range p.streams {
			open = append(open, s)
		}
		p.mu.Unlock()
		p.tracker.sweep(now)
		p.clock.prune(now, int64(settle))
		for _, s := range open {
			s.flush(now - int64(settle))
			if ended := s.ended.Load(); ended != 0 {
				for _, l := range s.legs {
					if now-ended > int64(settle) || !l.rec.owed() {
						l.cancel()
					}
				}
			}
		}
		for _, b := range p.allBooks() {
			p.m.circuitState.WithLabelValues(b.name).Set(boolFloat(p.breakerOpen(b.name)))
		}
	}
}

func (p *Proxy) allBooks() []*book {
	p.mu.Lock()
	defer p.mu.Unlock()
	return sortedTargets(p.books)
}

func (p *Proxy) breakerOpen(name string) bool {
	p.mu.Lock()
	b := p.breakers[name]
	p.mu.Unlock()
	return b != nil && b.open()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
