package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/darktime/darktime/internal/ctxwait"
	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/internal/procstat"
	"github.com/darktime/darktime/server/auth"
)

// errStopped ends a connect that raced with the end of the run.
var errStopped = errors.New("swarm stopping")

// ErrUnreachable is returned (wrapped), with the result, when the target
// could not be reached: no client could subscribe, or no publish got a
// connection. What was measured is in the result all the same.
var ErrUnreachable = errors.New("target unreachable")

// session is one client session's claim on a channel: every event with
// first <= seq < end that was published successfully is owed to it.
type session struct {
	ch         int
	first, end int64
	// high is the highest seq received; gaps and fills what the stream
	// skipped (attribution.go); tail why [high+1, end) never came.
	high  int64
	gaps  []gap
	fills []int64
	tail  lossCause
	// lastStream is the index of the session's last connection.
	lastStream int
	// endedAt is when the session ended and lag how far behind its stream
	// ran then (its last event's receive time minus its intended publish
	// time), Unix ns: a tail seq published less than lag before the end
	// may still have been on its way.
	endedAt, lag int64
}

// run is the state shared by the clients and the phases of one Run.
type run struct {
	cfg       Config
	log       *slog.Logger
	prof      *compiledProfile
	signer    *auth.Signer // mints {token} (Config.Token); nil without
	probe     extractProbe // checks the markers on the first events
	eventType string
	asg       assignment
	chanIndex map[string]int

	nextSeq  []atomic.Int64 // per channel: seq of the next publish
	finalSeq []int64        // per channel: nextSeq when publishing ended

	stopCtx  context.Context
	stop     context.CancelFunc
	stopping atomic.Bool
	clients  []*client
	clientWG sync.WaitGroup
	firstWG  sync.WaitGroup
	open     atomic.Int64
	errCount atomic.Int64

	rec    *recorder
	ledger *ledger.Ledger
	pubs   *publishLog

	// stageTimes are when the stages were reached: Tick.Phase (tick.go).
	stageTimes stageTimes

	mu       sync.Mutex // guards the fields below
	sessions []session
	totals   Totals
	attr     Attribution // resumes and hang-ups; lost and extra at the end
	errs     map[string]int64
	samples  map[string]string
}

// totals is an alias used by count's callback for brevity.
type totals = Totals

func (r *run) count(f func(*totals)) {
	r.mu.Lock()
	f(&r.totals)
	r.mu.Unlock()
}

func (r *run) countError(kind string, err error) {
	if errors.Is(err, errStopped) || r.stopping.Load() {
		return
	}
	r.errCount.Add(1)
	r.mu.Lock()
	r.errs[kind]++
	if _, ok := r.samples[kind]; !ok {
		r.samples[kind] = err.Error()
	}
	r.mu.Unlock()
}

func (r *run) connected(sh *recShard, took time.Duration) {
	sh.mu.Lock()
	sh.connects++
	recordMicros(sh.connect, took)
	sh.mu.Unlock()
}

func (r *run) firstAttempt(ok bool) {
	if ok {
		r.count(func(t *totals) { t.Connected++ })
	}
	r.firstWG.Done()
}

// sleep waits d or until the run stops; it reports whether it slept.
func (r *run) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stopCtx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cutAll closes every open connection at once (a reconnect storm).
func (r *run) cutAll() {
	for _, c := range r.clients {
		if c.conn.Load() != nil {
			c.cut.Store(cutStorm)
			c.wake()
		}
	}
}

// slowDown makes this part's share of sd.Clients slow readers: the
// clients whose index in the whole run is among sd.Clients indices spread
// evenly over 0 … Clients-1, so that the parts' shares add up exactly and
// the same clients turn slow whatever the split.
func (r *run) slowDown(sd Slowdown) {
	n, total := int64(sd.Clients), int64(r.cfg.Clients)
	var made int64
	for i, c := range r.clients {
		g := int64(r.asg.ids[i])
		// Chosen: g == floor(j * total / n) for some j < n; the only
		// candidate is j = ceil(g * n / total).
		if j := (g*n + total - 1) / total; j >= n || j*total/n != g {
			continue
		}
		if c.readDelay.Swap(int64(sd.ReadDelay)) == 0 {
			made++
		}
	}
	r.log.Info("slowing clients down", "clients", made, "read_delay", sd.ReadDelay)
	r.count(func(t *totals) { t.SlowClients += made })
}

