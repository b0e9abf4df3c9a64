package live

import (
	"fmt"
	"math"
	"slices"
	"strings"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/darktime/darktime/swarm"
)

// The series' names (README "Live metrics").
const (
	namespace = "darktime_swarm_"

	MetricConnected       = namespace + "clients_connected_total"
	MetricFailed          = namespace + "clients_failed_total"
	MetricPlanned         = namespace + "clients_planned"
	MetricOpen            = namespace + "connections_open"
	MetricConnects        = namespace + "connects_total"
	MetricReconnects      = namespace + "reconnects_total"
	MetricDrops           = namespace + "drops_total"
	MetricEvents          = namespace + "events_received_total"
	MetricDuplicated      = namespace + "events_duplicated_total"
	MetricReordered       = namespace + "events_reordered_total"
	MetricPublishesOK     = namespace + "publishes_ok_total"
	MetricPublishesFailed = namespace + "publishes_failed_total"
	MetricErrors          = namespace + "errors_total"
	MetricDelivery        = namespace + "delivery_latency_seconds"
	MetricConnect         = namespace + "connect_duration_seconds"
	MetricPublish         = namespace + "publish_latency_seconds"
	MetricPhase           = namespace + "phase"
	MetricDropped         = namespace + "remote_write_dropped_total"
	// The ledger's totals, in the last request only: they are known once
	// the run ended.
	MetricCredit = namespace + "ledger_credit_total"
	MetricDebit  = namespace + "ledger_debit_total"
	MetricLost   = namespace + "ledger_lost_total"
	MetricExtra  = namespace + "ledger_extra_total"
)

// runMetrics are one run's series, cumulative from its start, in a
// registry of their own.
type runMetrics struct {
	reg    *prometheus.Registry
	labels prometheus.Labels

	connects, events, duplicated, reordered, pubOK, pubFailed, errs prometheus.Counter
	connected, failed, reconnects, drops                            prometheus.Counter
	dropped                                                         prometheus.Counter
	open, planned                                                   prometheus.Gauge
	hists                                                           map[string]prometheus.Histogram
	last                                                            swarm.Totals

	// phase is the run's current phase; stale the ones it left since the
	// last request, which gets a staleness marker for each.
	phase string
	stale []string
}

func newRunMetrics(l Labels) *runMetrics {
	m := &runMetrics{reg: prometheus.NewRegistry(), labels: prometheus.Labels{}, hists: map[string]prometheus.Histogram{}}
	for _, p := range l.pairs() {
		m.labels[p[0]] = p[1]
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: m.labels})
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: m.labels})
		m.reg.MustRegister(g)
		return g
	}
	m.connected = counter(MetricConnected, "Clients whose first connect succeeded.")
	m.failed = counter(MetricFailed, "Clients that gave up (a non-SSE answer).")
	m.connects = counter(MetricConnects, "Successful connects, reconnects included.")
	m.reconnects = counter(MetricReconnects, "Reconnects after a drop or a storm cut.")
	m.drops = counter(MetricDrops, "Open streams the server or the network ended.")
	m.events = counter(MetricEvents, "Measured events received, duplicates included (the ledger's debits).")
	m.duplicated = counter(MetricDuplicated, "Events received more than once.")
	m.reordered = counter(MetricReordered, "Events received out of order.")
	m.pubOK = counter(MetricPublishesOK, "Publish requests answered 2xx.")
	m.pubFailed = counter(MetricPublishesFailed, "Publish requests that failed.")
	m.errs = counter(MetricErrors, "Connect and stream errors.")
	m.dropped = counter(MetricDropped, "Remote-write requests of this run dropped from the exporter's full queue.")
	m.open = gauge(MetricOpen, "Connections open.")
	m.planned = gauge(MetricPlanned, "Clients of this part of the run.")
	for name, h := range map[string]struct{ metric, help string }{
		swarm.HistDelivery: {MetricDelivery, "Publish (intended send time) to receive, every delivery."},
		swarm.HistConnect:  {MetricConnect, "Dial to response head, every connect."},
		swarm.HistPublish:  {MetricPublish, "Intended send time to publish response, every publish request."},
	} {
		// Native only (no classic buckets) at a fixed resolution: no
		// bucket limit, so every request has the same schema.
		m.hists[name] = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: h.metric, Help: h.help, ConstLabels: m.labels,
			NativeHistogramBucketFactor: BucketFactor,
		})
		m.reg.MustRegister(m.hists[name])
	}
	return m
}

// tick adds one second of the run.
func (m *runMetrics) tick(t swarm.Tick) {
	s := t.Second
	for _, c := range []struct {
		c prometheus.Counter
		n int64
	}{
		{m.connects, s.Connects}, {m.events, s.Events}, {m.duplicated, s.Duplicated}, {m.reordered, s.Reordered},
		{m.pubOK, s.PublishesOK}, {m.pubFailed, s.PublishesFailed}, {m.errs, s.Errors},
		{m.connected, t.Clients.Connected - m.last.Connected}, {m.failed, t.Clients.Failed - m.last.Failed},
		{m.reconnects, t.Clients.Reconnects - m.last.Reconnects}, {m.drops, t.Clients.Drops - m.last.Drops},
	} {
		if c.n > 0 {
			c.c.Add(float64(c.n))
		}
	}
	m.last = t.Clients
	m.open.Set(float64(s.Open))
	m.planned.Set(float64(t.Clients.Planned))
	for name, h := range t.Histograms {
		if ph, ok := m.hists[name]; ok && h != nil {
			observe(ph, h)
		}
	}
	if t.Phase != m.phase {
		if m.phase != "" {
			m.stale = append(m.stale, m.phase)
		}
		m.phase = t.Phase
	}
}

