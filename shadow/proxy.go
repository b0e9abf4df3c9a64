package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Proxy is the shadow reverse proxy. Create it with New, serve it as an
// http.Handler, change it live with Reload, stop it with Shutdown.
type Proxy struct {
	log      *slog.Logger
	m        *metrics
	gatherer prometheus.Gatherer
	now      func() time.Time
	started  time.Time

	state atomic.Pointer[state]

	primaryTransport hopTransport // both add HopHeader (loop.go)
	mirrorTransport  hopTransport
	loop             loopGuard

	mu       sync.Mutex
	books    map[string]*book
	breakers map[string]*breaker
	lanes    map[string]*mirrorLanes // per target name; sized at first use
	streams  map[*streamMirror]struct{}
	closing  bool // set by Shutdown: spawn starts nothing more

	nstreams atomic.Int64 // mirrored streams open

	// The rollout step in force and its cohorts' evidence (cohorts.go,
	// refs.go, steps.go); diverted are the candidate's streams open now,
	// which a rollback cuts.
	epoch    atomic.Pointer[epoch]
	tracker  *tracker
	clock    publishClock // when the proxy sent each publish to each world (pubclock.go)
	diverted map[*divertedStream]struct{}
	stepMu   sync.Mutex // one step, rollback or fleet state applied at a time
	applied  int64      // the fleet state's version in force (stepMu)
	fleet    *fleet     // nil without Config.Fleet

	base     context.Context // canceled by Shutdown: ends proxied requests and mirrors
	stop     context.CancelFunc
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
	done     chan struct{}
}

// state is one immutable configuration; Reload swaps it atomically, and
// requests in flight keep the state they started with.
type state struct {
	cfg       Config
	primary   *httputil.ReverseProxy
	candidate *httputil.ReverseProxy // divert
	routes    []*route               // longest path first
	def       *route
	key       keyFunc
	targets   []*target // mirror targets: the candidate, then the baseline
	divert    *target   // the candidate, for divert routes
	trusted   []netip.Prefix
}

type route struct {
	Route
	bp      int          // selected share in basis points
	headers *headerRules // to the candidate and the baseline; nil: as the primary
}

// target is a mirror destination: the candidate or the baseline.
type target struct {
	name    string
	url     *url.URL
	book    *book
	breaker *breaker
	lanes   *mirrorLanes
}

// decision is what ServeHTTP decided for one request; the primary
// proxy's hooks find it in the request context.
type decision struct {
	st       *state
	rt       *route
	in       *http.Request
	start    int64 // unix ns when the request reached the proxy
	bucket   int   // noBucket for a request without a user key
	selected bool
	mirror   bool // mirror once the primary's response is known
	// control: an unselected user of a divert route in the control
	// cohort, whose primary streams are the channels' reference.
	control bool
}

type decisionKey struct{}

// noBucket is the bucket of requests without a user key (selected only
// by routes at 100%); the ledger calls it "nokey".
const noBucket = -1

// ErrClosed is returned by Reload after Shutdown.
var ErrClosed = errors.New("shadow: proxy is shut down")

// New validates cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		log: cfg.Logger, m: m, gatherer: cfg.Gatherer, now: cfg.Now,
		loop:  newLoopGuard(),
		books: map[string]*book{}, breakers: map[string]*breaker{}, lanes: map[string]*mirrorLanes{}, streams: map[*streamMirror]struct{}{},
		diverted: map[*divertedStream]struct{}{},
		done:     make(chan struct{}),
	}
	p.tracker = newTracker(p)
	p.clock.full = m.publishClockFull.Inc
	p.started = p.now()
	p.primaryTransport, p.mirrorTransport = hopTransport{newTransport(), p.loop.id}, hopTransport{newTransport(), p.loop.id}
	p.base, p.stop = context.WithCancel(context.Background())
	st, err := p.build(cfg)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.state.Store(st)
	p.newEpoch(0, "", p.started)
	if cfg.Fleet.Redis != "" {
		if p.fleet, err = newFleet(p, cfg.Fleet); err != nil {
			p.stop()
			return nil, err
		}
	}
	p.wg.Add(1)
	go p.sweep()
	if p.fleet != nil {
		p.fleet.start()
	}
	return p, nil
}

