package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/shadow/ledgerfile"
)

// A fleet is several proxy instances behind one load balancer that keep
// one truth through Redis (LEDGER.md, "Several proxy instances"):
//
//   - the rollout state — each route's mode and share, the epoch and the
//     step's name — is one versioned JSON document under
//     darktime:shadow:NAME:state. A step, rollback, percent change or
//     config replace on any instance writes it (an optimistic WATCH/MULTI
//     transaction, so versions and epochs only go up) and PUBLISHes the
//     version on darktime:shadow:NAME:changed; every instance applies a
//     newer version when told, and polls the version every second in case
//     a message was lost (a Redis restart). An instance reads it on start.
//   - every second each instance writes its ledger and its cohorts under
//     darktime:shadow:NAME:instance:ID, expiring after instanceTTL, and
//     scope=fleet reads answer the union of the instances alive.
//
// Redis is never on the user's path: without it the proxy goes on with
// the state it last knew, counts the failures
// (darktime_shadow_fleet_errors_total) and logs when the link fails and
// when it comes back.

// FleetConfig names the fleet's Redis and the fleet.
type FleetConfig struct {
	// Redis is a redis:// or rediss:// URL; empty: no fleet.
	Redis string `yaml:"redis" json:"redis,omitempty"`
	// Name separates fleets sharing one Redis (default "default").
	Name string `yaml:"name" json:"name,omitempty"`
}

// MarshalJSON shows the Redis URL without its password.
func (f FleetConfig) MarshalJSON() ([]byte, error) {
	type plain FleetConfig
	if u, err := url.Parse(f.Redis); err == nil {
		f.Redis = u.Redacted()
	}
	return json.Marshal(plain(f))
}

var fleetName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (f FleetConfig) check() error {
	if f.Redis == "" {
		if f.Name != "" {
			return fieldErr("$.fleet.redis", "fleet %q has no redis URL (redis://host:6379/0)", f.Name)
		}
		return nil
	}
	if _, err := redis.ParseURL(f.Redis); err != nil {
		return fieldErr("$.fleet.redis", "%v", err)
	}
	if f.Name != "" && !fleetName.MatchString(f.Name) {
		return fieldErr("$.fleet.name", "%q: use 1 to 64 letters, digits, '.', '_' or '-'", f.Name)
	}
	return nil
}

// instanceTTL is how long an instance's evidence outlives its last write.
const instanceTTL = 5 * time.Second

// fleetEvery is how often an instance writes its evidence and polls the
// state's version.
const fleetEvery = time.Second

// fleetState is the shared rollout state.
type fleetState struct {
	Version int64     `json:"version"`
	Epoch   int64     `json:"epoch"`
	Step    string    `json:"step"`
	Since   time.Time `json:"since"`
	Writer  string    `json:"writer"` // the instance that wrote it
	fleetShares
	// Rollback is set on the version a rollback wrote: who applies it
	// cuts the candidate's streams of that route.
	Rollback *rollbackOf `json:"rollback,omitempty"`
}

type rollbackOf struct {
	Route *string `json:"route"` // nil: every route
}

// fleetShares are the modes and shares of the routes.
type fleetShares struct {
	Mode    Mode         `json:"mode"`
	Percent float64      `json:"percent"`
	Routes  []routeShare `json:"routes"`
}

type routeShare struct {
	Path    string   `json:"path"`
	Mode    Mode     `json:"mode,omitempty"`
	Percent *float64 `json:"percent,omitempty"`
}

func sharesOf(cfg Config) fleetShares {
	s := fleetShares{Mode: cfg.Mode, Percent: cfg.Percent, Routes: []routeShare{}}
	for _, r := range cfg.Routes {
		s.Routes = append(s.Routes, routeShare{Path: r.Path, Mode: r.Mode, Percent: r.Percent})
	}
	return s
}

// onto is cfg with the shares of s (routes this instance does not have
// are left out).
func (s fleetShares) onto(cfg Config) Config {
	cfg.Mode, cfg.Percent = s.Mode, s.Percent
	cfg.Routes = append([]Route(nil), cfg.Routes...)
	for _, rs := range s.Routes {
		for i := range cfg.Routes {
			if cfg.Routes[i].Path == rs.Path {
				cfg.Routes[i].Mode, cfg.Routes[i].Percent = rs.Mode, rs.Percent
			}
		}
	}
	return cfg
}

// instanceDoc is what an instance writes every second.
type instanceDoc struct {
	ID        string             `json:"id"`
	WrittenAt time.Time          `json:"written_at"`
	Ledger    Report             `json:"ledger"`
	Cohorts   ledgerfile.Cohorts `json:"cohorts"`
}

type fleet struct {
	p                    *Proxy
	kick                 chan struct{} // write the evidence now
	rdb                  *redis.Client
	name                 string
	stateKey, changedKey string
	instancePrefix       string
	down                 atomic.Bool // the last exchange failed (logged once)
}