// shutdown stops every client and waits for them. Safe to call twice.
func (r *run) shutdown() {
	// Only Run's goroutine calls shutdown: snapshot before clients can
	// see stopping and read finalSeq.
	if r.finalSeq == nil {
		r.snapshotFinal()
	}
	if r.stopping.Swap(true) {
		return
	}
	r.stop()
	for _, c := range r.clients {
		c.wake() // each hangs up itself (client.hangUp)
	}
	r.clientWG.Wait()
}

func (r *run) snapshotFinal() {
	r.finalSeq = make([]int64, len(r.nextSeq))
	for i := range r.nextSeq {
		r.finalSeq[i] = r.nextSeq[i].Load()
	}
}

func newRun(cfg Config) (*run, error) {
	asg := assign(cfg)
	prof, err := compileProfile(cfg.Profile, cfg.Distribution.Kind == DistSeveral && cfg.Distribution.PerClient > 1)
	if err != nil {
		return nil, err
	}
	if err := prof.useToken(cfg.Token != nil); err != nil {
		return nil, err
	}
	signer, err := cfg.Token.signer()
	if err != nil {
		return nil, err
	}
	if prof.channelRE != nil && !prof.channelRE.MatchString(asg.names[0]) {
		return nil, fmt.Errorf("%w: channel %q does not match profile %q's channel pattern %s", ErrConfig, asg.names[0], prof.Name, prof.ChannelPattern)
	}
	r := &run{
		cfg: cfg, log: cfg.Logger, prof: prof, signer: signer, eventType: prof.EventType, asg: asg,
		chanIndex: make(map[string]int, len(asg.names)),
		nextSeq:   make([]atomic.Int64, cfg.Channels),
		ledger:    ledger.New(cfg.LedgerWindow),
		pubs:      newPublishLog(cfg.Channels),
		errs:      map[string]int64{},
		samples:   map[string]string{},
	}
	for i, n := range asg.names {
		r.chanIndex[n] = i
	}
	// Clients take the targets in turn, and move on to the next when one
	// fails (failover); each dials its subscribe URL's host, resolved once
	// per host. Endpoints and paths are shared, so that a client costs a
	// few words per target.
	var sources []*net.TCPAddr
	endpoints := map[string]*endpoint{}
	paths := map[string]string{}
	for i, chans := range asg.clients {
		names := make([]string, len(chans))
		for j, ch := range chans {
			names[j] = asg.names[ch]
		}
		c := &client{r: r, idx: i, uid: asg.ids[i], seed: cfg.Seed + uint64(i)*0x9e3779b97f4a7c15}
		c.subs = make([]subscribeURL, len(cfg.Targets))
		v := values{channel: names[0], channels: strings.Join(names, prof.ChannelSeparator), client: asg.ids[i], token: tokenSentinel}
		for k := range cfg.Targets {
			v.target = cfg.Targets[(i+k)%len(cfg.Targets)]
			raw := prof.subscribe.expand(&v)
			su, err := url.Parse(raw)
			if err != nil || su.Scheme != "http" {
				return nil, fmt.Errorf("%w: subscribe URL %q: the swarm's clients speak plain http only", ErrTemplate, raw)
			}
			ep, ok := endpoints[su.Host]
			if !ok {
				hostport := su.Host
				if su.Port() == "" {
					hostport = net.JoinHostPort(su.Hostname(), "80")
				}
				a, err := net.ResolveTCPAddr("tcp", hostport)
				if err != nil {
					return nil, fmt.Errorf("resolve %s: %w", su.Host, err)
				}
				ep = &endpoint{addr: a.String(), host: su.Host}
				endpoints[su.Host] = ep
				if ip4 := a.IP.To4(); i == 0 && k == 0 && ip4 != nil && ip4.IsLoopback() {
					for k := range cfg.Sources {
						sources = append(sources, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+k))})
					}
				}
			}
			path := su.RequestURI()
			if p, ok := paths[path]; ok {
				path = p
			} else {
				paths[path] = path
			}
			c.subs[k] = subscribeURL{ep: ep, path: path, tokenAt: strings.Index(path, tokenSentinel)}
		}
		c.chans = make([]chanState, len(chans))
		for j, ch := range chans {
			c.chans[j].ch = ch
		}
		if len(sources) > 0 {
			c.source = sources[i%len(sources)]
		}
		r.clients = append(r.clients, c)
	}
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	return r, nil
}

