package scenario

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/darktime/darktime/internal/defect"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/swarm/params"
)

// Bounds of a scenario.
const (
	MaxNodes    = 32
	MaxWorkers  = 64
	MaxProcs    = 64
	MaxSources  = 253
	MaxClients  = 1_000_000
	MaxRate     = 1_000_000 // events/s
	MaxSize     = 1 << 20   // bytes
	MaxDuration = params.MaxDuration
	// MaxPublishes bounds the publishes of one run (the swarm's ledger
	// keeps one entry per publish).
	MaxPublishes = 50_000_000
)

// Bounds of a Redis Cluster (each node is a redis-server process on this
// machine).
const (
	MaxShards   = 16
	MaxReplicas = 4
	// MinNodeTimeout is the shortest cluster-node-timeout: below it a busy
	// machine's masters are taken for dead.
	MinNodeTimeout = 500 * time.Millisecond
)

// The swarm's fixed parts of a run around the phases.
const (
	settle = params.DefaultSettle
	drain  = params.DefaultDrain
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

type validator struct {
	doc  *doc
	s    *Scenario
	opts Options
	errs Errors
	// overridden are the paths Options.Overrides set: given, though not
	// in the file.
	overridden map[string]bool
}

// node returns the node of path, or of its nearest parent in the file.
func (v *validator) node(path string) ast.Node {
	for p := path; p != ""; p = parent(p) {
		if n, ok := v.doc.nodes[p]; ok {
			return n
		}
	}
	return nil
}

func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

func (v *validator) has(path string) bool {
	_, ok := v.doc.nodes[path]
	return ok || v.overridden[path]
}

func (v *validator) errorf(path, format string, args ...any) {
	e := at(v.node(path), path, format, args...)
	if v.opts.Overrides.Set() {
		e.Msg += " (with " + v.opts.Overrides.String() + ")"
	}
	v.errs = append(v.errs, e)
}

// require reports a missing key, placed at its parent.
func (v *validator) require(path, what string) bool {
	if v.has(path) {
		return true
	}
	e := at(v.node(path), path, "missing: %s", what)
	v.errs = append(v.errs, e)
	return false
}

func (v *validator) validate() {
	s := v.s
	if v.require("version", "write version: 1 first") && s.Version != Version {
		v.errorf("version", "version %d is not supported: this darktime reads version %d", s.Version, Version)
	}
	if v.require("name", "a short name like steady-state (it names the results folder)") && !nameRE.MatchString(s.Name) {
		v.errorf("name", "%q: want lower-case letters, digits and -, at most 63 (it names the results folder)", s.Name)
	}
	v.target("target", &s.Target, "primary")
	if s.CompareWith != nil {
		v.target("compare_with", s.CompareWith, "compare")
		if s.CompareWith.Label == s.Target.Label {
			v.errorf("compare_with.label", "%q is the target's label too: give them different labels", s.Target.Label)
		}
	}
	v.clients()
	v.publishers()
	run := v.phases()
	v.shadow()
	v.faults(run)
	v.thresholds()
	v.outputs()
	v.limits(run)
	if len(v.errs) == 0 {
		v.machine()
	}
}

func (v *validator) target(path string, t *Target, label string) {
	p := func(k string) string { return path + "." + k }
	if t.Label == "" {
		t.Label = label
	} else if !nameRE.MatchString(t.Label) {
		v.errorf(p("label"), "%q: want lower-case letters, digits and -", t.Label)
	}
	switch t.Profile {
	case "", ProfileDarktime, ProfileNchan, ProfileDarktimeHooks:
	default:
		v.errorf(p("profile"), "%q: want darktime, nchan or darktime-hooks", t.Profile)
	}
	if !t.Embedded() {
		for _, k := range []string{"broker", "nodes", "workers", "redis", "auth"} {
			if v.has(p(k)) {
				v.errorf(p(k), "only for an embedded target (servers darktime starts); this target has url, urls or start")
			}
		}
		if t.URL != "" && len(t.URLs) > 0 {
			v.errorf(p("urls"), "give url or urls, not both")
		}
		if t.Start != "" {
			if t.Start != StartNchan {
				v.errorf(p("start"), "%q: darktime can only start nchan (nginx + nchan from the repository's nchan-nginx.conf)", t.Start)
			}
			if t.Start == StartNchan && ((t.URL != "" && t.URL != NchanURL) || len(t.URLs) > 0) {
				v.errorf(p("start"), "start: nchan listens on %s; leave url and urls out", NchanURL)
			}
			if t.Profile != "" && t.Profile != ProfileNchan {
				v.errorf(p("profile"), "start: nchan serves the nchan profile, not %q", t.Profile)
			}
			t.Profile, t.URL = ProfileNchan, NchanURL
		}
		if t.URL != "" {
			v.url(p("url"), t.URL)
		}
		for i, u := range t.URLs {
			v.url(fmt.Sprintf("%s.urls[%d]", path, i), u)
		}
		if t.Profile == "" {
			t.Profile = ProfileDarktime
		}
		return
	}
	if t.Profile != "" && t.Profile != ProfileDarktime {
		v.errorf(p("profile"), "an embedded target is darktime's reference server (for model hooks set publishers.endpoint: hooks)")
	}
	t.Profile = ProfileDarktime
	switch t.Broker {
	case "":
		t.Broker = BrokerMemory
	case BrokerMemory, BrokerRedis, BrokerRedisCluster:
	default:
		v.errorf(p("broker"), "%q: want memory, redis or redis-cluster", t.Broker)
	}
	if v.has(p("nodes")) && (t.Nodes < 1 || t.Nodes > MaxNodes) {
		v.errorf(p("nodes"), "%d: want 1 to %d nodes", t.Nodes, MaxNodes)
	}
	if t.Nodes == 0 {
		t.Nodes = 1
	}
	if t.Nodes > 1 && t.Broker == BrokerMemory {
		v.errorf(p("nodes"), "%d nodes share events only through Redis: set broker: redis (or redis-cluster)", t.Nodes)
	}
	if t.Workers < 0 || t.Workers > MaxWorkers {
		v.errorf(p("workers"), "%d: want 0 to %d hook workers", t.Workers, MaxWorkers)
	}
	if t.Workers > 0 && t.Broker != BrokerRedis && t.Broker != BrokerRedisCluster {
		v.errorf(p("workers"), "hook workers read the Redis job queue: set broker: redis (or redis-cluster)")
	}
	v.redis(path, t)
}

// redis checks target.redis and fills in its defaults.
func (v *validator) redis(path string, t *Target) {
	p := func(k string) string { return path + ".redis." + k }
	cluster := t.Broker == BrokerRedisCluster
	if t.Redis == nil {
		if !t.StartsRedis() {
			return
		}
		t.Redis = &Redis{}
	} else if !t.StartsRedis() {
		v.errorf(path+".redis", "only with broker: redis or redis-cluster")
	}
	r := t.Redis
	switch r.Persistence {
	case "":
		r.Persistence = "none"
	case "none", "aof":
	default:
		v.errorf(p("persistence"), "%q: want none or aof", r.Persistence)
	}
	for _, k := range []string{"shards", "replicas", "node_timeout"} {
		if v.has(p(k)) && !cluster {
			v.errorf(p(k), "only with broker: redis-cluster (a Redis Cluster's layout)")
		}
	}
	if !cluster {
		r.Shards, r.Replicas, r.NodeTimeout = 0, nil, 0
		return
	}
	if v.has(p("shards")) && (r.Shards < 3 || r.Shards > MaxShards) {
		v.errorf(p("shards"), "%d: want 3 to %d masters (a Redis Cluster has at least 3)", r.Shards, MaxShards)
	}
	if r.Shards == 0 {
		r.Shards = 3
	}
	if r.Replicas == nil {
		one := 1
		r.Replicas = &one
	} else if n := *r.Replicas; n < 0 || n > MaxReplicas {
		v.errorf(p("replicas"), "%d: want 0 to %d replicas per master", n, MaxReplicas)
	}
	if v.has(p("node_timeout")) && r.NodeTimeout.D() < MinNodeTimeout {
		v.errorf(p("node_timeout"), "%v: want at least %v (shorter, a busy machine's masters are taken for dead)", r.NodeTimeout, MinNodeTimeout)
	}
	if r.NodeTimeout == 0 {
		r.NodeTimeout = Duration(2 * time.Second)
	}
}

func (v *validator) url(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf(path, "%q: want an http:// or https:// URL with a host", raw)
	}
}

