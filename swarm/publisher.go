package swarm

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/darktime/darktime/internal/ctxwait"
)

// publishTimeout bounds one publish request.
const publishTimeout = 10 * time.Second

// maxPublishErrorKinds bounds the distinct publish error messages kept.
const maxPublishErrorKinds = 16

// publishLog is what the publisher sent: per channel, by seq, the intended
// send time and the outcome.
type publishLog struct {
	mu     sync.Mutex
	rr     int          // round-robin position over the part's channels
	hotRR  int          // round-robin position of hot publishes over the targets
	down   []time.Time  // per target: skipped until then after a connection error
	ts     [][]int64    // channel -> seq -> intended send time (Unix ns)
	status [][]pubState // channel -> seq -> outcome
	// sent and answered are, per channel and seq, when the publish left
	// and when its 2xx answer was back (monotonic ns since epoch, stamped by
	// orderClock; 0: not yet, or failed). Only a publish answered before a
	// later one was sent has an order the server must keep (orderedBefore).
	epoch    time.Time
	sent     [][]int64
	answered [][]int64
	info     PublishInfo
	// refs lists the events of every request in the order they were
	// built; a request's fragment names its first ref and how many.
	refs     []eventRef
	requests int64 // requests built
	eventsOK int64 // events of the requests answered 2xx
	notSent  int64 // failed requests that never reached the target
}

// eventRef is one event of a request: its channel and seq.
type eventRef struct {
	ch  int32
	seq int32
}

// newPublishLog is the log of a run with channels channels (indices 0 to
// channels-1).
func newPublishLog(channels int) *publishLog {
	return &publishLog{
		ts: make([][]int64, channels), status: make([][]pubState, channels),
		epoch: time.Now(), sent: make([][]int64, channels), answered: make([][]int64, channels),
		info: PublishInfo{Errors: map[string]int64{}},
	}
}

type pubState uint8

const (
	pubPending pubState = iota
	pubOK
	// pubNotSent: the request never reached the server (no connection).
	pubNotSent
	// pubRefused: the server answered that it did not accept the event
	// (4xx, 503): an event it delivers anyway is a defect of the server.
	pubRefused
	// pubUnknown: the request left but no answer says whether the event
	// was taken (a timeout, a reset after sending, 500, 502, 504): the
	// event may be delivered.
	pubUnknown
)

// failureState classifies a failed publish by what its answer proves.
func failureState(code uint16, errMsg string) pubState {
	switch {
	case code == 0 && dialFailure(errMsg):
		return pubNotSent
	case code == 503 || (code >= 400 && code < 500):
		return pubRefused
	}
	return pubUnknown
}

// dialFailure says a publish failed before its request was sent.
func dialFailure(msg string) bool {
	return strings.Contains(msg, "dial ") || strings.Contains(msg, "connection refused")
}

func (l *publishLog) ok(ch int, seq int64) bool {
	s := l.status[ch]
	return seq < int64(len(s)) && s[seq] == pubOK
}

// orderedBefore reports whether the publish of seq on channel ch was
// answered before the publish of later was sent: only then must a server
// deliver seq first. Publishes in flight together (the publisher keeps
// many requests going, to several targets) have no order until the server
// gives them one, which may differ from the order of their seqs: when a
// stalled node answers late, the next seq, sent to another node, overtakes
// it everywhere.
func (l *publishLog) orderedBefore(ch int, seq, later int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.orderedBeforeLocked(ch, seq, later)
}

// now is the time on the clock of sent and answered.
func (l *publishLog) now() int64 { return int64(time.Since(l.epoch)) }

// answeredBefore reports whether the publish of seq on channel ch had
// its 2xx answer before at (publishLog clock).
func (l *publishLog) answeredBefore(ch int, seq, at int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	answered := l.answered[ch]
	return seq >= 0 && seq < int64(len(answered)) && answered[seq] != 0 && answered[seq] < at
}

// sentBeforeLocked says seq's publish was sent before at (publishLog
// clock); l.mu held.
func (l *publishLog) sentBeforeLocked(ch int, seq, at int64) bool {
	sent := l.sent[ch]
	return seq >= 0 && seq < int64(len(sent)) && sent[seq] != 0 && sent[seq] < at
}