func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   4096,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// build turns a validated config into a state.
func (p *Proxy) build(cfg Config) (*state, error) {
	st := &state{cfg: cfg}
	var err error
	if st.trusted, err = parseTrusted(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	st.key = newKeyFunc(cfg.Key, st.trusted)
	pu, _ := url.Parse(cfg.Primary)
	st.primary = p.newReverseProxy(pu, false, st.trusted)
	bp, _ := basisPoints("", cfg.Percent)
	defHeaders := cfg.CandidateHeaders.compile()
	st.def = &route{Route: Route{Path: "/", Mode: cfg.Mode, MirrorUnsafe: cfg.MirrorUnsafe}, bp: bp, headers: defHeaders}
	for _, r := range cfg.Routes {
		rt := &route{Route: r, headers: defHeaders}
		if r.CandidateHeaders != nil {
			rt.headers = r.CandidateHeaders.compile()
		}
		if rt.Mode == "" {
			rt.Mode = cfg.Mode
		}
		rt.bp = bp
		if r.Percent != nil {
			rt.bp, _ = basisPoints("", *r.Percent)
		}
		st.routes = append(st.routes, rt)
	}
	sort.SliceStable(st.routes, func(i, j int) bool { return len(st.routes[i].Path) > len(st.routes[j].Path) })
	if cfg.Candidate != "" {
		cu, _ := url.Parse(cfg.Candidate)
		st.divert = p.target("candidate", "candidate", cu, cfg.Breaker, cfg.Mirror.MaxInflight)
		st.candidate = p.newReverseProxy(cu, true, st.trusted)
		st.targets = append(st.targets, st.divert)
	}
	if cfg.Baseline != "" {
		bu, _ := url.Parse(cfg.Baseline)
		st.targets = append(st.targets, p.target("baseline", "baseline", bu, cfg.Breaker, cfg.Mirror.MaxInflight))
	}
	return st, nil
}

// target returns the target of a name, keeping its ledger and breaker
// across reloads (a new URL starts with a closed breaker).
func (p *Proxy) target(name, role string, u *url.URL, bc BreakerConfig, maxInflight int) *target {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.books[name]
	if b == nil || b.url != u.String() {
		if b == nil {
			b = newBook(name, role, u.String())
			p.books[name] = b
		}
		b.mu.Lock()
		b.url = u.String()
		b.mu.Unlock()
		p.breakers[name] = newBreaker(bc, p.now)
	}
	br := p.breakers[name]
	br.configure(bc)
	ml := p.lanes[name]
	if ml == nil {
		ml = p.startLanes(maxInflight)
		p.lanes[name] = ml
	}
	return &target{name: name, url: u, book: b, breaker: br, lanes: ml}
}

func (p *Proxy) newReverseProxy(u *url.URL, candidate bool, trusted []netip.Prefix) *httputil.ReverseProxy {
	rp := &httputil.ReverseProxy{
		// FlushInterval 0: ReverseProxy flushes text/event-stream (and
		// responses of unknown length) after every write by itself.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	if !candidate {
		rp.Transport = p.primaryTransport
		rp.Rewrite = func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			setForwarded(pr, trusted)
		}
		rp.ModifyResponse = p.primaryResponse
		rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Debug("primary failed", "path", r.URL.Path, "err", err)
			if d, _ := r.Context().Value(decisionKey{}).(*decision); d != nil && d.reference() && r.Method == http.MethodGet && r.Context().Err() == nil {
				p.cohortCount(cohortPrimary, "streams")
				p.cohortCount(cohortPrimary, "errors")
			}
			w.WriteHeader(http.StatusBadGateway)
		}
		return rp
	}
	rp.Transport = headerTimeout{p.mirrorTransport, p}
	rp.Rewrite = func(pr *httputil.ProxyRequest) {
		d, _ := pr.In.Context().Value(decisionKey{}).(*decision)
		pr.SetURL(u)
		setForwarded(pr, trusted)
		if d != nil {
			pr.Out.URL.Path, pr.Out.URL.RawPath = joinPath(u, candidatePath(d.rt, pr.In.URL.Path)), ""
			d.rt.headers.apply(pr.Out.Header)
			pr.Out.Header.Set(d.st.cfg.Mirror.Header, "candidate")
		}
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		d, _ := resp.Request.Context().Value(decisionKey{}).(*decision)
		if d != nil && d.st.divert != nil {
			if resp.StatusCode >= 500 {
				d.st.divert.breaker.failure()
				p.m.candidateErrors.WithLabelValues("candidate", "status").Inc()
				if d.in.Method == http.MethodGet {
					p.cohortCount(cohortCandidate, "streams")
					p.cohortCount(cohortCandidate, "errors")
				}
			} else {
				d.st.divert.breaker.success()
			}
			if resp.StatusCode == http.StatusOK && isEventStream(resp.Header.Get("Content-Type")) && resp.Header.Get("Content-Encoding") == "" {
				p.divertedStream(d, resp)
			}
		}
		return nil
	}
	rp.ErrorHandler = p.divertFailed
	return rp
}