// cleanSwarm drops the swarm's "invalid swarm config: " prefix.
func cleanSwarm(err error) string {
	return strings.ReplaceAll(err.Error(), params.ErrConfig.Error()+": ", "")
}

func (v *validator) clients() {
	c := &v.s.Clients
	if v.require("clients.count", "how many EventSource clients to hold") && (c.Count < 1 || c.Count > MaxClients) {
		v.errorf("clients.count", "%d: want 1 to %d clients", c.Count, MaxClients)
	}
	positive := func(path string, bad bool, what string) {
		if v.has(path) && bad {
			v.errorf(path, "must be positive: %s", what)
		}
	}
	positive("clients.ramp", c.Ramp <= 0 || math.IsInf(c.Ramp, 0) || math.IsNaN(c.Ramp), "clients connecting per second")
	positive("clients.channels", c.Channels < 1, "how many channels the clients spread over")
	if v.has("clients.sources") && (c.Sources < 1 || c.Sources > MaxSources) {
		v.errorf("clients.sources", "%d: want 1 to %d source addresses (127.0.0.2 on)", c.Sources, MaxSources)
	}
	if v.has("clients.procs") && (c.Procs < 1 || c.Procs > MaxProcs) {
		v.errorf("clients.procs", "%d: want 1 to %d swarm processes", c.Procs, MaxProcs)
	}
	if tk := c.Token; tk != nil {
		if (tk.SecretEnv == "") == (tk.KeyFile == "") {
			v.errorf("clients.token", "give one of secret_env (an HMAC secret in the environment) and key_file (a PEM private key or a secret file)")
		}
		if v.has("clients.token.ttl") && tk.TTL <= 0 {
			v.errorf("clients.token.ttl", "must be positive: each token's lifetime")
		}
	}
	if c.Ramp == 0 {
		c.Ramp = params.DefaultRamp
	}
	if c.Channels == 0 {
		c.Channels = params.DefaultChannels
	}
	if c.Procs == 0 {
		c.Procs = 1
	}
	if c.Distribution == "" {
		c.Distribution = params.DistUniform
	}
	dist, err := params.ParseDistribution(c.Distribution)
	if err != nil {
		v.errorf("clients.distribution", "%s", cleanSwarm(err))
	}
	if c.Churn == "" {
		c.Churn = params.LifeNone
	}
	if _, err := params.ParseLifetime(c.Churn); err != nil {
		v.errorf("clients.churn", "%s", cleanSwarm(err))
	}
	channels := c.Channels
	if dist.Kind == params.DistOne {
		channels = c.Count
	}
	if c.Procs > channels {
		v.errorf("clients.procs", "%d swarm processes need at least as many channels (got %d): each process owns whole channels", c.Procs, channels)
	}
	if dist.Kind == params.DistSeveral {
		per := max(dist.PerClient, 3)
		if dist.PerClient > 0 {
			per = dist.PerClient
		}
		if per > c.Channels/max(c.Procs, 1) {
			v.errorf("clients.distribution", "several:%d needs at least %d channels per swarm process (channels: %d, procs: %d)", per, per, c.Channels, c.Procs)
		}
		for _, t := range v.targets() {
			if t.t.Profile == ProfileNchan {
				v.errorf("clients.distribution", "the nchan profile (%s) subscribes one channel per connection: use uniform, zipf or one", t.path)
			}
		}
	}
}

