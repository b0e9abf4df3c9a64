package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/yamlsafe"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/shadow"
	"github.com/darktime/darktime/swarm"
	"github.com/darktime/darktime/swarm/live"
)

// ErrInterrupted is returned (wrapped) when the run was stopped before its
// end, by the caller or by limits.max_duration; what it measured is
// written all the same.
var ErrInterrupted = errors.New("run interrupted")

// Config configures a Runner.
type Config struct {
	// Scenario is the checked scenario (scenario.LoadFile).
	Scenario *scenario.Scenario
	// File is where it came from (copied into the results folder).
	File string
	// Binary is the darktime executable started for server nodes, the
	// shadow proxy and swarm processes (default: this executable).
	Binary string
	// Env is added to the children's environment.
	Env []string
	// Logger receives lifecycle messages (default: discarded).
	Logger *slog.Logger
	// Out receives the progress lines and the terminal summary (default:
	// discarded).
	Out io.Writer
	// Quiet drops the per-second progress lines.
	Quiet bool
	// RemoteWrite, when set, exports each target's run live (swarm/live),
	// labelled with the scenario's name and the target's label.
	RemoteWrite *live.Config
	// AfterRun, when set, is called with each scenario file's outcome
	// after its summary (RunFiles), also when a gate failed or the run was
	// interrupted: darktime run --history appends each target's report to
	// the history there. Its error is the file's.
	AfterRun func(ctx context.Context, o *Outcome) error
	// Markdown, when set, receives the Markdown summary of each run
	// (RunFiles; Outcome.WriteMarkdown).
	Markdown io.Writer
}

// Runner runs one scenario.
type Runner struct {
	cfg Config
	s   *scenario.Scenario
	bin string
	log *slog.Logger
	out io.Writer
}

// New checks the configuration.
func New(cfg Config) (*Runner, error) {
	if cfg.Scenario == nil {
		return nil, errors.New("runner: no scenario")
	}
	r := &Runner{cfg: cfg, s: cfg.Scenario, bin: cfg.Binary, log: cfg.Logger, out: cfg.Out}
	if r.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("runner: find the darktime executable: %w", err)
		}
		r.bin = exe
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.out == nil {
		r.out = io.Discard
	}
	return r, nil
}

// Outcome is what a scenario run produced: one report per target.
type Outcome struct {
	Dir        string
	Targets    []*TargetOutcome
	Comparison *report.Comparison
	// Interrupted is set when a run stopped before its end; Aborted when
	// an abort_on_fail threshold stopped it (the targets after it were not
	// run).
	Interrupted, Aborted bool
}

// TargetOutcome is one target's run.
type TargetOutcome struct {
	Label  string
	Dir    string
	Report *report.Report
	Gates  []report.GateResult
	Files  []string // the outputs written
	Notes  []string
	// Verdict, when set, overrides the report's in the summaries: the
	// run could not judge the target, UNREACHABLE or INTERRUPTED.
	Verdict string
}

// Verdicts of a target whose run did not go to its end.
const (
	VerdictUnreachable = "UNREACHABLE"
	VerdictInterrupted = report.VerdictInterrupted
)

// Err is nil when every gate of every target passed (and no
// abort_on_fail threshold stopped the run).
func (o *Outcome) Err() error {
	var errs []error
	for _, t := range o.Targets {
		if err := report.Failures(t.Gates); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Label, err))
		} else if t.Report != nil && t.Report.Aborted != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", t.Label, errAborted, t.Report.Aborted))
		}
	}
	return errors.Join(errs...)
}