// observe feeds an HdrHistogram (µs) into a native histogram (s): every
// recorded value once, at the middle of its HdrHistogram bucket (0.1%
// wide at 3 significant figures, far finer than the native buckets).
func observe(into prometheus.Histogram, h *hdrhistogram.Histogram) {
	if h.TotalCount() == 0 {
		return
	}
	for _, b := range h.Distribution() {
		v := (float64(b.From) + float64(b.To)) / 2 / 1e6
		for range b.Count {
			into.Observe(v)
		}
	}
}

// result adds what only the end of the run knows: the ledger's totals.
func (m *runMetrics) result(res *swarm.Result) {
	if res.Ledger == nil {
		return
	}
	tot := res.Ledger.Totals()
	for _, c := range []struct {
		name, help string
		n          int64
	}{
		{MetricCredit, "Deliveries owed (+1 each): one per subscribed session per successful publish.", tot.Credit},
		{MetricDebit, "Deliveries received (-1 each).", tot.Debit},
		{MetricLost, "Deliveries owed and never received.", tot.Lost},
		{MetricExtra, "Deliveries received that no successful publish owed.", tot.Extra},
	} {
		ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: c.name, Help: c.help, ConstLabels: m.labels})
		ctr.Add(float64(c.n))
		if err := m.reg.Register(ctr); err != nil {
			return // a second result: the first stands
		}
	}
}

// gather is the run's series as one write request, every sample stamped
// ts (Unix ms).
func (m *runMetrics) gather(ts int64) (*prompb.WriteRequest, error) {
	families, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	req := &prompb.WriteRequest{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			series := prompb.TimeSeries{Labels: seriesLabels(f.GetName(), mt.GetLabel(), nil)}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				series.Samples = []prompb.Sample{{Value: mt.GetCounter().GetValue(), Timestamp: ts}}
			case dto.MetricType_GAUGE:
				series.Samples = []prompb.Sample{{Value: mt.GetGauge().GetValue(), Timestamp: ts}}
			case dto.MetricType_HISTOGRAM:
				h, err := nativeHistogram(mt.GetHistogram(), ts)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.GetName(), err)
				}
				series.Histograms = []prompb.Histogram{h}
			default:
				return nil, fmt.Errorf("%s: unexpected metric type %v", f.GetName(), f.GetType())
			}
			req.Timeseries = append(req.Timeseries, series)
		}
	}
	var pairs []*dto.LabelPair
	for name, v := range m.labels {
		pairs = append(pairs, &dto.LabelPair{Name: &name, Value: &v})
	}
	phase := func(name string, v float64) prompb.TimeSeries {
		return prompb.TimeSeries{
			Labels:  seriesLabels(MetricPhase, pairs, []prompb.Label{{Name: "phase", Value: name}}),
			Samples: []prompb.Sample{{Value: v, Timestamp: ts}},
		}
	}
	for _, p := range m.stale {
		if p != m.phase {
			req.Timeseries = append(req.Timeseries, phase(p, math.Float64frombits(value.StaleNaN)))
		}
	}
	m.stale = nil
	if m.phase != "" {
		req.Timeseries = append(req.Timeseries, phase(m.phase, 1))
	}
	return req, nil
}

// seriesLabels are a series' labels, __name__ included, sorted by name as
// remote write requires.
func seriesLabels(name string, pairs []*dto.LabelPair, extra []prompb.Label) []prompb.Label {
	out := make([]prompb.Label, 0, len(pairs)+len(extra)+1)
	out = append(out, prompb.Label{Name: "__name__", Value: name})
	for _, p := range pairs {
		out = append(out, prompb.Label{Name: p.GetName(), Value: p.GetValue()})
	}
	out = append(out, extra...)
	slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// nativeHistogram is client_golang's native histogram as remote write's:
// the same schema, zero bucket and delta-encoded spans.
func nativeHistogram(h *dto.Histogram, ts int64) (prompb.Histogram, error) {
	if h.Schema == nil {
		return prompb.Histogram{}, fmt.Errorf("not a native histogram")
	}
	spans := func(in []*dto.BucketSpan) []prompb.BucketSpan {
		out := make([]prompb.BucketSpan, 0, len(in))
		for _, s := range in {
			out = append(out, prompb.BucketSpan{Offset: s.GetOffset(), Length: s.GetLength()})
		}
		return out
	}
	return prompb.Histogram{
		Count:          &prompb.Histogram_CountInt{CountInt: h.GetSampleCount()},
		Sum:            h.GetSampleSum(),
		Schema:         h.GetSchema(),
		ZeroThreshold:  h.GetZeroThreshold(),
		ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: h.GetZeroCount()},
		NegativeSpans:  spans(h.GetNegativeSpan()),
		NegativeDeltas: h.GetNegativeDelta(),
		PositiveSpans:  spans(h.GetPositiveSpan()),
		PositiveDeltas: h.GetPositiveDelta(),
		Timestamp:      ts,
	}, nil
}