type namedTarget struct {
	path string
	t    *Target
}

func (v *validator) targets() []namedTarget {
	ts := []namedTarget{{"target", &v.s.Target}}
	if v.s.CompareWith != nil {
		ts = append(ts, namedTarget{"compare_with", v.s.CompareWith})
	}
	return ts
}

func (v *validator) publishers() {
	p := &v.s.Publishers
	if v.require("publishers.rate", "events/s over all channels") && (p.Rate <= 0 || p.Rate > MaxRate || math.IsNaN(p.Rate)) {
		v.errorf("publishers.rate", "must be positive and at most %d events/s, got %v", MaxRate, p.Rate)
	}
	if v.has("publishers.size") && (p.Size < 1 || p.Size > MaxSize) {
		v.errorf("publishers.size", "%d: want 1 to %d bytes", p.Size, MaxSize)
	}
	if p.Size == 0 {
		p.Size = params.DefaultSize
	}
	if v.has("publishers.in_flight") && (p.InFlight < 1 || p.InFlight > 10_000) {
		v.errorf("publishers.in_flight", "%d: want 1 to 10,000 requests in flight", p.InFlight)
	}
	if p.Pacing == "" {
		p.Pacing = params.PaceConstant
	}
	pace, err := params.ParsePacing(p.Pacing)
	switch {
	case err != nil:
		v.errorf("publishers.pacing", "%s", cleanSwarm(err))
	case pace.Kind == params.PaceLinear && (math.IsNaN(pace.Slope) || math.IsInf(pace.Slope, 0)):
		v.errorf("publishers.pacing", "linear slope must be a finite number")
	case pace.Kind == params.PaceSine && (pace.Period <= 0 || pace.Amplitude < 0 || !(pace.Amplitude < p.Rate)):
		v.errorf("publishers.pacing", "sine needs a positive period and 0 <= amplitude < publishers.rate (%v)", p.Rate)
	}
	switch p.Endpoint {
	case "":
		p.Endpoint = EndpointPub
	case EndpointPub:
	case EndpointHooks:
		for _, t := range v.targets() {
			switch {
			case t.t.Embedded() && (t.t.Broker != BrokerRedis && t.t.Broker != BrokerRedisCluster || t.t.Workers < 1):
				v.errorf("publishers.endpoint", "hooks go through the Redis job queue: %s needs broker: redis (or redis-cluster) and workers: 1 or more", t.path)
			case !t.t.Embedded() && t.t.Profile != ProfileDarktimeHooks:
				v.errorf("publishers.endpoint", "hooks need a darktime server with hooks: set %s.profile: darktime-hooks", t.path)
			}
		}
	default:
		v.errorf("publishers.endpoint", "%q: want pub or hooks", p.Endpoint)
	}
}

