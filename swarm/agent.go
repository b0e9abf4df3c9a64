package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/ctxwait"
)

// A run split over machines: agents (Agent.Serve) wait on a Redis list of
// tickets; the coordinator (RunAgents) writes the run, pushes one ticket
// per agent it wants, waits until that many joined, releases them all at
// one wall-clock start time, and merges the results they push back. Each
// agent runs one Part, exactly as a --procs worker does, so the merge is
// exact. Keys (under Coordination.Prefix):
//
//	tickets                 list of run ids; an agent pops one to join that run
//	run:ID                  the run (RunSpec JSON, Part.Index 0)
//	run:ID:joined           counter; an agent's INCR is its part index + 1
//	run:ID:agents           hash part index -> agent name
//	run:ID:ctl:I            control messages for part I: "go UNIXNANO", "abort", "stop"
//	run:ID:results          list of agentReport JSON
//	run:ID:collected        the reports the coordinator took (kept until expiry)
//
// Every run key expires (agentKeyTTL after the run's bounds), so an
// abandoned run leaves nothing behind for long.

// agentProto versions the reports agents push back (the run they get is
// a RunSpec, versioned by itself).
const agentProto = "darktime.swarm.agent/v1"

// DefaultAgentPrefix prefixes the swarm's Redis keys.
const DefaultAgentPrefix = "darktime:swarm:"

// Defaults of Coordination.
const (
	DefaultJoinTimeout = time.Minute
	DefaultStartDelay  = 2 * time.Second
	// agentStopGrace is how long the coordinator waits for results after
	// it asked the agents to stop early.
	agentStopGrace = 30 * time.Second
	agentKeyTTL    = time.Hour
	// agentPoll bounds every blocking Redis call, so that cancellation is
	// noticed within it.
	agentPoll = time.Second
)

// ErrIncomplete marks a merged result that lacks some parts: an agent did
// not join, failed, or sent nothing in time. The result of the others is
// still returned; Result.Missing lists the absent parts.
var ErrIncomplete = errors.New("incomplete swarm run")

// Coordination says how RunAgents finds and waits for its agents.
type Coordination struct {
	// Redis is shared with the agents (the caller closes it); or RedisURL,
	// which RunAgents dials and closes. One is required.
	Redis    redis.UniversalClient
	RedisURL string
	// Prefix prefixes every key (DefaultAgentPrefix); agents must use the
	// same.
	Prefix string
	// Agents is how many agents run the run, one part each (required).
	Agents int
	// JoinTimeout bounds the wait for the agents to join (1 min).
	JoinTimeout time.Duration
	// StartDelay is the lead time between the last join and the common
	// start, so that every agent gets the start message before it (2 s).
	StartDelay time.Duration
	// ResultTimeout bounds the wait for results after the start (default
	// the run's planned length — ramp, settle, duration, drain and one
	// connect timeout — plus one minute).
	ResultTimeout time.Duration
}

func (co Coordination) withDefaults(cfg Config) Coordination {
	if co.Prefix == "" {
		co.Prefix = DefaultAgentPrefix
	}
	if co.JoinTimeout == 0 {
		co.JoinTimeout = DefaultJoinTimeout
	}
	if co.StartDelay == 0 {
		co.StartDelay = DefaultStartDelay
	}
	if co.ResultTimeout == 0 {
		co.ResultTimeout = plannedLength(cfg, co.Agents) + time.Minute
	}
	return co
}

// plannedLength is how long one part of a run should take.
func plannedLength(cfg Config, parts int) time.Duration {
	ramp := time.Duration(float64(cfg.Clients) / float64(max(parts, 1)) / cfg.Ramp * float64(time.Second))
	before := ramp + cfg.ConnectTimeout + cfg.Settle
	if wait := time.Until(cfg.PublishAt); !cfg.PublishAt.IsZero() && wait > before {
		before = wait
	}
	return before + cfg.Duration + cfg.Drain
}

// agentReport is what an agent pushes when its part is over.
type agentReport struct {
	Proto string `json:"proto"`
	Part  int    `json:"part"`
	Agent string `json:"agent"`
	// Error is the part's error, if any ("" when it ran to its end).
	Error string `json:"error,omitempty"`
	// Result is the part's result file (Result.Write), absent when the
	// part produced none.
	Result json.RawMessage `json:"result,omitempty"`
}

type agentKeys struct{ prefix, run string }

func (k agentKeys) tickets() string     { return k.prefix + "tickets" }
func (k agentKeys) spec() string        { return k.prefix + "run:" + k.run }
func (k agentKeys) joined() string      { return k.spec() + ":joined" }
func (k agentKeys) agents() string      { return k.spec() + ":agents" }
func (k agentKeys) results() string     { return k.spec() + ":results" }
func (k agentKeys) collected() string   { return k.spec() + ":collected" }
func (k agentKeys) ctl(part int) string { return k.spec() + ":ctl:" + strconv.Itoa(part) }