// orderedBeforeLocked is orderedBefore with l.mu held.
func (l *publishLog) orderedBeforeLocked(ch int, seq, later int64) bool {
	answered, sent := l.answered[ch], l.sent[ch]
	if seq < 0 || seq >= int64(len(answered)) || later >= int64(len(sent)) {
		return false
	}
	return answered[seq] != 0 && answered[seq] < sent[later]
}

// stamp records the time now in times[ch][seq] for the n events of a
// request from refs[first] on.
func (l *publishLog) stamp(times [][]int64, first, n int) {
	now := int64(time.Since(l.epoch))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.requestRefs(first, n) {
		if s := times[int(e.ch)]; int(e.seq) < len(s) {
			s[e.seq] = now
		}
	}
}

// requestRefs is the events of a request, nil when the fragment does not
// name refs (l.mu held).
func (l *publishLog) requestRefs(first, n int) []eventRef {
	if first < 0 || n < 1 || first+n > len(l.refs) {
		return nil
	}
	return l.refs[first : first+n]
}

// orderClock stamps every publish with when it left and when its 2xx
// answer came back, on the request's own goroutine: vegeta hands the
// result over later, and by the time a later publish's event arrives the
// answer of every publish before it must be known.
type orderClock struct {
	next http.RoundTripper
	pl   *publishLog
}

func (o orderClock) RoundTrip(req *http.Request) (*http.Response, error) {
	first, n, _, ok := fromFragment("#" + req.URL.Fragment)
	if ok {
		o.pl.stamp(o.pl.sent, first, n)
	}
	resp, err := o.next.RoundTrip(req)
	if ok && err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		o.pl.stamp(o.pl.answered, first, n)
	}
	return resp, err
}

// retryUnavailable sends a request answered 503 again after pause, as
// long as the request's context lasts: the target said it took nothing.
// vegeta's bodies are byte readers, so that GetBody gives the body again.
type retryUnavailable struct {
	next  http.RoundTripper
	pause time.Duration
	pl    *publishLog
}

func (t retryUnavailable) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := t.next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || req.GetBody == nil {
			return resp, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if !ctxwait.Sleep(req.Context(), t.pause) {
			return nil, req.Context().Err()
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = body
		t.pl.mu.Lock()
		t.pl.info.Retried++
		t.pl.mu.Unlock()
	}
}

// stampingPacer wraps a vegeta pacer and hands the intended send time of
// every hit it releases to the targeter, in order. vegeta calls Pace once
// per hit before releasing it, so the k-th targeter call finds the k-th
// hit's intended time, which has passed by then: a publish stamped with it
// carries the delay of a slow server or a backed-up attacker
// (no coordinated omission).
type stampingPacer struct {
	inner  vegeta.Pacer
	phased *phasedPacer // the same pacer as inner, when the run has phases
	began  time.Time
	stamps chan stamp
	// requests, when set, stops the attack after that many hits
	// (Config.Events); maxRate leaves the intended time to the targeter
	// (at 0): without a schedule, a request is due when it is built.
	requests uint64
	maxRate  bool
}

// stamp is what the pacer tells the targeter about one hit.
type stamp struct {
	at  int64 // intended send time, Unix ns
	hot bool  // the hit goes to channel ch (a hot phase), not round robin
	ch  int
}

func (p *stampingPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if p.requests > 0 && hits >= p.requests {
		return 0, true
	}
	wait, stop := p.inner.Pace(elapsed, hits)
	if stop {
		return wait, stop
	}
	if p.maxRate {
		p.stamps <- stamp{}
		return 0, false
	}
	at := elapsed + wait
	if wait <= 0 {
		// Behind schedule: find when the hit was due.
		lo, hi := time.Duration(0), elapsed
		for hi-lo > time.Microsecond {
			mid := lo + (hi-lo)/2
			if w, _ := p.inner.Pace(mid, hits); w <= 0 {
				hi = mid
			} else {
				lo = mid
			}
		}
		at = hi
	}
	st := stamp{at: p.began.Add(at).UnixNano()}
	if p.phased != nil {
		st.ch, st.hot = p.phased.hot(hits)
	}
	p.stamps <- st
	return wait, false
}

func (p *stampingPacer) Rate(elapsed time.Duration) float64 { return p.inner.Rate(elapsed) }

// connDownFor is how long the publisher leaves a target alone after a
// publish to it failed with a connection error.
const connDownFor = time.Second