// Run runs the scenario against its target, then against compare_with,
// and writes every output. It returns what it measured even when it
// fails or is interrupted (ErrInterrupted); gate failures are not an
// error of Run: see Outcome.Err.
func (r *Runner) Run(ctx context.Context) (*Outcome, error) {
	raiseFileLimit()
	s := r.s
	out := &Outcome{Dir: s.Outputs.Dir}
	if err := os.MkdirAll(out.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("results folder: %w", err)
	}
	if r.cfg.File != "" {
		// A copy of the scenario beside the results; a FIFO or a device
		// (readable once) is not copied.
		if b, err := inputfile.Read(ctx, r.cfg.File, inputfile.Options{MaxBytes: yamlsafe.MaxBytes}); err == nil {
			_ = os.WriteFile(filepath.Join(out.Dir, "scenario.yaml"), b, 0o644)
		}
	}
	if err := r.checkCanary(ctx); err != nil {
		return nil, err
	}
	targets := []scenario.Target{s.Target}
	if s.CompareWith != nil {
		targets = append(targets, *s.CompareWith)
	}
	var runErr error
	for _, t := range targets {
		dir := out.Dir
		if len(targets) > 1 {
			dir = filepath.Join(out.Dir, t.Label)
		}
		to, err := r.runTarget(ctx, t, dir)
		if to != nil {
			out.Targets = append(out.Targets, to)
			if to.Report != nil && to.Report.Interrupted {
				out.Interrupted = true
			}
		}
		if err != nil {
			runErr = err
			break
		}
		if to != nil && to.Report != nil && to.Report.Aborted != nil {
			out.Aborted = true
			break
		}
	}
	if len(out.Targets) == 2 && out.Targets[0].Report != nil && out.Targets[1].Report != nil {
		cmp, err := report.Compare([]*report.Report{out.Targets[0].Report}, []*report.Report{out.Targets[1].Report}, report.CompareOptions{})
		if err == nil {
			out.Comparison = cmp
			if werr := writeFile(filepath.Join(out.Dir, "comparison.json"), cmp.WriteJSON); werr != nil {
				r.log.Warn("write the comparison", "err", werr)
			}
		} else {
			r.log.Warn("compare the targets", "err", err)
		}
	}
	return out, runErr
}