// RunAgents runs cfg on co.Agents agents (Agent.Serve, on this machine or
// others) coordinated through Redis: it waits (bounded) until they have
// joined, starts them together, collects their results and merges them
// exactly. A missing or failed agent makes the error name it (wrapping
// ErrIncomplete) while the result still holds what the others measured.
// On cancellation the agents are asked to stop; their (interrupted)
// results are merged as usual.
func RunAgents(ctx context.Context, cfg Config, co Coordination) (*Result, error) {
	if co.Agents < 1 {
		return nil, fmt.Errorf("%w: agents need at least one agent", ErrConfig)
	}
	rdb, closeRedis, err := redisClient(co.Redis, co.RedisURL)
	if err != nil {
		return nil, err
	}
	defer closeRedis()
	spec, err := newSpec(cfg, co.Agents)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = spec.Config
	co = co.withDefaults(cfg)
	spec.JoinTimeout = co.JoinTimeout
	var buf bytes.Buffer
	if err := spec.Encode(&buf); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	k := agentKeys{prefix: co.Prefix, run: cfg.RunID}
	ttl := co.JoinTimeout + co.StartDelay + co.ResultTimeout + agentKeyTTL
	// Redis calls after a cancellation (stop, cleanup) must still go out.
	bg := context.WithoutCancel(ctx)
	ok, err := rdb.SetNX(ctx, k.spec(), data, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("write the run to Redis: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: run %s already exists in Redis: use another --run-id", ErrConfig, cfg.RunID)
	}
	pipe := rdb.TxPipeline()
	tickets := make([]any, co.Agents)
	for i := range tickets {
		tickets[i] = cfg.RunID
	}
	pipe.RPush(ctx, k.tickets(), tickets...)
	pipe.Expire(ctx, k.tickets(), ttl) // refreshed by every run
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("post the run's tickets: %w", err)
	}
	defer rdb.LRem(bg, k.tickets(), 0, cfg.RunID) // tickets no agent took
	log.Info("waiting for agents", "run", cfg.RunID, "agents", co.Agents, "redis_prefix", co.Prefix, "timeout", co.JoinTimeout)

	// Join: wait until every ticket is taken and its agent registered.
	joinBy := time.Now().Add(co.JoinTimeout)
	for {
		n, err := rdb.HLen(bg, k.agents()).Result()
		if err == nil && n >= int64(co.Agents) {
			break
		}
		if ctx.Err() != nil || time.Now().After(joinBy) {
			names, _ := rdb.HGetAll(bg, k.agents()).Result()
			for i := range co.Agents {
				rdb.RPush(bg, k.ctl(i), "abort")
				rdb.Expire(bg, k.ctl(i), ttl)
			}
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case err != nil:
				return nil, fmt.Errorf("wait for agents: %w", err)
			}
			return nil, fmt.Errorf("%w: only %d of %d agents joined run %s within %v (joined: %s): start more `darktime swarm agent` with the same --redis and --redis-prefix, or lower --agents",
				ErrIncomplete, n, co.Agents, cfg.RunID, co.JoinTimeout, agentNames(names))
		}
		ctxwait.Sleep(ctx, 100*time.Millisecond)
	}
	names, err := rdb.HGetAll(ctx, k.agents()).Result()
	if err != nil {
		return nil, fmt.Errorf("read the agents: %w", err)
	}

	// Barrier: one wall-clock start for all.
	start := time.Now().Add(co.StartDelay)
	for i := range co.Agents {
		if err := rdb.RPush(ctx, k.ctl(i), "go "+strconv.FormatInt(start.UnixNano(), 10)).Err(); err != nil {
			return nil, fmt.Errorf("start agent %s: %w", names[strconv.Itoa(i)], err)
		}
		rdb.Expire(ctx, k.ctl(i), ttl)
	}
	log.Info("agents joined; starting", "agents", agentNames(names), "at", start.Format(time.RFC3339Nano))

	// Collect.
	reports := map[int]agentReport{}
	deadline := start.Add(co.ResultTimeout)
	stopped := false
	for len(reports) < co.Agents && time.Now().Before(deadline) {
		if ctx.Err() != nil && !stopped {
			stopped = true
			for i := range co.Agents {
				rdb.RPush(bg, k.ctl(i), "stop")
			}
			deadline = time.Now().Add(agentStopGrace)
			log.Info("stopping the agents", "waiting", agentStopGrace)
		}
		wait := min(agentPoll, time.Until(deadline))
		// Moved, not popped: the reports stay in Redis (collected) until
		// the keys expire, for whoever wants to check the merge.
		raw, err := rdb.BLMove(bg, k.results(), k.collected(), "LEFT", "RIGHT", max(wait, time.Millisecond)).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if time.Now().After(deadline) {
				break
			}
			log.Warn("reading results", "err", err)
			time.Sleep(100 * time.Millisecond) // ctx may be done already: no busy loop
			continue
		}
		var rep agentReport
		rdb.Expire(bg, k.collected(), ttl)
		if err := json.Unmarshal([]byte(raw), &rep); err != nil || rep.Proto != agentProto || rep.Part < 0 || rep.Part >= co.Agents {
			log.Warn("ignoring a malformed agent report", "err", err)
			continue
		}
		reports[rep.Part] = rep
		log.Info("agent reported", "agent", rep.Agent, "part", rep.Part, "error", rep.Error)
	}

	var results []*Result
	var errs []error
	for i := range co.Agents {
		name := names[strconv.Itoa(i)]
		rep, ok := reports[i]
		if !ok {
			errs = append(errs, fmt.Errorf("agent %s (part %d/%d) sent no result within %v of the start", name, i, co.Agents, co.ResultTimeout))
			continue
		}
		if rep.Error != "" {
			errs = append(errs, fmt.Errorf("agent %s (part %d/%d): %s", rep.Agent, i, co.Agents, rep.Error))
		}
		if len(rep.Result) == 0 {
			continue
		}
		res, err := ReadResult(bytes.NewReader(rep.Result))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("agent %s (part %d/%d): %w", rep.Agent, i, co.Agents, err))
		case res.RunID != cfg.RunID || len(res.Parts) != 1 || res.Parts[0].Part != (Part{Index: i, Count: co.Agents}):
			errs = append(errs, fmt.Errorf("agent %s sent a result for run %s parts %v, want part %d/%d of %s", rep.Agent, res.RunID, res.Parts, i, co.Agents, cfg.RunID))
		default:
			results = append(results, res)
		}
	}
	if len(results) == 0 {
		return nil, errors.Join(append(errs, fmt.Errorf("%w: no agent produced a result", ErrIncomplete))...)
	}
	merged, err := Merge(results...)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	if missing := merged.Missing(); len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%w: %d of %d parts missing from the merged result", ErrIncomplete, len(missing), co.Agents))
	}
	if ctx.Err() != nil {
		merged.Interrupted = true
		errs = append(errs, ctx.Err())
	}
	return merged, errors.Join(errs...)
}