func newFleet(p *Proxy, c FleetConfig) (*fleet, error) {
	opt, err := redis.ParseURL(c.Redis)
	if err != nil {
		return nil, fmt.Errorf("%w: fleet.redis: %w", ErrInvalidConfig, err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, fleetTimeout, fleetTimeout
	opt.MaxRetries = 1
	name := cmpOr(c.Name, "default")
	prefix := "darktime:shadow:" + name + ":"
	return &fleet{p: p, rdb: redis.NewClient(opt), name: name, kick: make(chan struct{}, 1),
		stateKey: prefix + "state", changedKey: prefix + "changed", instancePrefix: prefix + "instance:"}, nil
}

// failed counts and logs (once per outage) a failed exchange.
func (f *fleet) failed(op string, err error) error {
	f.p.m.fleetErrors.WithLabelValues(op).Inc()
	if f.down.CompareAndSwap(false, true) {
		f.p.log.Warn("shadow fleet: Redis unreachable; going on with the last known state", "op", op, "err", err)
	}
	return fmt.Errorf("%w: %s: %w", ErrFleet, op, err)
}

func (f *fleet) ok() {
	if f.down.CompareAndSwap(true, false) {
		f.p.log.Info("shadow fleet: Redis reachable again")
	}
}

// start reads the state once (an instance that starts later takes the
// fleet's), then subscribes, polls and writes its evidence until
// Shutdown.
func (f *fleet) start() {
	f.sync()
	f.p.wg.Add(2)
	go f.subscribe()
	go f.tick()
}

// read returns the state in Redis; ok false when there is none yet.
func (f *fleet) read(ctx context.Context) (fleetState, bool, error) {
	var fs fleetState
	data, err := f.rdb.Get(ctx, f.stateKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return fs, false, nil
	}
	if err != nil {
		return fs, false, f.failed("read", err)
	}
	if err := json.Unmarshal(data, &fs); err != nil {
		return fs, false, f.failed("read", fmt.Errorf("the state under %s is not JSON: %w", f.stateKey, err))
	}
	return fs, true, nil
}

// sync applies the state in Redis when it is newer than the one in force.
func (f *fleet) sync() {
	ctx, cancel := fleetContext()
	defer cancel()
	fs, ok, err := f.read(ctx)
	if err != nil || !ok {
		return
	}
	f.ok()
	f.p.applyState(fs)
}

// write makes cfg's shares the fleet's state; with step set it starts the
// next epoch under that name (rb: a rollback). The caller holds stepMu.
func (f *fleet) write(cfg Config, step string, rb *rollbackOf) (fleetState, error) {
	ctx, cancel := fleetContext()
	defer cancel()
	var next fleetState
	txf := func(tx *redis.Tx) error {
		// Without a state in Redis (a first write, or a Redis that lost
		// its data) the next version follows the one in force here, so
		// that instances that applied it take the new one.
		e := f.p.epoch.Load()
		cur := fleetState{Version: f.p.applied, Epoch: e.n, Step: e.step, Since: e.since}
		data, err := tx.Get(ctx, f.stateKey).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(data, &cur); err != nil {
				return fmt.Errorf("the state under %s is not JSON: %w", f.stateKey, err)
			}
		}
		next = fleetState{Version: cur.Version + 1, Epoch: cur.Epoch, Step: cur.Step, Since: cur.Since,
			Writer: f.p.InstanceID(), fleetShares: sharesOf(cfg)}
		if step != "" {
			// After this instance than the fleet's last (it rolled back
			// alone while Redis was away), still a new number.
			next.Epoch, next.Step, next.Since, next.Rollback = max(cur.Epoch, e.n)+1, step, time.Now().UTC(), rb
		}
		doc, err := json.Marshal(next)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, f.stateKey, doc, 0)
			pipe.Publish(ctx, f.changedKey, next.Version)
			return nil
		})
		return err
	}
	for range 20 {
		err := f.rdb.Watch(ctx, txf, f.stateKey)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another instance wrote meanwhile: again, on its version
		}
		if err != nil {
			return fleetState{}, f.failed("write", err)
		}
		f.ok()
		return next, nil
	}
	return fleetState{}, f.failed("write", errors.New("the state kept changing under the transaction"))
}

// subscribe applies the state whenever an instance says it changed.
func (f *fleet) subscribe() {
	defer f.p.wg.Done()
	ps := f.rdb.Subscribe(f.p.base, f.changedKey)
	defer ps.Close()
	ch := ps.Channel()
	for {
		select {
		case <-f.p.base.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			f.sync()
		}
	}
}