// phases checks the phases and returns the run's length (their sum).
func (v *validator) phases() time.Duration {
	s := v.s
	if !v.require("phases", "a list of {name, duration}: warm-up, steady, spike, cool-down...") {
		return 0
	}
	if len(s.Phases) == 0 {
		v.errorf("phases", "no phases: a run is its phases, at least one")
	}
	var run time.Duration
	seen := map[string]int{}
	var publishes float64
	pace, _ := params.ParsePacing(s.Publishers.Pacing)
	for i, ph := range s.Phases {
		p := func(k string) string { return fmt.Sprintf("phases[%d].%s", i, k) }
		if v.require(p("name"), "warm-up, steady, spike, cool-down...") {
			if !nameRE.MatchString(ph.Name) {
				v.errorf(p("name"), "%q: want lower-case letters, digits and -", ph.Name)
			} else if j, dup := seen[ph.Name]; dup {
				v.errorf(p("name"), "%q is the name of phases[%d] too", ph.Name, j)
			}
			seen[ph.Name] = i
		}
		if v.require(p("duration"), "how long the phase lasts, like 30s") && ph.Duration <= 0 {
			v.errorf(p("duration"), "must be positive, got %v", ph.Duration)
		}
		run += max(ph.Duration.D(), 0)
		if v.has(p("rate")) && v.has(p("rate_multiplier")) {
			v.errorf(p("rate_multiplier"), "give rate or rate_multiplier, not both")
		}
		if v.has(p("rate")) && (ph.Rate <= 0 || ph.Rate > MaxRate || math.IsNaN(ph.Rate)) {
			v.errorf(p("rate"), "must be positive and at most %d events/s, got %v", MaxRate, ph.Rate)
		}
		if v.has(p("rate_multiplier")) && (ph.RateMultiplier <= 0 || math.IsInf(ph.RateMultiplier, 0) || math.IsNaN(ph.RateMultiplier)) {
			v.errorf(p("rate_multiplier"), "must be positive, got %v", ph.RateMultiplier)
		}
		rate := s.PhaseRate(i)
		if rate > MaxRate {
			v.errorf(p("rate_multiplier"), "makes %v events/s, over %d", rate, MaxRate)
		}
		if ph.HotChannel != nil {
			if c := *ph.HotChannel; c < 0 || c >= s.Clients.Channels {
				v.errorf(p("hot_channel"), "channel %d does not exist: channels are numbered 0 to %d (clients.channels: %d)", c, s.Clients.Channels-1, s.Clients.Channels)
			}
			rate += s.Publishers.Rate // the other channels keep the base rate
		}
		publishes += pace.UpperBound(rate, ph.Duration.D())
	}
	if run > MaxDuration {
		v.errorf("phases", "the phases last %v, over %v", run, MaxDuration)
	}
	if publishes > MaxPublishes {
		v.errorf("phases", "about %.0f publishes planned, at most %d: shorten the phases or lower the rates", publishes, MaxPublishes)
	}
	return run
}

