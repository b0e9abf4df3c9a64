package live

import (
	"context"
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/swarm"
)

// ownMetrics are the exporter's own counters, for a Registerer of the
// caller's.
type ownMetrics struct {
	requests *prometheus.CounterVec
	retries  prometheus.Counter
}

func newOwnMetrics(reg prometheus.Registerer) (ownMetrics, error) {
	m := ownMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "darktime_live_requests_total",
			Help: "Remote-write requests of the live exporter by outcome: sent, failed, dropped.",
		}, []string{"outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "darktime_live_retries_total",
			Help: "Remote-write attempts repeated after a retryable failure.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	// Several exporters (one per run) may share one Registerer.
	if err := reg.Register(m.requests); err != nil {
		are := prometheus.AlreadyRegisteredError{}
		if !errors.As(err, &are) {
			return m, err
		}
		m.requests = are.ExistingCollector.(*prometheus.CounterVec)
	}
	if err := reg.Register(m.retries); err != nil {
		are := prometheus.AlreadyRegisteredError{}
		if !errors.As(err, &are) {
			return m, err
		}
		m.retries = are.ExistingCollector.(prometheus.Counter)
	}
	return m, nil
}

// For completes l from a run's config: run_id, target (its URL) and part
// (of a split run) when l has none.
func (l Labels) For(cfg swarm.Config) Labels {
	if l.RunID == "" {
		l.RunID = cfg.RunID
	}
	if l.Target == "" {
		l.Target = cfg.Target
	}
	if l.Part == "" && cfg.Part.Count > 1 {
		l.Part = strconv.Itoa(cfg.Part.Index) + "/" + strconv.Itoa(cfg.Part.Count)
	}
	return l
}

// Watch exports each run it is given with an Exporter of c, its labels
// completed from the run's config (Labels.For): the swarm.Watch of
// darktime swarm --remote-write and of its agents. A receiver that fails
// is logged to c.Logger and never fails the run.
func (c Config) Watch() swarm.Watch {
	return func(cfg swarm.Config) (func(swarm.Tick), func(*swarm.Result)) {
		rc := c
		rc.Labels = c.Labels.For(cfg)
		e, err := New(rc)
		if err != nil {
			if c.Logger != nil {
				c.Logger.Error("remote write: not exporting this run", "err", err)
			}
			return nil, nil
		}
		return e.Tick, func(res *swarm.Result) { e.Finish(context.Background(), res) }
	}
}

// Finish is Close, with its outcome logged to the Config's Logger.
func (e *Exporter) Finish(ctx context.Context, res *swarm.Result) {
	if err := e.Close(ctx, res); err != nil {
		e.cfg.Logger.Warn("remote write: " + err.Error())
		return
	}
	st := e.Stats()
	e.cfg.Logger.Info("remote write: every request delivered", "url", e.cfg.URL, "requests", st.Sent, "retries", st.Retries)
}

// AgentWatch is Watch for an agent's runs, labelled agent with the
// agent's name as Serve set it (host-pid by default).
func (c Config) AgentWatch(a *swarm.Agent) swarm.Watch {
	return func(cfg swarm.Config) (func(swarm.Tick), func(*swarm.Result)) {
		ac := c
		ac.Labels.Agent = a.Name
		return ac.Watch()(cfg)
	}
}