// Run executes one swarm run (or this process's part of one): connect the
// clients at the ramp rate, settle, publish for Duration (with churn and
// storms as configured), drain, and account. It always stops by itself;
// when ctx is cancelled it stops early and still returns what it measured,
// with Interrupted set. An error without a result means nothing ran.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r, err := newRun(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkFileLimit(len(r.clients)); err != nil {
		return nil, err
	}
	began := time.Now()
	r.rec = newRecorder(began)
	rssBefore := selfRSSKiB()
	for i, c := range r.clients {
		c.shard = &r.rec.shards[i%recShards]
	}
	defer r.shutdown()

	// The ticker: one Second per second, progress, until the run ends.
	tickDone := make(chan struct{})
	tickStop := make(chan struct{})
	go r.ticker(began, tickStop, tickDone)

	res, runErr := r.phases(ctx, began, rssBefore)
	r.shutdown()
	close(tickStop)
	<-tickDone
	r.finish(res, began)
	if runErr == nil {
		runErr = r.publishUnreachable()
	}
	return res, runErr
}

// publishUnreachable is ErrUnreachable when publishes failed and none
// of them got a connection to the target.
func (r *run) publishUnreachable() error {
	pl := r.pubs
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.info.OK > 0 || pl.info.Failed == 0 || pl.notSent < pl.info.Failed {
		return nil
	}
	return fmt.Errorf("%w: none of the %d publishes answered got a connection to %s", ErrUnreachable, pl.info.Failed, strings.Join(r.cfg.Targets, ", "))
}

// phases runs the run's phases and returns the partial result.
func (r *run) phases(ctx context.Context, began time.Time, rssBefore int64) (*Result, error) {
	cfg := r.cfg
	res := r.newResult(began)
	interrupted := func() (*Result, error) {
		res.Interrupted = true
		return res, ctx.Err()
	}

	// Phase 1: ramp.
	r.log.Info("connecting clients", "clients", len(r.clients), "channels", len(r.asg.mine), "ramp_per_s", cfg.Ramp, "target", cfg.Target, "profile", r.prof.Name)
	gap := time.Duration(float64(time.Second) / cfg.Ramp)
	r.firstWG.Add(len(r.clients))
	r.clientWG.Add(len(r.clients))
	started := 0
	rampStart := time.Now()
	for i, c := range r.clients {
		if wait := time.Until(rampStart.Add(time.Duration(i) * gap)); wait > time.Millisecond {
			if !ctxwait.Sleep(ctx, wait) {
				break
			}
		}
		go c.run()
		started++
	}
	for range len(r.clients) - started {
		r.firstWG.Done()
		r.clientWG.Done()
	}
	if !ctxwait.Group(ctx, &r.firstWG) {
		return interrupted()
	}
	r.mu.Lock()
	connected := r.totals.Connected
	r.mu.Unlock()
	r.stage(StageConnected)
	r.log.Info("clients connected", "connected", connected, "of", len(r.clients), "seconds", time.Since(rampStart).Seconds())
	if connected == 0 && len(r.clients) > 0 {
		r.mu.Lock()
		sample := ""
		for _, s := range r.samples {
			sample = s
		}
		r.mu.Unlock()
		return res, fmt.Errorf("%w: no client could subscribe to %s: %s", ErrUnreachable, cfg.Target, sample)
	}

	// Phase 2: settle, then the idle memory per connection.
	if !ctxwait.Sleep(ctx, cfg.Settle) {
		return interrupted()
	}
	rssIdle := selfRSSKiB()
	idle := r.open.Load()
	resources := Resources{Part: cfg.Part.Index, RSSIdleKiB: rssIdle, IdleConnections: idle}
	if idle > 0 {
		resources.RSSPerConnKiB = float64(rssIdle-rssBefore) / float64(idle)
	}

	// Phase 3: publish, at PublishAt when it is still ahead, with storms
	// and slowdowns on schedule.
	if wait := time.Until(cfg.PublishAt); !cfg.PublishAt.IsZero() && wait > 0 {
		r.log.Info("waiting for the publish start", "at", cfg.PublishAt.Format(time.RFC3339Nano))
		if !ctxwait.Sleep(ctx, wait) {
			return interrupted()
		}
	}
	cpuStart := procstat.Self()
	eventsStart := r.eventsSoFar()
	start := time.Now()
	res.PublishStarted = start
	if cfg.OnPublish != nil {
		cfg.OnPublish(start)
	}
	r.stage(StagePublish)
	windowDone := make(chan struct{})
	windowEnd := time.AfterFunc(cfg.Duration, func() { r.stage(StageWindow); close(windowDone) })
	var timers []*time.Timer
	for _, at := range cfg.Storms {
		timers = append(timers, time.AfterFunc(time.Until(start.Add(at)), func() {
			r.log.Info("reconnect storm: cutting every connection", "open", r.open.Load())
			r.cutAll()
		}))
	}
	for _, sd := range cfg.Slowdowns {
		timers = append(timers, time.AfterFunc(time.Until(start.Add(sd.At)), func() { r.slowDown(sd) }))
	}
	share := float64(len(r.asg.mine)) / float64(cfg.Channels)
	r.log.Info("publishing", "rate", cfg.Rate*share, "pacing", cfg.Pacing.Kind, "phases", len(cfg.Phases), "duration", cfg.Duration)
	r.publish(ctx, share)
	if !windowEnd.Stop() {
		<-windowDone // it fired: its stage comes before StagePublished
	}
	for _, t := range timers {
		t.Stop()
	}
	r.stage(StagePublished)
	r.snapshotFinal()
	if cfg.AfterPublish != nil && ctx.Err() == nil {
		r.pubs.mu.Lock()
		p := Published{Info: r.pubs.info, EventsOK: r.pubs.eventsOK, Received: r.eventsSoFar}
		r.pubs.mu.Unlock()
		cfg.AfterPublish(ctx, p)
	}

	// Phase 4: drain; cut short (but not skipped) when interrupted.
	if ctx.Err() != nil {
		time.Sleep(min(cfg.Drain, 500*time.Millisecond))
	} else {
		ctxwait.Sleep(ctx, cfg.Drain)
	}
	cpu := procstat.Self() - cpuStart
	if ctx.Err() == nil {
		r.stage(StageDrained)
	}
	resources.CPUSeconds = cpu.Seconds()
	resources.EventsDuringLoad = r.eventsSoFar() - eventsStart
	if resources.EventsDuringLoad > 0 {
		resources.CPUMicrosPerEvt = cpu.Seconds() * 1e6 / float64(resources.EventsDuringLoad)
	}
	res.Resources = []Resources{resources}
	if ctx.Err() != nil {
		return interrupted()
	}
	return res, nil
}