// divertFailed serves a diverted request from the primary when the
// candidate failed before answering and the request can be replayed.
func (p *Proxy) divertFailed(w http.ResponseWriter, r *http.Request, err error) {
	d, _ := r.Context().Value(decisionKey{}).(*decision)
	kind := errorKind(err)
	p.m.candidateErrors.WithLabelValues("candidate", kind).Inc()
	if d == nil || r.Context().Err() != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodGet {
		p.cohortCount(cohortCandidate, "streams")
		p.cohortCount(cohortCandidate, "errors")
	}
	d.st.divert.breaker.failure()
	if r.Body != nil && r.Body != http.NoBody {
		p.log.Warn("diverted request failed on the candidate", "path", r.URL.Path, "err", err)
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	p.m.divertFallbacks.Inc()
	d.st.primary.ServeHTTP(w, r)
}

// headerTimeout bounds the wait for a candidate's response headers
// without bounding how long its body (an event stream) may last.
type headerTimeout struct {
	rt http.RoundTripper
	p  *Proxy
}

func (h headerTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(h.p.state.Load().cfg.Mirror.Timeout, func() { cancel(errTimeout) })
	resp, err := h.rt.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() && err != nil {
		cancel(nil)
		return nil, fmt.Errorf("%w: %w", errTimeout, err)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

var errTimeout = errors.New("candidate timed out")

type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "connect"
	}
}

// ServeHTTP proxies one request, deciding whether its user is selected.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.looped(w, r) {
		return
	}
	st := p.state.Load()
	rt := st.route(r.URL.Path)
	d := &decision{st: st, rt: rt, in: r, bucket: noBucket, start: p.now().UnixNano()}
	decisionLabel := "primary"
	if rt.Mode != ModeOff && rt.bp > 0 {
		key, ok := st.key(r)
		switch {
		case ok:
			if b := Bucket(st.cfg.Key.Salt, key); selected(b, rt.bp) {
				d.bucket, d.selected = b, true
			} else {
				d.control = rt.Mode == ModeDivert && inControl(b, rt.bp)
			}
		case rt.bp == Buckets:
			d.selected = true // 100% takes everyone, keyless publishers too
		default:
			decisionLabel = "nokey"
		}
		if d.selected {
			decisionLabel = string(rt.Mode)
		}
	}
	p.m.requests.WithLabelValues(rt.Path, decisionLabel).Inc()

	// Proxied requests end when the client leaves or the proxy shuts down.
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), decisionKey{}, d))
	defer cancel()
	stop := context.AfterFunc(p.base, cancel)
	defer stop()
	r = r.WithContext(ctx)
	d.in = r

	switch {
	case !d.selected:
		st.primary.ServeHTTP(w, r)
	case rt.Mode == ModeDivert:
		if !st.divert.breaker.allow() {
			p.m.circuitOpen.WithLabelValues("candidate").Inc()
			st.primary.ServeHTTP(w, r)
			return
		}
		ds := p.registerDiverted(rt.Path, cancel)
		defer p.unregisterDiverted(ds)
		st.candidate.ServeHTTP(w, r)
	case rt.Mode == ModeMirror:
		if hasBody(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			p.mirrorWithBody(d, w, r)
			return
		}
		d.mirror = true // the primary's response says: stream or request
		st.primary.ServeHTTP(w, r)
	default:
		st.primary.ServeHTTP(w, r)
	}
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// mirrorWithBody buffers a bounded body, sends the request to the primary
// and, when allowed, to every mirror target concurrently.
func (p *Proxy) mirrorWithBody(d *decision, w http.ResponseWriter, r *http.Request) {
	st, rt := d.st, d.rt
	if !safeMethod(r.Method) && !rt.MirrorUnsafe {
		p.skip(st, "unsafe_method")
		st.primary.ServeHTTP(w, r)
		return
	}
	var body []byte
	if hasBody(r) {
		limit := st.cfg.Mirror.MaxBody
		buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		rest := r.Body
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), rest), rest}
		if int64(len(buf)) > limit {
			p.skip(st, "body_too_large")
			p.serveUnmirrored(d, w, r, st.targets)
			return
		}
		body = buf
	}
	var skipped []*target
	var queued []*mirrorOrder
	clocked := clockedPublish(st.cfg.Mirror.Identity, r)
	for _, t := range st.targets {
		if o, ok := p.mirrorRequest(d, t, body, clocked); ok {
			queued = append(queued, o)
		} else {
			skipped = append(skipped, t)
		}
	}
	if clocked {
		// The primary's send: its event's delays count from here.
		p.clock.sent(cohortPrimary, publishIdentity(r.URL.RawQuery, r.Header, body), p.now().UnixNano())
	}
	p.serveUnmirrored(d, w, r, skipped)
	// Before the client can read the answer (net/http sends it when this
	// handler returns): a request it sends next comes after this stamp.
	now := time.Now().UnixNano()
	for _, o := range queued {
		o.answered.Store(now)
	}
}

