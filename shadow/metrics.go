package shadow

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus metrics, darktime_shadow_*.
type metrics struct {
	requests      *prometheus.CounterVec // route, decision
	mirroredReqs  *prometheus.CounterVec // target
	mirrorSkipped *prometheus.CounterVec // target, reason
	// mirrorOrderRelaxed: mirrored requests a lane sent before the
	// candidate had answered one the primary had answered first.
	mirrorOrderRelaxed *prometheus.CounterVec // target
	mirroredStreams    *prometheus.CounterVec // target
	activeStreams      *prometheus.GaugeVec   // target
	candidateErrors    *prometheus.CounterVec // target, kind
	circuitOpen        *prometheus.CounterVec // target
	circuitState       *prometheus.GaugeVec   // target
	ledger             *prometheus.CounterVec // target, account
	divertFallbacks    prometheus.Counter
	loops              prometheus.Counter
	// The cohorts of the current epoch (cohorts.go, refs.go).
	epoch              prometheus.Gauge
	cohort             *prometheus.CounterVec   // cohort, kind
	cohortDelay        *prometheus.HistogramVec // cohort
	cohortChannelsFull prometheus.Counter
	publishClockFull   prometheus.Counter
	fleetErrors        *prometheus.CounterVec // op
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "darktime", "shadow"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Requests proxied, by route and decision: primary (not selected), nokey (no user key), divert, mirror."}, []string{"route", "decision"}),
		mirroredReqs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mirrored_requests_total",
			Help: "Ordinary requests mirrored to a target and read to the end."}, []string{"target"}),
		mirrorOrderRelaxed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mirror_order_relaxed_total",
			Help: "Mirrored requests sent before the candidate answered an earlier one the primary had answered first (it took longer than 20ms): the candidate may get them in another order."}, []string{"target"}),
		mirrorSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mirror_skipped_total",
			Help: "Selected requests not mirrored, by reason: unsafe_method, body_too_large, inflight_full, streams_full, circuit_open."}, []string{"target", "reason"}),
		mirroredStreams: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "mirrored_streams_total",
			Help: "Event streams mirrored to a target."}, []string{"target"}),
		activeStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "mirrored_streams_active",
			Help: "Mirrored event streams open now."}, []string{"target"}),
		candidateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "candidate_errors_total",
			Help: "Failures of a target, by kind: connect, timeout, status, read, stream_ended."}, []string{"target", "kind"}),
		circuitOpen: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "circuit_open_total",
			Help: "Requests not sent to a target because its circuit breaker was open."}, []string{"target"}),
		circuitState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "circuit_open",
			Help: "1 while a target's circuit breaker is open."}, []string{"target"}),
		ledger: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ledger_events_total",
			Help: "Reconciled events by account: primary (+1), candidate (-1), matched, missing, extra, duplicated, late, reordered, and the explained part of missing and extra: edge_missing, edge_extra, late_settled (pairs), unmirrored."}, []string{"target", "account"}),
		divertFallbacks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "divert_fallbacks_total",
			Help: "Diverted requests served by the primary because the candidate failed before answering."}),
		loops: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "loops_total",
			Help: "Requests that came back through this proxy (X-Darktime-Hop has its id), answered 508 and not forwarded."}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "epoch",
			Help: "The rollout step (epoch) in force: +1 at every step and rollback."}),
		cohort: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cohort_total",
			Help: "Cohort evidence by cohort (primary, candidate, baseline) and kind: streams, errors, reconnects, events (observed on reference and diverted streams), and for diverted streams missing, extra, duplicated (LEDGER.md, Cohorts)."}, []string{"cohort", "kind"}),
		cohortDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "cohort_delay_seconds",
			Help:    "Delivery delay of events by cohort: arrival minus the proxy's send of the event's publish to the cohort's world when it relayed one, else minus the first sighting on a reference primary stream of the channel.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"cohort"}),
		cohortChannelsFull: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cohort_channels_full_total",
			Help: "Streams not observed for the cohorts because 10000 channels were tracked already, and reference events not observed because their channel had 100000 in its settle window."}),
		publishClockFull: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "publish_clock_full_total",
			Help: "Publishes the proxy relayed whose send time was not remembered because 100000 sends to that world were in the settle window already (their events' delays count from the first sighting)."}),
		fleetErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fleet_errors_total",
			Help: "Failed exchanges with the fleet's Redis, by operation: read, write, publish, subscribe."}, []string{"op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.mirroredReqs, m.mirrorSkipped, m.mirrorOrderRelaxed, m.mirroredStreams, m.activeStreams,
			m.candidateErrors, m.circuitOpen, m.circuitState, m.ledger, m.divertFallbacks, m.loops,
			m.epoch, m.cohort, m.cohortDelay, m.cohortChannelsFull, m.publishClockFull, m.fleetErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("shadow: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) addLedger(target string, t tally) {
	for _, a := range [...]struct {
		name string
		n    int64
	}{
		{"primary", t.Primary}, {"candidate", t.Candidate}, {"matched", t.Matched}, {"missing", t.Missing},
		{"extra", t.Extra}, {"duplicated", t.Duplicated}, {"late", t.Late}, {"reordered", t.Reordered},
		{"edge_missing", t.EdgeMissing}, {"edge_extra", t.EdgeExtra}, {"late_settled", t.LateSettled}, {"unmirrored", t.Unmirrored},
	} {
		if a.n != 0 {
			m.ledger.WithLabelValues(target, a.name).Add(float64(a.n))
		}
	}
}
