package shadow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A step is one stage of a progressive rollout (the canary controller's
// plan): a mode and a share of users for one route. Each step, and each
// rollback, starts a new epoch, whose cohorts' evidence starts over.

// Step is the body of POST /_darktime/step.
type Step struct {
	Name    string  `json:"name"`
	Mode    Mode    `json:"mode"`
	Percent float64 `json:"percent"`
	// Route is a configured route's path; "" is the default route.
	Route string `json:"route"`
}

// StepResult is the answer of POST /_darktime/step and /rollback.
type StepResult struct {
	Epoch  int64  `json:"epoch"`
	Step   string `json:"step"`
	Config Config `json:"config"`
}

// RollbackStep names the epoch a rollback starts.
const RollbackStep = "rollback"

// ErrFleet is wrapped by the errors of exchanges with the fleet's Redis
// (the admin API answers 503).
var ErrFleet = errors.New("shadow fleet unavailable")

// withStep is cfg with s applied to its route, validated.
func withStep(cfg Config, s Step) (Config, error) {
	switch s.Mode {
	case ModeDivert, ModeMirror, ModeOff:
	default:
		return cfg, fmt.Errorf("%w: mode %q is not divert, mirror or off", ErrInvalidConfig, s.Mode)
	}
	if _, err := basisPoints("$.percent", s.Percent); err != nil {
		return cfg, err
	}
	cfg.Routes = append([]Route(nil), cfg.Routes...)
	i, err := routeIndex(cfg.Routes, s.Route)
	if err != nil {
		return cfg, err
	}
	if i < 0 {
		cfg.Mode, cfg.Percent = s.Mode, s.Percent
	} else {
		pc := s.Percent
		cfg.Routes[i].Mode, cfg.Routes[i].Percent = s.Mode, &pc
	}
	return cfg, cfg.Validate()
}

// routeIndex is the index of the route of path in rs, -1 for the default
// route ("", or "/" when no route has that path).
func routeIndex(rs []Route, path string) (int, error) {
	if path == "" {
		return -1, nil
	}
	for i, r := range rs {
		if r.Path == path {
			return i, nil
		}
	}
	if path == "/" {
		return -1, nil
	}
	return 0, fmt.Errorf("%w: no route with path %q", ErrInvalidConfig, path)
}

// withRollback is cfg with the share of route (every route's when nil)
// at 0.
func withRollback(cfg Config, route *string) (Config, error) {
	cfg.Routes = append([]Route(nil), cfg.Routes...)
	zero := func(i int) {
		pc := 0.0
		cfg.Routes[i].Percent = &pc
	}
	if route == nil {
		cfg.Percent = 0
		for i := range cfg.Routes {
			zero(i)
		}
		return cfg, nil
	}
	i, err := routeIndex(cfg.Routes, *route)
	if err != nil {
		return cfg, err
	}
	if i < 0 {
		cfg.Percent = 0
	} else {
		zero(i)
	}
	return cfg, nil
}

// Step applies a step: the route's mode and share, and a new epoch named
// s.Name. With a fleet it is written to Redis first (and applied by
// every instance); when Redis cannot be reached nothing changes and the
// error wraps ErrFleet.
func (p *Proxy) Step(s Step) (StepResult, error) {
	if s.Name == "" {
		s.Name = string(s.Mode) + "-" + strconv.FormatFloat(s.Percent, 'f', -1, 64)
	}
	p.stepMu.Lock()
	defer p.stepMu.Unlock()
	cfg, err := withStep(p.Config(), s)
	if err != nil {
		return StepResult{}, err
	}
	if p.fleet != nil {
		fs, err := p.fleet.write(cfg, s.Name, nil)
		if err != nil {
			return StepResult{}, err
		}
		p.applyLocked(fs)
		return p.stepResult(), nil
	}
	if err := p.Reload(cfg); err != nil {
		return StepResult{}, err
	}
	p.newEpoch(p.epoch.Load().n+1, s.Name, p.now())
	return p.stepResult(), nil
}

// Rollback sets the share of route (every route's when nil) to 0 at once
// and cuts the candidate's streams there — diverted users reconnect to
// the primary, mirrors stop — without touching a primary stream; a new
// epoch "rollback" begins. With a fleet it is written to Redis too, so
// every instance does the same; when Redis cannot be reached this
// instance rolls back all the same and the error wraps ErrFleet.
func (p *Proxy) Rollback(route *string) (StepResult, error) {
	p.stepMu.Lock()
	defer p.stepMu.Unlock()
	cfg, err := withRollback(p.Config(), route)
	if err != nil {
		return StepResult{}, err
	}
	if p.fleet != nil {
		fs, ferr := p.fleet.write(cfg, RollbackStep, &rollbackOf{Route: route})
		if ferr == nil {
			p.applyLocked(fs)
			return p.stepResult(), nil
		}
		err = ferr
	}
	if rerr := p.Reload(cfg); rerr != nil {
		return StepResult{}, rerr // a share of 0 is always valid: shut down
	}
	e := p.newEpoch(p.epoch.Load().n+1, RollbackStep, p.now())
	n := p.cutCandidates(route)
	p.log.Warn("rolled back", "route", route, "cut", n)
	if err != nil {
		err = fmt.Errorf("rolled back on this instance only (epoch %d); %w", e.n, err)
	}
	return p.stepResult(), err
}

func (p *Proxy) stepResult() StepResult {
	e := p.epoch.Load()
	return StepResult{Epoch: e.n, Step: e.step, Config: p.Config()}
}

// shareChanged tells the fleet of a share or config changed here (the
// percent endpoint, a config replaced); without a fleet it does nothing.
func (p *Proxy) shareChanged() error {
	if p.fleet == nil {
		return nil
	}
	p.stepMu.Lock()
	defer p.stepMu.Unlock()
	fs, err := p.fleet.write(p.Config(), "", nil)
	if err != nil {
		return fmt.Errorf("in force on this instance only: %w", err)
	}
	p.applied = max(p.applied, fs.Version)
	return nil
}

// fleetTimeout bounds one exchange with the fleet's Redis.
const fleetTimeout = 2 * time.Second

func fleetContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), fleetTimeout)
}