// tick polls the state's version (pub/sub drops messages while Redis
// restarts) and writes this instance's evidence, every second.
func (f *fleet) tick() {
	defer f.p.wg.Done()
	t := time.NewTicker(fleetEvery)
	defer t.Stop()
	for {
		select {
		case <-f.p.base.Done():
			return
		case <-t.C:
			f.sync()
			f.publishEvidence()
		case <-f.kick:
			f.publishEvidence()
		}
	}
}

func (f *fleet) kickEvidence() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *fleet) publishEvidence() {
	doc := instanceDoc{ID: f.p.InstanceID(), WrittenAt: time.Now().UTC(), Ledger: f.p.Report(), Cohorts: f.p.Cohorts()}
	data, err := json.Marshal(doc)
	if err != nil {
		f.p.log.Error("shadow fleet: cannot encode the evidence", "err", err)
		return
	}
	ctx, cancel := fleetContext()
	defer cancel()
	if err := f.rdb.Set(ctx, f.instancePrefix+doc.ID, data, instanceTTL).Err(); err != nil {
		_ = f.failed("publish", err)
		return
	}
	f.ok()
}

// instances returns the evidence of every live instance but this one.
func (f *fleet) instances(ctx context.Context) ([]instanceDoc, error) {
	var keys []string
	iter := f.rdb.Scan(ctx, 0, f.instancePrefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); k != f.instancePrefix+f.p.InstanceID() {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, f.failed("read", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := f.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, f.failed("read", err)
	}
	var docs []instanceDoc
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // expired between SCAN and MGET
		}
		var d instanceDoc
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			f.p.log.Warn("shadow fleet: an instance's evidence is not JSON; left out", "key", keys[i], "err", err)
			continue
		}
		docs = append(docs, d)
	}
	f.ok()
	return docs, nil
}

// close drops this instance's evidence (it leaves the fleet at once) and
// the connection; called by Shutdown once the goroutines ended.
func (f *fleet) close() {
	ctx, cancel := fleetContext()
	defer cancel()
	_ = f.rdb.Del(ctx, f.instancePrefix+f.p.InstanceID()).Err()
	_ = f.rdb.Close()
}

// applyState puts a fleet state in force here when it is newer than the
// one in force.
func (p *Proxy) applyState(fs fleetState) {
	p.stepMu.Lock()
	defer p.stepMu.Unlock()
	p.applyLocked(fs)
}

func (p *Proxy) applyLocked(fs fleetState) {
	if fs.Version <= p.applied {
		return
	}
	p.applied = fs.Version
	if err := p.Reload(fs.onto(p.Config())); err != nil {
		p.log.Warn("shadow fleet: the fleet's shares do not apply here; keeping this instance's", "version", fs.Version, "err", err)
	}
	// The same number and another start: this instance rolled back alone
	// while Redis was away, and the fleet's epoch is another.
	if e := p.epoch.Load(); fs.Epoch != e.n || fs.Epoch > 0 && !fs.Since.Equal(e.since) {
		p.newEpoch(fs.Epoch, fs.Step, fs.Since)
		if p.fleet != nil {
			p.fleet.kickEvidence() // the fleet's cohorts see this instance on the new epoch at once
		}
		if fs.Rollback != nil {
			n := p.cutCandidates(fs.Rollback.Route)
			p.log.Warn("rolled back by the fleet", "writer", fs.Writer, "cut", n)
		}
	}
}

// FleetReport is the ledger of every live instance of the fleet merged
// (ledgerfile.Merge); it wraps ErrFleet without a fleet or Redis.
func (p *Proxy) FleetReport(ctx context.Context) (Report, []string, error) {
	if p.fleet == nil {
		return Report{}, nil, fmt.Errorf("%w: this proxy has no fleet (fleet.redis, --redis)", ErrFleet)
	}
	docs, err := p.fleet.instances(ctx)
	if err != nil {
		return Report{}, nil, err
	}
	parts, ids := []Report{p.Report()}, []string{p.InstanceID()}
	for _, d := range docs {
		parts, ids = append(parts, d.Ledger), append(ids, d.ID)
	}
	r, err := ledgerfile.Merge(parts...)
	return r, ids, err
}

// FleetCohorts is the cohorts' evidence of the current epoch of every live
// instance on it, summed (ledgerfile.MergeCohorts).
func (p *Proxy) FleetCohorts(ctx context.Context) (ledgerfile.Cohorts, error) {
	if p.fleet == nil {
		return ledgerfile.Cohorts{}, fmt.Errorf("%w: this proxy has no fleet (fleet.redis, --redis)", ErrFleet)
	}
	docs, err := p.fleet.instances(ctx)
	if err != nil {
		return ledgerfile.Cohorts{}, err
	}
	self := p.Cohorts()
	parts := []ledgerfile.Cohorts{self}
	for _, d := range docs {
		if d.Cohorts.Epoch == self.Epoch {
			parts = append(parts, d.Cohorts)
		}
	}
	return ledgerfile.MergeCohorts(parts...)
}