// serveUnmirrored serves a request from the primary; when it is a write
// the route mirrors (a publish) and the primary accepted it, the targets
// it was not sent to record it (unmirrored.go).
func (p *Proxy) serveUnmirrored(d *decision, w http.ResponseWriter, r *http.Request, skipped []*target) {
	if len(skipped) == 0 || safeMethod(r.Method) || !d.rt.MirrorUnsafe {
		d.st.primary.ServeHTTP(w, r)
		return
	}
	at := p.now().UnixNano()
	sw := &statusRecorder{ResponseWriter: w}
	d.st.primary.ServeHTTP(sw, r)
	if sw.status < 200 || sw.status > 299 {
		return
	}
	label := channelLabel(d.rt, d.in)
	for _, t := range skipped {
		t.book.unmirroredPublish(label, at)
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

func (p *Proxy) skip(st *state, reason string) {
	for _, t := range st.targets {
		p.m.mirrorSkipped.WithLabelValues(t.name, reason).Inc()
	}
}

// primaryResponse starts the deferred mirror of a bodiless request once
// the primary answered: an event stream is mirrored for its whole life,
// anything else as one request.
func (p *Proxy) primaryResponse(resp *http.Response) error {
	d, _ := resp.Request.Context().Value(decisionKey{}).(*decision)
	if d == nil || !d.reference() {
		return nil
	}
	stream := resp.StatusCode == http.StatusOK && isEventStream(resp.Header.Get("Content-Type"))
	if resp.StatusCode >= 500 && d.in.Method == http.MethodGet {
		p.cohortCount(cohortPrimary, "streams")
		p.cohortCount(cohortPrimary, "errors")
	}
	if stream && d.mirror {
		p.mirrorStream(d, resp)
		return nil
	}
	if stream {
		p.referenceStream(d, resp, nil)
		return nil
	}
	if !d.mirror {
		return nil
	}
	now := time.Now().UnixNano()
	for _, t := range d.st.targets {
		if o, ok := p.mirrorRequest(d, t, nil, false); ok {
			o.answered.Store(now) // the primary has answered (its headers are here)
		}
	}
	return nil
}

func isEventStream(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

func (st *state) route(path string) *route {
	for _, r := range st.routes {
		if strings.HasPrefix(path, r.Path) {
			return r
		}
	}
	return st.def
}

func candidatePath(rt *route, path string) string {
	if rt == nil || rt.CandidatePath == "" {
		return path
	}
	return rt.CandidatePath + strings.TrimPrefix(path, rt.Path)
}

// joinPath puts path under the base URL's path, as SetURL does.
func joinPath(base *url.URL, path string) string {
	b := strings.TrimSuffix(base.Path, "/")
	if b == "" {
		return path
	}
	return b + "/" + strings.TrimPrefix(path, "/")
}

// Config returns the configuration in use.
func (p *Proxy) Config() Config { return p.state.Load().cfg }

// Reload replaces the configuration. Established connections keep the
// configuration they started with; new requests get the new one. A bad
// config is refused with the reason, and the old one stays.
func (p *Proxy) Reload(cfg Config) error {
	select {
	case <-p.done:
		return ErrClosed
	default:
	}
	old := p.state.Load().cfg
	cfg.Logger, cfg.Registerer, cfg.Gatherer, cfg.Now = old.Logger, old.Registerer, old.Gatherer, old.Now
	cfg.AdminToken = old.AdminToken // who may call the admin API is fixed at New
	cfg.Fleet = old.Fleet           // and so is the fleet
	err := cfg.Validate()
	if err == nil {
		err = p.loop.check(cfg)
	}
	if err != nil {
		p.log.Warn("shadow config refused; keeping the old one", "err", err)
		return err
	}
	cfg = cfg.withDefaults()
	st, err := p.build(cfg)
	if err != nil {
		return err
	}
	p.state.Store(st)
	p.log.Info("shadow config reloaded", "mode", cfg.Mode, "percent", cfg.Percent, "routes", len(cfg.Routes))
	return nil
}

// SetPercent changes the share of selected users of the route with the
// given path ("" or "/" without such a route: the default) live.
func (p *Proxy) SetPercent(path string, percent float64) error {
	cfg := p.Config()
	cfg.Routes = append([]Route(nil), cfg.Routes...)
	if path == "" || path == "/" && !hasRoute(cfg.Routes, "/") {
		cfg.Percent = percent
		return p.Reload(cfg)
	}
	for i := range cfg.Routes {
		if cfg.Routes[i].Path == path {
			pc := percent
			cfg.Routes[i].Percent = &pc
			return p.Reload(cfg)
		}
	}
	return fmt.Errorf("%w: no route with path %q", ErrInvalidConfig, path)
}

func hasRoute(rs []Route, path string) bool {
	for _, r := range rs {
		if r.Path == path {
			return true
		}
	}
	return false
}

// Report returns the reconciliation ledger as it stands.
func (p *Proxy) Report() Report {
	p.mu.Lock()
	books := sortedTargets(p.books)
	p.mu.Unlock()
	cfg := p.Config()
	r := Report{
		Schema: Schema, StartedAt: p.started.UTC(), GeneratedAt: p.now().UTC(),
		SettleMS: cfg.Ledger.Settle.Milliseconds(), LateMS: cfg.Ledger.Late.Milliseconds(),
		EdgeMS: cfg.Ledger.Edge.Milliseconds(), RememberMS: cfg.Ledger.Settle.Milliseconds(), RememberMax: rememberMax,
		Identity: cfg.Mirror.Identity, Targets: []TargetReport{},
	}
	select {
	case <-p.done:
		r.Final = true
	default:
	}
	for _, b := range books {
		r.Targets = append(r.Targets, b.report())
	}
	return r
}

// Shutdown ends every proxied request and mirror, settles every open
// account and writes the ledger file when one is configured. It waits for
// its goroutines until ctx ends; calling it again returns the first
// result.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.shutOnce.Do(func() {
		// Both sides of every mirrored stream close now: what either
		// delivers from here on is at the end edge (attribution.go).
		now := p.now().UnixNano()
		p.mu.Lock()
		p.closing = true
		for s := range p.streams {
			for _, l := range s.legs {
				l.rec.closed(true, now)
				l.rec.closed(false, now)
			}
		}
		p.mu.Unlock()
		p.stop()
		waited := make(chan struct{})
		go func() { p.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			p.shutErr = fmt.Errorf("shadow: shutdown: %w", ctx.Err())
		}
		p.mu.Lock()
		open := make([]*streamMirror, 0, len(p.streams))
		for s := range p.streams {
			open = append(open, s)
		}
		p.mu.Unlock()
		for _, s := range open {
			s.flush(settleAll)
		}
		if p.fleet != nil {
			p.fleet.close()
		}
		p.primaryTransport.CloseIdleConnections()
		p.mirrorTransport.CloseIdleConnections()
		close(p.done)
		if file := p.Config().Ledger.File; file != "" {
			if err := writeReportFile(file, p.Report()); err != nil {
				p.shutErr = errors.Join(p.shutErr, fmt.Errorf("shadow: writing the ledger: %w", err))
			} else {
				p.log.Info("ledger written", "file", file)
			}
		}
	})
	<-p.done
	return p.shutErr
}
