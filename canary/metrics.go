package canary

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/shadow/judge"
)

// metrics are the canary's Prometheus metrics.
type metrics struct {
	step       prometheus.Gauge
	verdict    *prometheus.GaugeVec
	judgements *prometheus.CounterVec
	checkValue *prometheus.GaugeVec
	checkP     *prometheus.GaugeVec
	events     *prometheus.GaugeVec
	outcome    *prometheus.GaugeVec
}

var decisions = []judge.Decision{judge.Promote, judge.Hold, judge.Rollback}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		step: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "darktime_canary_step", Help: "The step in progress, from 1 (0 before the first)."}),
		verdict: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "darktime_canary_verdict", Help: "1 for the step's latest decision (promote, hold, rollback), 0 for the others."},
			[]string{"step", "decision"}),
		judgements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "darktime_canary_judgements_total", Help: "Judgements of each step, by decision."},
			[]string{"step", "decision"}),
		checkValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "darktime_canary_check_value", Help: "The latest value of each check of the judge (see the check's test)."},
			[]string{"step", "check"}),
		checkP: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "darktime_canary_check_p", Help: "The latest p-value of each check that is a test (-1 when none)."},
			[]string{"step", "check"}),
		events: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "darktime_canary_events", Help: "Reconciled events of each cohort in the step's epoch, at the latest judgement."},
			[]string{"step", "cohort"}),
		outcome: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "darktime_canary_outcome", Help: "1 for the rollout's outcome once it ends (promoted, rolled_back, interrupted, unreachable, refused)."},
			[]string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.step, m.verdict, m.judgements, m.checkValue, m.checkP, m.events, m.outcome} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("canary metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) judged(step string, v judge.Verdict, in judge.Input) {
	for _, d := range decisions {
		val := 0.0
		if d == v.Decision {
			val = 1
		}
		m.verdict.WithLabelValues(step, string(d)).Set(val)
	}
	m.judgements.WithLabelValues(step, string(v.Decision)).Inc()
	for _, c := range v.Checks {
		m.checkValue.WithLabelValues(step, c.Name).Set(c.Value)
		m.checkP.WithLabelValues(step, c.Name).Set(c.P)
	}
	m.events.WithLabelValues(step, "primary").Set(float64(in.Primary.Events))
	m.events.WithLabelValues(step, "candidate").Set(float64(in.Candidate.Events))
	if in.Baseline != nil {
		m.events.WithLabelValues(step, "baseline").Set(float64(in.Baseline.Events))
	}
}

func (m *metrics) ended(o Outcome) {
	for _, each := range outcomes {
		val := 0.0
		if each == o {
			val = 1
		}
		m.outcome.WithLabelValues(string(each)).Set(val)
	}
}