// runTarget runs the scenario against one target.
func (r *Runner) runTarget(ctx context.Context, t scenario.Target, dir string) (*TargetOutcome, error) {
	s := r.s
	to := &TargetOutcome{Label: t.Label, Dir: dir}
	c := &cluster{r: r, t: t, dir: dir, http: &http.Client{Timeout: 5 * time.Second}}
	fmt.Fprintf(r.out, "darktime run %s: target %s (%s)\n", s.Name, t.Label, targetLine(t))
	if err := c.start(ctx); err != nil {
		return nil, unreachableError{fmt.Errorf("start %s: %w", t.Label, err)}
	}
	stopped := false
	defer func() {
		if !stopped {
			c.stop()
		}
	}()

	statsNodes := c.statsNodes()
	before := c.snapshot(statsNodes)
	sampler := c.sampleResources()
	defer sampler.halt()

	faults := &faultLog{}
	cfg, err := r.swarmConfig(t, c.targets(), len(c.proxies) > 0)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, s.Limits.MaxDuration.D())
	defer cancel()
	runCtx, stop := context.WithCancelCause(runCtx)
	defer stop(nil)
	watch, err := r.newAbortWatch(stop)
	if err != nil {
		return nil, err
	}
	watch.hook(&cfg)
	prefix := cfg.ChannelPrefix
	sched := &scheduler{r: r, c: c, log: faults, ctx: runCtx, channel: func(i int) string { return swarm.ChannelName(prefix, i) }}
	cr, err := r.newCanary(ctx, c, dir)
	if err != nil {
		return nil, err
	}
	cfg.OnPublish = func(start time.Time) {
		sched.begin(start)
		cr.begin(runCtx)
		watch.begin(start)
	}
	fmt.Fprintf(r.out, "  %d clients over %d channels at %v/s, %d phase(s) over %v, %d fault(s); about %v (limit %v)\n",
		s.Clients.Count, s.Clients.Channels, s.Clients.Ramp, len(s.Phases), s.RunLength(), len(s.Faults), s.Planned(), s.Limits.MaxDuration)

	var res *swarm.Result
	var watched func(*swarm.Result)
	var rw *live.Config
	if r.cfg.RemoteWrite != nil {
		c := *r.cfg.RemoteWrite
		c.Labels.Scenario, c.Labels.Target = s.Name, t.Label
		rw = &c
	}
	if s.Clients.Procs > 1 {
		var spec json.RawMessage // each worker exports its part
		if rw != nil {
			if spec, err = rw.Spec(); err != nil {
				return nil, err
			}
		}
		res, err = r.runProcs(runCtx, cfg, sched, dir, spec)
	} else {
		if rw != nil {
			var tick func(swarm.Tick)
			tick, watched = rw.Watch()(cfg)
			cfg.Tick = swarm.ChainTick(cfg.Tick, tick)
		}
		res, err = swarm.Run(runCtx, cfg)
	}
	sched.finish()
	cr.stop()
	if watched != nil {
		watched(res) // the last interval and the ledger's totals
	}
	defer cr.record(to) // after the report's gates: the rollout's outcome is one
	interrupted := err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	unreachable := err != nil && errors.Is(err, ErrUnreachable)
	if err != nil && !interrupted && res == nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	if err != nil && !interrupted {
		to.Notes = append(to.Notes, "swarm: "+err.Error())
	}
	if res != nil && res.ExtractFailure != nil {
		to.Notes = append(to.Notes, "swarm: "+res.ExtractFailure.String())
	}

	// Counters after the drain, from the nodes still up; then stop the
	// proxies, which write their final ledgers.
	var after []server.Stats
	if len(c.killed) > 0 {
		to.Notes = append(to.Notes, "a node was killed: its counters died with it, so the servers' ledgers are left out")
		before = nil
	} else {
		after = c.snapshot(statsNodes)
		if len(after) != len(before) {
			to.Notes = append(to.Notes, "a node did not answer GET /stats after the run: the servers' ledgers are left out")
			before, after = nil, nil
		}
	}
	if len(statsNodes) > len(c.nodeURLs) && len(after) == len(statsNodes) {
		before, after = c.candidateServed(cr, before, after, to)
	}
	// A mirror candidate's counters are not reconciled with the swarm
	// (its readers are the proxies) but say what it received.
	var candidate []server.Stats
	if c.candidate != nil {
		candidate = c.snapshot([]string{c.candURL})
	}
	if _, err := sampler.finish(dir); err != nil {
		to.Notes = append(to.Notes, "resources: "+err.Error())
	}
	c.stop()
	stopped = true
	var ledgers []shadow.Report
	var ledgerNames []string
	for _, f := range c.ledgers {
		l, err := report.ReadShadowFile(f)
		if err != nil {
			to.Notes = append(to.Notes, "shadow ledger: "+err.Error())
			continue
		}
		ledgers = append(ledgers, l)
		ledgerNames = append(ledgerNames, filepath.Base(f))
	}

	if res == nil {
		return to, fmt.Errorf("%w: nothing was measured", ErrInterrupted)
	}
	if err := writeFile(filepath.Join(dir, "swarm.json"), res.Write); err != nil {
		return to, err
	}
	for _, st := range candidate {
		_ = writeJSON(filepath.Join(dir, "stats", "after-candidate.json"), st)
	}
	for i := range before {
		_ = writeJSON(filepath.Join(dir, "stats", "before-"+before[i].Node+".json"), before[i])
		_ = writeJSON(filepath.Join(dir, "stats", "after-"+after[i].Node+".json"), after[i])
	}

	rep, err := report.Build(report.Inputs{
		Results: []*swarm.Result{res}, ResultNames: []string{"swarm.json"},
		StatsBefore: before, StatsAfter: after,
		Shadow: ledgers, ShadowNames: ledgerNames,
		Scenario: r.reportScenario(t, res, faults.list()),
	})
	if err != nil {
		return to, fmt.Errorf("report: %w", err)
	}
	to.Report = rep
	abort := watch.aborted()
	rep.SetAborted(abort)
	gates, err := report.ParseGates(s.Gates())
	if err != nil {
		return to, err
	}
	if to.Gates, err = rep.Evaluate(gates); err != nil {
		return to, err
	}
	o := s.Outputs
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{o.JSON, rep.WriteJSON}, {o.HTML, rep.WriteHTML}, {o.JUnit, rep.WriteJUnit}} {
		if f.name == "" {
			continue
		}
		path := filepath.Join(dir, f.name)
		if err := writeFile(path, f.write); err != nil {
			return to, err
		}
		to.Files = append(to.Files, path)
	}
	if strings.HasPrefix(s.Publishers.Pacing, "linear") {
		nodes := max(t.Nodes, 1)
		to.Notes = append(to.Notes, fmt.Sprintf("a ramp: plan capacity from it with darktime report capacity %s --nodes %d --slo-p99-ms 50 --users 200000 --rate 20",
			filepath.Join(dir, "swarm.json"), nodes))
	}
	if unreachable {
		to.Verdict = VerdictUnreachable
		return to, unreachableError{fmt.Errorf("%w; what it measured is in %s", err, dir)}
	}
	if interrupted && (abort == nil || ctx.Err() != nil) {
		to.Verdict = VerdictInterrupted
		why := "stopped by a signal"
		if ctx.Err() == nil {
			why = "it passed limits.max_duration (" + s.Limits.MaxDuration.String() + ")"
		}
		return to, fmt.Errorf("%w: %s; what it measured is in %s", ErrInterrupted, why, dir)
	}
	return to, nil
}

