package shadow

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
)

// What the proxy observes of the streams of each cohort (LEDGER.md,
// "Cohorts"). Only observed streams are scanned: every other primary
// stream stays a plain ReverseProxy copy.

// inControl reports whether an unselected bucket is in the control cohort
// of a divert route selecting the buckets below bp: as many users as the
// candidate's, from the other end of the bucket space (all unselected
// users once bp reaches half).
func inControl(b, bp int) bool { return b >= max(Buckets-bp, bp) }

// reference reports whether the request's primary streams are a
// reference of their channel: a mirrored user's, or a control user's.
func (d *decision) reference() bool { return d.mirror || d.control }

// channelOf is the channel of the reference log: the request path.
func channelOf(r *http.Request) string { return r.URL.Path }

func ignoredType(patterns []string, typ []byte) bool {
	for _, pat := range patterns {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if bytes.HasPrefix(typ, []byte(prefix)) {
				return true
			}
		} else if string(typ) == pat {
			return true
		}
	}
	return false
}

// observedBody scans a stream on its way to the user for a cohort: each
// event is sighted on cs (and given to also, a mirror's primary side).
// The stream ending or breaking while the user is still there is the
// upstream's error (an event stream is not meant to end under a
// listener), as a mirror's stream_ended is.
type observedBody struct {
	io.ReadCloser
	p      *Proxy
	ctx    context.Context
	role   cohortRole
	cs     *cstream
	sc     *scanner
	failed bool
	once   sync.Once
	onEnd  func(now int64)
}

func (p *Proxy) observe(d *decision, resp *http.Response, role cohortRole, divert bool, also func(typ []byte, id uint64, now int64)) *observedBody {
	cfg := d.st.cfg
	now := p.now().UnixNano()
	p.cohortCount(role, "streams")
	if resumePoint(d.in) {
		p.cohortCount(role, "reconnects")
	}
	b := &observedBody{ReadCloser: resp.Body, p: p, ctx: resp.Request.Context(), role: role,
		cs: p.tracker.open(role, channelOf(d.in), d.start, now, divert)}
	ignore := cfg.Mirror.IgnoreEvents
	b.sc = newScanner(cfg.Mirror.Identity == IdentityID, func(typ []byte, id uint64) {
		if ignoredType(ignore, typ) {
			return
		}
		now := p.now().UnixNano()
		if also != nil {
			also(typ, id, now)
		}
		b.cs.event(id, now)
	})
	resp.Body = b
	return b
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		_, _ = b.sc.Write(p[:n])
	}
	if err != nil && b.ctx.Err() == nil && !b.failed {
		b.failed = true // the upstream broke the stream, not the user
		b.p.cohortCount(b.role, "errors")
	}
	return n, err
}

func (b *observedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		now := b.p.now().UnixNano()
		b.cs.close(now)
		if b.onEnd != nil {
			b.onEnd(now)
		}
	})
	return err
}

// referenceStream observes a reference primary stream; also, when set,
// gets its events too (the mirror's primary side).
func (p *Proxy) referenceStream(d *decision, resp *http.Response, also func(typ []byte, id uint64, now int64)) *observedBody {
	if resp.Header.Get("Content-Encoding") != "" {
		return nil // the bytes we see are not the events
	}
	return p.observe(d, resp, cohortPrimary, false, also)
}

// divertedStream observes a diverted stream: the candidate cohort's,
// reconciled against its channel's reference log.
func (p *Proxy) divertedStream(d *decision, resp *http.Response) {
	p.observe(d, resp, cohortCandidate, true, nil)
}

// divertedStream is one diverted request in flight, for rollback.
type divertedStream struct {
	route  string
	cancel context.CancelFunc
}

func (p *Proxy) registerDiverted(route string, cancel context.CancelFunc) *divertedStream {
	ds := &divertedStream{route: route, cancel: cancel}
	p.mu.Lock()
	p.diverted[ds] = struct{}{}
	p.mu.Unlock()
	return ds
}

func (p *Proxy) unregisterDiverted(ds *divertedStream) {
	p.mu.Lock()
	delete(p.diverted, ds)
	p.mu.Unlock()
}

// cutCandidates ends every diverted request and every mirror leg of the
// route with that path (every route's when route is nil); the primary's
// streams go on. It returns how many it cut.
func (p *Proxy) cutCandidates(route *string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	match := func(path string) bool { return route == nil || path == *route || *route == "" && path == "/" }
	for ds := range p.diverted {
		if match(ds.route) {
			ds.cancel()
			n++
		}
	}
	for s := range p.streams {
		if match(s.route) {
			for _, l := range s.legs {
				l.cancel()
				n++
			}
		}
	}
	return n
}