// publish runs the vegeta attack for Duration (or until Config.Events):
// round-robin over the part's channels (and, in a hot phase, the hot
// channel's share), each request filled from the publish template with
// the channel's next seq and the intended send time, once per event of
// its batch.
func (r *run) publish(ctx context.Context, share float64) {
	cfg := r.cfg
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: publishTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1000,
	}
	defer transport.CloseIdleConnections()
	pl := r.pubs
	var rt http.RoundTripper = transport
	if cfg.RetryUnavailable > 0 {
		rt = retryUnavailable{next: transport, pause: cfg.RetryUnavailable, pl: pl}
	}
	opts := []func(*vegeta.Attacker){vegeta.Client(&http.Client{
		Timeout:   publishTimeout,
		Transport: orderClock{next: rt, pl: pl},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}), vegeta.MaxWorkers(10_000)}
	if n := uint64(cfg.Publishers); n > 0 {
		opts = append(opts, vegeta.Workers(n), vegeta.MaxWorkers(n))
	}
	atk := vegeta.NewAttacker(opts...)
	pl.down = make([]time.Time, len(cfg.Targets))
	pacer := &stampingPacer{inner: cfg.pacer(share), stamps: make(chan stamp, 4096), maxRate: cfg.MaxRate}
	if len(cfg.Phases) > 0 {
		pacer.phased = cfg.phasedPacer(share, func(ch int) bool { return ch%cfg.Part.Count == cfg.Part.Index })
		pacer.inner = pacer.phased
	}
	events := r.partEvents(share)
	if events > 0 {
		pacer.requests = uint64((events + int64(cfg.batch()) - 1) / int64(cfg.batch()))
	}
	targeter := func(t *vegeta.Target) error {
		r.buildRequest(t, <-pacer.stamps, events)
		return nil
	}

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-done:
		}
	}()
	pacer.began = time.Now()
	for res := range atk.Attack(targeter, pacer, cfg.Duration, "swarm") {
		r.publishResult(res)
	}
	close(done)
	<-stopped
}

// partEvents is this part's share of Config.Events (0: no limit).
func (r *run) partEvents(share float64) int64 {
	if r.cfg.Events == 0 {
		return 0
	}
	return max(int64(float64(r.cfg.Events)*share), 1)
}

// buildRequest fills t with the next request: its batch of events (one
// without batches), each on the next channel with that channel's next
// seq, stamped with the request's intended send time. events is the
// part's limit (0: none): the last request carries what is left of it.
func (r *run) buildRequest(t *vegeta.Target, st stamp, events int64) {
	cfg := r.cfg
	pl := r.pubs
	ts := st.at
	if ts == 0 {
		ts = time.Now().UnixNano()
	}
	n := int64(cfg.batch())
	pl.mu.Lock()
	if events > 0 {
		n = max(min(n, events-pl.requests*n), 1)
	}
	pl.requests++
	first := len(pl.refs)
	var ti int
	vs := make([]values, n)
	for k := range vs {
		var ch int
		if st.hot {
			ch = st.ch
			if k == 0 {
				ti = pl.hotRR % len(cfg.Targets)
				pl.hotRR++
			}
		} else {
			ch = r.asg.mine[pl.rr%len(r.asg.mine)]
			if k == 0 {
				// Every channel visits every target in turn, whatever the counts.
				ti = (pl.rr + pl.rr/len(r.asg.mine)) % len(cfg.Targets)
			}
			pl.rr++
		}
		seq := r.nextSeq[ch].Load()
		pl.ts[ch] = append(pl.ts[ch], ts)
		pl.status[ch] = append(pl.status[ch], pubPending)
		pl.sent[ch] = append(pl.sent[ch], 0)
		pl.answered[ch] = append(pl.answered[ch], 0)
		pl.refs = append(pl.refs, eventRef{ch: int32(ch), seq: int32(seq)})
		// Clients snapshot nextSeq when they subscribe: bump it only once
		// the seq is recorded, and before the request leaves.
		r.nextSeq[ch].Store(seq + 1)
		vs[k] = values{channel: r.asg.names[ch], seq: seq, ts: ts}
	}
	pl.info.Attempted++
	ti = pl.upTarget(ti, time.Now())
	pl.mu.Unlock()
	payload := max(0, cfg.Size-r.prof.bodyFixed)
	for k := range vs {
		vs[k].target, vs[k].payload = cfg.Targets[ti], payload
	}
	t.Method = r.prof.Publish.Method
	// The fragment never goes on the wire; it lets the results loop match
	// vegeta's Result (which echoes the URL) to the request's events.
	t.URL = r.prof.pubURL.expand(&vs[0]) + "#" + strconv.Itoa(first) + "." + strconv.Itoa(len(vs)) + "." + strconv.Itoa(ti)
	t.Body = r.prof.appendBody(make([]byte, 0, len(vs)*(cfg.Size+64)), vs)
	if len(r.prof.pubHeaders) > 0 {
		t.Header = make(http.Header, len(r.prof.pubHeaders))
		for _, h := range r.prof.pubHeaders {
			t.Header.Add(h.name, h.value.expand(&vs[0]))
		}
	}
}