// PhaseRate is the publish rate of phase i in events/s: its rate, its
// rate_multiplier times publishers.rate, or publishers.rate. With
// hot_channel set it is the hot channel's rate alone.
func (s *Scenario) PhaseRate(i int) float64 {
	ph := s.Phases[i]
	switch {
	case ph.Rate > 0:
		return ph.Rate
	case ph.RateMultiplier > 0:
		return ph.RateMultiplier * s.Publishers.Rate
	}
	return s.Publishers.Rate
}

// HotChannelAt is the hottest channel at offset at from the start of the
// first phase: the hot_channel of the phase under way then, else channel
// 0 (the hottest under zipf; under uniform every channel is as hot).
func (s *Scenario) HotChannelAt(at time.Duration) int {
	var end time.Duration
	for _, ph := range s.Phases {
		end += ph.Duration.D()
		if at < end {
			if ph.HotChannel != nil {
				return *ph.HotChannel
			}
			return 0
		}
	}
	return 0
}

// RunLength is the sum of the phases.
func (s *Scenario) RunLength() time.Duration {
	var d time.Duration
	for _, p := range s.Phases {
		d += p.Duration.D()
	}
	return d
}

// Planned is how long one run against one target takes: the ramp, the
// swarm's settle pause, the phases and the drain. With compare_with the
// experiment is two such runs.
func (s *Scenario) Planned() time.Duration {
	ramp := time.Duration(float64(s.Clients.Count) / s.Clients.Ramp * float64(time.Second))
	return ramp.Round(time.Second) + settle + s.RunLength() + drain
}

func (v *validator) shadow() {
	sh := v.s.Shadow
	if sh == nil {
		return
	}
	if v.require("shadow.percent", "the share of users sent to the candidate, 0 to 100") {
		if bp := sh.Percent * 100; sh.Percent < 0 || sh.Percent > 100 || math.IsNaN(sh.Percent) {
			v.errorf("shadow.percent", "%v: want 0 to 100", sh.Percent)
		} else if math.Abs(bp-math.Round(bp)) > 1e-6 {
			v.errorf("shadow.percent", "%v: at most two decimals (one bucket is 0.01%% of users)", sh.Percent)
		}
	}
	if v.require("shadow.mode", "divert (canary) or mirror (dark launch)") && sh.Mode != ModeDivert && sh.Mode != ModeMirror {
		v.errorf("shadow.mode", "%q: want divert (canary) or mirror (dark launch)", sh.Mode)
	}
	if v.require("shadow.candidate", "embedded (a server darktime starts) or the candidate's URL") && sh.Candidate != CandidateEmbedded {
		v.url("shadow.candidate", sh.Candidate)
	}
	if sh.Defect != "" {
		if sh.Candidate != CandidateEmbedded {
			v.errorf("shadow.defect", "a defect is injected into the embedded candidate: set shadow.candidate: embedded")
		} else if _, err := defect.Parse(sh.Defect); err != nil {
			v.errorf("shadow.defect", "%v", err)
		}
	}
	switch {
	case sh.Canary == "" && sh.Expect != "":
		v.errorf("shadow.expect", "the outcome of a rollout: it needs shadow.canary: PLAN")
	case sh.Canary != "" && sh.Expect == "":
		sh.Expect = ExpectPromoted
	case sh.Canary != "" && sh.Expect != ExpectPromoted && sh.Expect != ExpectRolledBack:
		v.errorf("shadow.expect", "%q: want promoted or rolled_back", sh.Expect)
	}
}