// eventsSoFar counts measured events, including the current interval.
func (r *run) eventsSoFar() int64 {
	var n int64
	for i := range r.rec.shards {
		s := &r.rec.shards[i]
		s.mu.Lock()
		n += s.c.Events
		s.mu.Unlock()
	}
	r.mu.Lock()
	n += r.rec.counts.Events
	r.mu.Unlock()
	return n
}

func (r *run) ticker(began time.Time, stop, done chan struct{}) {
	defer close(done)
	// Ticks on whole wall-clock seconds, so that parts of one run line up.
	next := time.Now().Truncate(time.Second).Add(time.Second)
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	var p99 float64
	for {
		select {
		case <-stop:
			r.tick(time.Now(), began, &p99)
			return
		case <-t.C:
		}
		r.tick(next, began, &p99)
		next = next.Add(time.Second)
		t.Reset(time.Until(next))
	}
}

func (r *run) tick(now, began time.Time, p99 *float64) {
	errs := r.errCount.Swap(0)
	r.mu.Lock()
	sec, hists := r.rec.tick(now, r.open.Load(), errs)
	total := r.rec.total[HistDelivery]
	*p99 = float64(total.ValueAtQuantile(99)) / 1e3
	clients := r.totals
	r.mu.Unlock()
	if r.cfg.Progress != nil {
		progressLine(r.cfg.Progress, now.Sub(began), sec, *p99, errs)
	}
	if r.cfg.Tick != nil {
		clients.Planned = int64(len(r.clients))
		r.cfg.Tick(Tick{At: now, Second: sec, Phase: r.phaseAt(now), Clients: clients, Histograms: hists})
	}
}

func (r *run) newResult(began time.Time) *Result {
	cfg := r.cfg
	host, _ := os.Hostname()
	res := &Result{
		Schema: Schema, RunID: cfg.RunID, Profile: r.prof.Name, Target: cfg.Target, Started: began,
		Parts: []PartInfo{{Part: cfg.Part, Host: host, PID: os.Getpid()}},
		Config: ConfigEcho{
			Clients: cfg.Clients, Channels: cfg.Channels, Distribution: cfg.Distribution, ChannelPrefix: cfg.ChannelPrefix,
			RampPerS: cfg.Ramp, RateEventsPerS: cfg.Rate, Pacing: cfg.Pacing, SizeBytes: cfg.Size,
			DurationSeconds: cfg.Duration.Seconds(), SettleSeconds: cfg.Settle.Seconds(), DrainSeconds: cfg.Drain.Seconds(),
			Churn: cfg.Churn, LedgerWindowS: cfg.LedgerWindow.Seconds(), Seed: cfg.Seed, ProfileDetail: cfg.Profile,
			RetrySeconds: cfg.DefaultRetry.Seconds(), LateAfter: cfg.LateAfter,
			Token: cfg.Token.echo(r.signer), MaxRate: cfg.MaxRate, Publishers: cfg.Publishers, Events: cfg.Events,
		},
	}
	for _, s := range cfg.Storms {
		res.Config.StormsSeconds = append(res.Config.StormsSeconds, s.Seconds())
	}
	var at time.Duration
	for _, p := range cfg.Phases {
		e := PhaseEcho{Name: p.Name, StartSeconds: at.Seconds(), DurationSeconds: p.Duration.Seconds(), RateEventsPerS: p.Rate}
		if p.Hot {
			hc := p.HotChannel
			e.HotChannel = &hc
		}
		res.Config.Phases = append(res.Config.Phases, e)
		at += p.Duration
	}
	for _, s := range cfg.Slowdowns {
		res.Config.Slowdowns = append(res.Config.Slowdowns, SlowdownEcho{AtSeconds: s.At.Seconds(), Clients: s.Clients, ReadDelaySeconds: s.ReadDelay.Seconds()})
	}
	return res
}