// appendBody appends the body of a request carrying the events vs: the
// body template filled once, or, with batches, once per event, joined and
// wrapped.
func (c *compiledProfile) appendBody(dst []byte, vs []values) []byte {
	if c.Publish.Batch == 0 {
		return c.pubBody.append(dst, &vs[0])
	}
	dst = append(dst, c.batchHead...)
	for k := range vs {
		if k > 0 {
			dst = append(dst, c.batchSep...)
		}
		dst = c.pubBody.append(dst, &vs[k])
	}
	return append(dst, c.batchTail...)
}

// publishResult accounts one answered (or failed) request: the outcome of
// each of its events, the error kinds, the publish latency.
func (r *run) publishResult(res *vegeta.Result) {
	pl := r.pubs
	first, n, ti, ok := fromFragment(res.URL)
	success := res.Code >= 200 && res.Code < 300 && res.Error == ""
	pl.mu.Lock()
	if ok && !success && ti < len(pl.down) && connectionFailure(res.Error) {
		pl.down[ti] = time.Now().Add(connDownFor)
	}
	var intended int64
	refs := pl.requestRefs(first, n)
	state := pubOK
	if !success {
		state = failureState(res.Code, res.Error)
	}
	for _, e := range refs {
		ch, seq := int(e.ch), int64(e.seq)
		if seq < int64(len(pl.ts[ch])) {
			intended = pl.ts[ch][seq]
			pl.status[ch][seq] = state
		}
	}
	batched := r.prof.Publish.Batch > 0
	if success {
		pl.info.OK++
		pl.eventsOK += int64(len(refs))
		if batched {
			pl.info.EventsOK += int64(len(refs))
		}
	} else {
		pl.info.Failed++
		if state == pubNotSent {
			pl.notSent++
		}
		if batched {
			pl.info.EventsFailed += int64(len(refs))
		}
		msg := res.Error
		if msg == "" {
			msg = "status " + strconv.Itoa(int(res.Code))
		} else {
			msg = strings.ReplaceAll(msg, res.URL, "{publish URL}")
		}
		if _, seen := pl.info.Errors[msg]; !seen && len(pl.info.Errors) >= maxPublishErrorKinds {
			msg = "other"
		}
		pl.info.Errors[msg]++
	}
	pl.mu.Unlock()
	lat := res.Latency
	if intended != 0 {
		lat = res.Timestamp.Add(res.Latency).Sub(time.Unix(0, intended))
	}
	r.rec.publishDone(success, lat)
}

// upTarget is target i, or the next one that is not left alone after a
// connection error (i when every target is).
func (l *publishLog) upTarget(i int, now time.Time) int {
	for k := range len(l.down) {
		if j := (i + k) % len(l.down); !now.Before(l.down[j]) {
			return j
		}
	}
	return i
}

// connectionFailure says a publish failed to reach its target (refused,
// reset, unreachable, closed): vegeta hands errors over as text.
func connectionFailure(msg string) bool {
	for _, s := range []string{"dial ", "connection refused", "connection reset", "broken pipe", "no route to host",
		"network is unreachable", "server closed idle connection", "EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// fromFragment reads back "#first.n.target" from a publish URL: the
// request's first event in publishLog.refs, its events and its target.
func fromFragment(u string) (first, n, target int, ok bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return 0, 0, 0, false
	}
	parts := strings.Split(u[i+1:], ".")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	f, err1 := strconv.Atoi(parts[0])
	c, err2 := strconv.Atoi(parts[1])
	t, err3 := strconv.Atoi(parts[2])
	return f, c, t, err1 == nil && err2 == nil && err3 == nil && f >= 0 && c >= 1 && t >= 0
}