func (v *validator) faults(run time.Duration) {
	s := v.s
	t := s.Target
	killed := map[int]bool{}
	masterKills := map[int]int{} // by shard; -1: the hottest channel's
	for i, f := range s.Faults {
		p := func(k string) string { return fmt.Sprintf("faults[%d].%s", i, k) }
		me := fmt.Sprintf("faults[%d]", i)
		if v.require(p("at"), "when it happens, from the start of the first phase (like 30s)") {
			if f.At < 0 {
				v.errorf(p("at"), "must not be negative, got %v", f.At)
			} else if f.At.D() >= run && run > 0 {
				v.errorf(p("at"), "%v is not before the end of the run: the phases last %v", f.At, run)
			}
		}
		kinds := f.kinds()
		switch len(kinds) {
		case 0:
			v.errorf(me, "no action: want one of kill_node, pause_node, restart_redis, kill_redis_master, kill_redis_link, slow_consumers, storm")
			continue
		case 1:
		default:
			v.errorf(me, "%s: one action per fault; write one fault for each", strings.Join(kinds, " and "))
			continue
		}
		if v.has(p("for")) && f.PauseNode == nil {
			v.errorf(p("for"), "only with pause_node")
		}
		if v.has(p("restart_redis")) && !f.RestartRedis {
			v.errorf(p("restart_redis"), "write restart_redis: true, or leave the fault out")
		}
		if v.has(p("storm")) && !f.Storm {
			v.errorf(p("storm"), "write storm: true, or leave the fault out")
		}
		if v.has(p("kill_redis_master")) && !f.KillRedisMaster {
			v.errorf(p("kill_redis_master"), "write kill_redis_master: true, or leave the fault out")
		}
		if v.has(p("shard")) && !f.KillRedisMaster {
			v.errorf(p("shard"), "only with kill_redis_master")
		}
		node := func(key string, n int) bool {
			if !t.Embedded() {
				v.errorf(p(key), "darktime can only %s nodes it starts: the target is external", strings.TrimSuffix(key, "_node"))
				return false
			}
			if n < 0 || n >= t.Nodes {
				v.errorf(p(key), "node %d does not exist: the target has %d node(s), numbered 0 to %d", n, t.Nodes, t.Nodes-1)
				return false
			}
			return true
		}
		switch {
		case f.KillNode != nil:
			if node("kill_node", *f.KillNode) {
				killed[*f.KillNode] = true
				if len(killed) == t.Nodes {
					v.errorf(p("kill_node"), "kills the last node left: clients need another node to resume on (set target.nodes: %d or more)", t.Nodes+1)
				}
			}
		case f.PauseNode != nil:
			node("pause_node", *f.PauseNode)
			if v.require(p("for"), "how long the node stays paused, like 10s") {
				if f.For <= 0 {
					v.errorf(p("for"), "must be positive, got %v", f.For)
				} else if end := f.At.D() + f.For.D(); end > run && run > 0 {
					v.errorf(p("for"), "the pause ends at %v, after the end of the run (%v)", end, run)
				}
			}
		case f.RestartRedis:
			switch {
			case t.Embedded() && t.Broker == BrokerRedisCluster:
				v.errorf(p("restart_redis"), "restarts the one Redis of broker: redis; on a Redis Cluster kill a master instead (kill_redis_master: true)")
			case !t.Embedded() || t.Broker != BrokerRedis:
				v.errorf(p("restart_redis"), "needs a Redis broker darktime starts: set target.broker: redis")
			}
		case f.KillRedisMaster:
			v.killMaster(i, f, masterKills)
		case f.KillRedisLink != nil:
			if !t.StartsRedis() {
				v.errorf(p("kill_redis_link"), "needs a Redis darktime starts: set target.broker: redis or redis-cluster")
			} else {
				node("kill_redis_link", *f.KillRedisLink)
			}
		case f.SlowConsumers != nil:
			sc := f.SlowConsumers
			q := func(k string) string { return p("slow_consumers." + k) }
			if v.require(q("count"), "how many clients turn slow") && (sc.Count < 1 || sc.Count > s.Clients.Count) {
				v.errorf(q("count"), "%d: want 1 to clients.count (%d)", sc.Count, s.Clients.Count)
			}
			if v.require(q("read_delay"), "the pause before each read, like 100ms") && sc.ReadDelay <= 0 {
				v.errorf(q("read_delay"), "must be positive, got %v", sc.ReadDelay)
			}
		}
	}
}

