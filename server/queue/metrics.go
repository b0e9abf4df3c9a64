package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are this process's counters plus gauges read from Redis at
// scrape time. The counters are per process (sum them across processes);
// the shared totals are in Stats.
type metrics struct {
	q *Queue

	enqueued, rejected, acked, failed, retried, deadLettered, replayed, redisErrors prometheus.Counter

	depth, inFlight, dead, statsUp *prometheus.Desc
}

func newMetrics(q *Queue, name string) *metrics {
	labels := prometheus.Labels{"queue": name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "darktime", Subsystem: "queue", Name: n, Help: help, ConstLabels: labels,
		})
	}
	gauge := func(n, help string) *prometheus.Desc {
		return prometheus.NewDesc("darktime_queue_"+n, help, nil, labels)
	}
	return &metrics{
		q:            q,
		enqueued:     counter("enqueued_total", "Jobs this process enqueued."),
		rejected:     counter("rejected_total", "Jobs this process could not enqueue because the queue was full."),
		acked:        counter("acked_total", "Jobs this process acked."),
		failed:       counter("failed_total", "Fail calls by this process that reached Redis."),
		retried:      counter("retried_total", "Jobs this process redelivered after their visibility timeout or re-added on Fail."),
		deadLettered: counter("dead_lettered_total", "Jobs this process moved to the dead-letter stream."),
		replayed:     counter("replayed_total", "Dead letters this process moved back to the queue."),
		redisErrors:  counter("redis_errors_total", "Queue operations of this process that failed in Redis."),
		depth:        gauge("depth", "Unclaimed jobs (shared by all processes)."),
		inFlight:     gauge("in_flight", "Claimed, unacked jobs (shared by all processes)."),
		dead:         gauge("dead", "Entries in the dead-letter stream (shared by all processes)."),
		statsUp:      gauge("stats_up", "1 if the last scrape could read the queue's state from Redis."),
	}
}

func (m *metrics) counters() []prometheus.Counter {
	return []prometheus.Counter{m.enqueued, m.rejected, m.acked, m.failed, m.retried, m.deadLettered, m.replayed, m.redisErrors}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.counters() {
		ch <- c.Desc()
	}
	ch <- m.depth
	ch <- m.inFlight
	ch <- m.dead
	ch <- m.statsUp
}

// Collect implements prometheus.Collector; it reads the gauges from Redis.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.counters() {
		ch <- c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := m.q.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(m.statsUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.statsUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(m.inFlight, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(m.dead, prometheus.GaugeValue, float64(s.Dead))
}

// Collector exports the queue's metrics, labelled queue=<Name>: counters
// of this process's operations (darktime_queue_*_total) and gauges read
// from Redis at scrape time (darktime_queue_depth, _in_flight, _dead,
// _stats_up). Register it with your own registry, never the global one, or
// set Config.Registerer.
func (q *Queue) Collector() prometheus.Collector { return q.metrics }