func agentNames(byPart map[string]string) string {
	var out []string
	for i, n := range byPart {
		out = append(out, i+"="+n)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// Agent runs parts of swarm runs that a coordinator (RunAgents) posts to
// Redis, one run at a time.
type Agent struct {
	// Name identifies the agent to the coordinator (default host-pid).
	Name string
	// Redis is shared with the coordinator (the caller closes it); or
	// RedisURL, which Serve dials and closes. One is required.
	Redis    redis.UniversalClient
	RedisURL string
	// Prefix prefixes every key (DefaultAgentPrefix).
	Prefix string
	// Logger receives lifecycle messages (default discards them);
	// Progress, when set, gets each run's per-second status lines.
	Logger   *slog.Logger
	Progress io.Writer
	// Watch, when set, watches each run's part live.
	Watch Watch
	// Runs, when positive, makes Serve return after that many runs.
	Runs int
}

// Serve waits for runs and runs its part of each until ctx is done (or
// Runs runs were served). A run in progress is stopped on cancellation
// and its result still pushed. Errors of one run are reported to its
// coordinator, not returned: Serve returns only when Redis stays
// unreachable or ctx ends.
func (a *Agent) Serve(ctx context.Context) error {
	if a.Redis == nil {
		rdb, closeRedis, err := redisClient(nil, a.RedisURL)
		if err != nil {
			return err
		}
		a.Redis = rdb
		defer func() { closeRedis(); a.Redis = nil }()
	}
	if a.Name == "" {
		host, _ := os.Hostname()
		a.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if a.Prefix == "" {
		a.Prefix = DefaultAgentPrefix
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	a.Logger.Info("agent waiting for runs", "agent", a.Name, "redis_prefix", a.Prefix)
	served, failures := 0, 0
	for ctx.Err() == nil && (a.Runs <= 0 || served < a.Runs) {
		kv, err := a.Redis.BLPop(ctx, agentPoll, a.Prefix+"tickets").Result()
		switch {
		case errors.Is(err, redis.Nil):
			failures = 0
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if failures++; failures > 30 {
				return fmt.Errorf("agent %s: Redis: %w", a.Name, err)
			}
			a.Logger.Warn("waiting for runs", "err", err)
			ctxwait.Sleep(ctx, time.Second)
			continue
		}
		failures = 0
		if a.join(ctx, kv[1]) {
			served++
		}
	}
	return ctx.Err()
}

// join joins one run and, once started, runs its part; it reports whether
// it ran.
func (a *Agent) join(ctx context.Context, runID string) bool {
	rdb := a.Redis
	k := agentKeys{prefix: a.Prefix, run: runID}
	log := a.Logger.With("run", runID)
	data, err := rdb.Get(ctx, k.spec()).Bytes()
	if err != nil {
		log.Warn("ignoring a ticket without its run", "err", err)
		return false
	}
	spec, err := ReadSpec(bytes.NewReader(data))
	if err != nil {
		log.Warn("ignoring a run this agent cannot read", "err", err)
		return false
	}
	agents := spec.Part.Count
	n, err := rdb.Incr(ctx, k.joined()).Result()
	if err != nil || n > int64(agents) {
		log.Warn("could not join", "err", err, "joined", n)
		return false
	}
	part := int(n - 1)
	rdb.Expire(ctx, k.joined(), spec.JoinTimeout+agentKeyTTL)
	if err := rdb.HSet(ctx, k.agents(), strconv.Itoa(part), a.Name).Err(); err != nil {
		log.Warn("could not register", "err", err)
		return false
	}
	rdb.Expire(ctx, k.agents(), spec.JoinTimeout+agentKeyTTL)
	log.Info("joined; waiting for the start", "part", part, "of", agents)

	// The start message, or an abort, comes within the join timeout.
	var msg string
	for wait := time.Now().Add(spec.JoinTimeout + 10*time.Second); msg == ""; {
		if time.Now().After(wait) || ctx.Err() != nil {
			log.Warn("no start message; leaving the run")
			return false
		}
		kv, err := rdb.BLPop(ctx, agentPoll, k.ctl(part)).Result()
		if err == nil {
			msg = kv[1]
		}
	}
	verb, arg, _ := strings.Cut(msg, " ")
	startNs, err := strconv.ParseInt(arg, 10, 64)
	if verb != "go" || err != nil {
		log.Info("run aborted by the coordinator", "message", msg)
		return false
	}
	if !ctxwait.Sleep(ctx, time.Until(time.Unix(0, startNs))) {
		return false
	}

	cfg := spec.Config
	cfg.Part = Part{Index: part, Count: agents}
	cfg.Logger = log.With("part", part)
	cfg.Progress = a.Progress
	var watched func(*Result)
	if a.Watch != nil {
		var tick func(Tick)
		tick, watched = a.Watch(cfg)
		cfg.Tick = ChainTick(cfg.Tick, tick)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopDone := make(chan struct{})
	runDone := make(chan struct{})
	go func() {
		// A "stop" from the coordinator (its Ctrl-C) ends the part early.
		defer close(stopDone)
		for {
			select {
			case <-runDone:
				return
			default:
			}
			kv, err := rdb.BLPop(runCtx, agentPoll, k.ctl(part)).Result()
			if err == nil && kv[1] == "stop" {
				cancel()
				return
			}
			if err != nil && !errors.Is(err, redis.Nil) {
				ctxwait.Sleep(runCtx, 100*time.Millisecond)
			}
		}
	}()
	res, runErr := Run(runCtx, cfg)
	close(runDone)
	<-stopDone
	cancel()
	if watched != nil {
		defer watched(res) // once the result is pushed
	}

	rep := agentReport{Proto: agentProto, Part: part, Agent: a.Name}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		rep.Error = runErr.Error()
	}
	if res != nil {
		var buf bytes.Buffer
		if err := res.Write(&buf); err != nil {
			rep.Error = strings.TrimPrefix(rep.Error+"; ", "; ") + "encode result: " + err.Error()
		} else {
			rep.Result = buf.Bytes()
		}
	}
	out, _ := json.Marshal(rep)
	bg := context.WithoutCancel(ctx)
	if err := rdb.RPush(bg, k.results(), out).Err(); err != nil {
		log.Error("could not push the result", "err", err)
		return true
	}
	rdb.Expire(bg, k.results(), agentKeyTTL)
	log.Info("result pushed", "part", part, "bytes", len(out), "error", rep.Error)
	return true
}

// redisClient is rdb, or a client of url that the caller closes with the
// function returned. Errors wrap ErrConfig and name the flag.
func redisClient(rdb redis.UniversalClient, url string) (redis.UniversalClient, func(), error) {
	if rdb != nil {
		return rdb, func() {}, nil
	}
	if url == "" {
		return nil, nil, flagError("--redis URL is required")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, flagError(fmt.Sprintf("--redis %q: %v", url, err))
	}
	c := redis.NewClient(opt)
	return c, func() { c.Close() }, nil
}