// killMaster checks fault i, a kill_redis_master: a cluster darktime
// starts, an existing shard, and a replica left to take over each time.
func (v *validator) killMaster(i int, f Fault, kills map[int]int) {
	p := func(k string) string { return fmt.Sprintf("faults[%d].%s", i, k) }
	t := v.s.Target
	if !t.Embedded() || t.Broker != BrokerRedisCluster {
		v.errorf(p("kill_redis_master"), "needs a Redis Cluster darktime starts: set target.broker: redis-cluster")
		return
	}
	shard, which := -1, "the hottest channel's shard"
	if f.Shard != nil {
		shard, which = *f.Shard, fmt.Sprintf("shard %d", *f.Shard)
		if n := t.Redis.Shards; shard < 0 || shard >= n {
			v.errorf(p("shard"), "shard %d does not exist: the cluster has %d shards, numbered 0 to %d by their lowest slot (target.redis.shards)", shard, n, n-1)
			return
		}
	}
	kills[shard]++
	switch replicas := t.Redis.ReplicasPerShard(); {
	case replicas == 0:
		v.errorf(p("kill_redis_master"), "no replica can take over: set target.redis.replicas: 1 or more")
	case kills[shard] > replicas:
		v.errorf(p("kill_redis_master"), "kills the master of %s %d times, but it has %d replica(s) to take over: its slots would be left unserved (set target.redis.replicas: %d)", which, kills[shard], replicas, kills[shard])
	}
}

func (v *validator) thresholds() {
	for i, th := range v.s.Thresholds {
		path, expr := v.thresholdPath(i), th.Gate
		if !v.thresholdForm(i) {
			continue
		}
		g, err := report.ParseGate(expr)
		if err != nil {
			v.errorf(path, "%s", strings.TrimPrefix(unwrapAll(err), report.ErrInput.Error()+": "))
			continue
		}
		v.abortOnFail(i, g)
		if phase, _, ok := report.PhaseMetric(g.Metric); ok {
			found := false
			var names []string
			for _, ph := range v.s.Phases {
				found = found || ph.Name == phase
				names = append(names, ph.Name)
			}
			if !found {
				v.errorf(path, "%s: no phase is named %q (the phases are %s)", g.Metric, phase, strings.Join(names, ", "))
			}
			continue
		}
		m, _ := report.LookupMetric(g.Metric)
		switch m.Needs {
		case "shadow":
			if v.s.Shadow == nil || v.s.Shadow.Mode != ModeMirror {
				v.errorf(path, "%s comes from the shadow proxy's ledger: it needs shadow: with mode: mirror", g.Metric)
			}
		case "faults":
			watched := false
			for _, f := range v.s.Faults {
				watched = watched || f.KillRedisMaster || f.KillRedisLink != nil
			}
			if !watched {
				v.errorf(path, "%s is the recovery of the faults the runner watches: the scenario has no kill_redis_master or kill_redis_link", g.Metric)
			}
		case "stats":
			for _, t := range v.targets() {
				if t.t.Profile == ProfileNchan {
					v.errorf(path, "%s comes from darktime's /stats, which %s (nchan) does not serve", g.Metric, t.path)
				}
			}
		}
	}
}

// unwrapAll keeps the message of an error chain without the gate's
// sentinel in the middle ("gate ...: bad report input: unknown metric").
func unwrapAll(err error) string {
	msg := err.Error()
	if errors.Is(err, report.ErrInput) {
		msg = strings.Replace(msg, report.ErrInput.Error()+": ", "", 1)
	}
	return msg
}

func (v *validator) outputs() {
	o := &v.s.Outputs
	if o.Dir == "" {
		o.Dir = "results/" + v.s.Name
	}
	if !v.has("outputs.json") {
		o.JSON = "report.json"
	}
	seen := map[string]string{}
	for _, f := range []struct{ key, name string }{{"html", o.HTML}, {"junit", o.JUnit}, {"json", o.JSON}} {
		if f.name == "" {
			continue
		}
		if other, dup := seen[f.name]; dup {
			v.errorf("outputs."+f.key, "%q is outputs.%s too", f.name, other)
		}
		seen[f.name] = f.key
	}
}

func (v *validator) limits(run time.Duration) {
	l := v.s.Limits
	if !v.require("limits.max_duration", "every run is bounded: the longest it may take, like 10m") {
		return
	}
	switch {
	case l.MaxDuration <= 0:
		v.errorf("limits.max_duration", "must be positive, got %v", l.MaxDuration)
	case l.MaxDuration.D() > MaxDuration:
		v.errorf("limits.max_duration", "%v: at most %v", l.MaxDuration, MaxDuration)
	case run > 0 && v.s.Clients.Ramp > 0 && v.s.Planned() > l.MaxDuration.D():
		s := v.s
		v.errorf("limits.max_duration", "%v is shorter than the run: about %v (ramp %v, settle %v, phases %v, drain %v); raise it or shorten the run",
			l.MaxDuration, s.Planned(), (s.Planned() - settle - run - drain), settle, run, drain)
	}
}