// finish credits the ledger and fills the result from the recorder.
func (r *run) finish(res *Result, began time.Time) {
	r.creditLedger()
	res.Attribution = r.attribute()
	res.Ended = time.Now()
	res.Ledger = r.ledger
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Clients = r.totals
	res.Clients.Planned = int64(len(r.clients))
	res.Clients.Connects = r.rec.connects
	res.Events = r.rec.counts
	res.ExtractFailure = r.extractFailure()
	res.Errors = r.errs
	if len(r.samples) > 0 {
		res.ErrorSamples = r.samples
	}
	r.pubs.mu.Lock()
	res.Publish = r.pubs.info
	r.pubs.mu.Unlock()
	if len(res.Publish.Errors) == 0 {
		res.Publish.Errors = nil
	}
	res.Histograms = map[string]string{}
	res.Summary = map[string]Percentiles{}
	for name, h := range r.rec.total {
		res.Histograms[name] = encodeHistogram(h)
		res.Summary[name] = percentiles(h)
	}
	res.Series = r.rec.series
	if res.Resources == nil {
		res.Resources = []Resources{{Part: r.cfg.Part.Index}}
	}
}

// creditLedger credits, for every successful publish, one delivery per
// client session that was subscribed to its channel when its seq was
// assigned (and had not yet decided to leave), in the window of its
// intended send time.
func (r *run) creditLedger() {
	r.mu.Lock()
	sessions := r.sessions
	r.mu.Unlock()
	byChan := map[int][]session{}
	for _, s := range sessions {
		byChan[s.ch] = append(byChan[s.ch], s)
	}
	pl := r.pubs
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for ch, list := range byChan {
		ts := pl.ts[ch]
		n := int64(len(ts))
		diff := make([]int64, n+1)
		for _, s := range list {
			first, end := min(s.first, n), min(s.end, n)
			if first < end {
				diff[first]++
				diff[end]--
			}
		}
		var live int64
		for seq := range n {
			live += diff[seq]
			if live > 0 && pl.ok(ch, seq) {
				r.ledger.Credit(r.asg.names[ch], time.Unix(0, ts[seq]), live)
			}
		}
	}
}

// selfRSSKiB is this process's resident memory (0 when /proc cannot say).
func selfRSSKiB() int64 {
	s, _ := procstat.Process(os.Getpid())
	return s.RSSKiB
}

// checkFileLimit fails early, with advice, when the open-file limit cannot
// hold the clients.
func checkFileLimit(clients int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	const spare = 128 // publisher connections, files, stdio
	if need := uint64(clients) + spare; lim.Cur < need {
		return fmt.Errorf("%w: %d clients need %d open files but the limit is %d (hard %d): raise it with `ulimit -n %d`, use fewer clients or --procs",
			ErrConfig, clients, need, lim.Cur, lim.Max, min(need, lim.Max))
	}
	return nil
}

// check validates a config with its defaults filled in and compiles its
// profile, without building a run.
func (c Config) check() error {
	if err := c.validate(); err != nil {
		return err
	}
	prof, err := compileProfile(c.Profile, c.Distribution.Kind == DistSeveral && c.Distribution.PerClient > 1)
	if err != nil {
		return err
	}
	if err := prof.useToken(c.Token != nil); err != nil {
		return err
	}
	_, err = c.Token.signer()
	return err
}

// Check reports whether cfg would run, without running it: the config
// errors (ErrConfig) and template errors (ErrTemplate) Run would return.
// Callers that split a run (processes, agents) check once, up front.
func Check(cfg Config) error { return cfg.withDefaults().check() }