// statsNodes are the nodes whose /stats the report reconciles with what
// the swarm received: the primary's nodes, and a candidate that serves
// diverted users (a mirror candidate's readers are the proxies).
func (c *cluster) statsNodes() []string {
	if c.t.Profile == scenario.ProfileNchan {
		return nil
	}
	urls := append([]string(nil), c.nodeURLs...)
	if sh := c.r.s.Shadow; sh != nil && c.candURL != "" && (sh.Mode == scenario.ModeDivert || sh.Canary != "") {
		urls = append(urls, c.candURL) // last: candidateServed may take it out again
	}
	return urls
}

// candidateServed keeps the candidate's counters (the last snapshot of
// each list) in the servers' ledgers when it served users only through
// diverted streams, and takes them out when it served only the proxy's
// mirrors (whose reader is the proxy, not the swarm). A rollout that did
// both leaves the servers' ledgers out: the candidate's writes cannot be
// split between the users and the mirrors.
func (c *cluster) candidateServed(cr *canaryRun, before, after []server.Stats, to *TargetOutcome) ([]server.Stats, []server.Stats) {
	sh := c.r.s.Shadow
	mirrored, diverted := sh.Percent > 0 && sh.Mode == scenario.ModeMirror, sh.Percent > 0 && sh.Mode == scenario.ModeDivert
	if cr != nil && cr.res != nil {
		for _, st := range cr.res.Steps {
			mirrored = mirrored || st.Mode == string(scenario.ModeMirror)
			diverted = diverted || st.Mode == string(scenario.ModeDivert)
		}
	}
	n := len(before) - 1
	switch {
	case mirrored && diverted:
		to.Notes = append(to.Notes, "the candidate served the proxy's mirrors and diverted users in one run: its writes cannot be split between them, so the servers' ledgers are left out")
		return nil, nil
	case diverted:
		return before, after
	default:
		return before[:n], after[:n]
	}
}

// snapshot takes GET /stats of every node that answers.
func (c *cluster) snapshot(urls []string) []server.Stats {
	var out []server.Stats
	for i, u := range urls {
		if c.killed[i] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := httpGet(ctx, c.http, u+"/stats")
		cancel()
		if err != nil {
			c.r.log.Warn("GET /stats", "node", u, "err", err)
			continue
		}
		st, err := report.ReadStats(bytesReader(b))
		if err != nil {
			c.r.log.Warn("GET /stats", "node", u, "err", err)
			continue
		}
		out = append(out, st)
	}
	return out
}

// faultLog records the faults as they happen.
type faultLog struct {
	mu     sync.Mutex
	faults []report.Fault
}

func (l *faultLog) add(f report.Fault) {
	l.mu.Lock()
	l.faults = append(l.faults, f)
	l.mu.Unlock()
}

func (l *faultLog) list() []report.Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]report.Fault(nil), l.faults...)
}

func targetLine(t scenario.Target) string {
	switch {
	case t.Embedded() && t.Broker == scenario.BrokerRedisCluster:
		return fmt.Sprintf("%d embedded node(s), redis-cluster broker (%d shards, %d replica(s) each)", t.Nodes, t.Redis.Shards, t.Redis.ReplicasPerShard())
	case t.Embedded():
		return fmt.Sprintf("%d embedded node(s), %s broker", t.Nodes, t.Broker)
	case t.Start != "":
		return t.Start + " (started by darktime)"
	case t.URL != "":
		return t.Profile + " at " + t.URL
	}
	return t.Profile + " at " + strconv.Itoa(len(t.URLs)) + " URLs"
}

// raiseFileLimit lifts the soft open-file limit to the hard one, for this
// process and the children it starts.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
