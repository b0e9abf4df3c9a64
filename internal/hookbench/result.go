package hookbench

import (
	"fmt"
	"sort"
	"strings"
)

// ConfigEcho is the Config a Result was measured with, defaults filled in.
type ConfigEcho struct {
	Target          string    `json:"target"`
	Subscribers     int       `json:"subscribers"`
	Phase           Phase     `json:"phase"`
	Jobs            int       `json:"jobs"`
	Batch           int       `json:"batch"`
	Posters         int       `json:"posters"`
	RateJobsPerSec  float64   `json:"rate_jobs_per_s"`
	DurationSeconds float64   `json:"duration_seconds"`
	LatencyBatch    int       `json:"latency_batch"`
	Processes       []Process `json:"processes,omitempty"`
	ThreadPrefix    string    `json:"thread_prefix"`
}

func echoConfig(c Config) ConfigEcho {
	return ConfigEcho{
		Target:          c.Target,
		Subscribers:     c.Subscribers,
		Phase:           c.Phase,
		Jobs:            c.Jobs,
		Batch:           c.Batch,
		Posters:         c.Posters,
		RateJobsPerSec:  c.Rate,
		DurationSeconds: c.Duration.Seconds(),
		LatencyBatch:    c.LatencyBatch,
		Processes:       c.Processes,
		ThreadPrefix:    c.ThreadPrefix,
	}
}

// Result is what one Run measured. Latencies are in milliseconds; a phase
// that did not run is nil.
type Result struct {
	Config ConfigEcho `json:"config"`

	SubscribersConnected int    `json:"subscribers_connected"`
	SubscribersDropped   int    `json:"subscribers_dropped"`
	DropErrorSample      string `json:"drop_error_sample,omitempty"`
	// ForeignEvents are events that did not come from this run's hooks or
	// arrived on the wrong thread.
	ForeignEvents int64 `json:"foreign_events"`

	Throughput *ThroughputResult `json:"throughput,omitempty"`
	Latency    *LatencyResult    `json:"latency,omitempty"`

	DurationSeconds float64 `json:"duration_seconds"`
}

// ProcessCPU is one process's CPU time over a phase.
type ProcessCPU struct {
	Name         string  `json:"name"`
	PID          int     `json:"pid,omitempty"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	MicrosPerJob float64 `json:"cpu_us_per_job"`
	Cores        float64 `json:"cores"` // average cores busy
}

// Delivery accounts the events of a phase's hooks: each accepted hook
// must arrive once, on its thread.
type Delivery struct {
	EventsExpected   int64 `json:"events_expected"`
	EventsReceived   int64 `json:"events_received"`
	EventsLost       int64 `json:"events_lost"`
	EventsDuplicated int64 `json:"events_duplicated"`
	EventsUnexpected int64 `json:"events_unexpected"` // of hooks not answered 202
}

// QueueLedger is the queue's side of a phase, from GET /queue/stats.
type QueueLedger struct {
	Acked        int64 `json:"acked"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"dead_lettered"`
	Imbalance    int64 `json:"imbalance"`  // at the end; 0 when every job is accounted for
	MaxQueued    int64 `json:"max_queued"` // most jobs queued or in flight at a poll
}

// ThroughputResult is the throughput phase: Jobs hooks as fast as possible.
type ThroughputResult struct {
	Jobs    int `json:"jobs"`
	Batch   int `json:"batch"`
	Posters int `json:"posters"`

	HooksAccepted   int64            `json:"hooks_accepted"`
	HooksFailed     int64            `json:"hooks_failed"`
	Requests        int64            `json:"requests"`
	RequestsFailed  int64            `json:"requests_failed"`
	RequestsRetried int64            `json:"requests_retried"` // 503s posted again
	RequestErrors   map[string]int64 `json:"request_errors,omitempty"`
	// Request latency is the swarm's publish histogram: from when the
	// request was built to its answer, 503s posted again included.
	RequestP50Ms float64 `json:"request_p50_ms"`
	RequestP99Ms float64 `json:"request_p99_ms"`

	// PostSeconds runs from the first post to the last answer; Seconds to
	// the poll that saw the last ack.
	PostSeconds        float64 `json:"post_seconds"`
	AcceptedJobsPerSec float64 `json:"accepted_jobs_per_s"`
	Seconds            float64 `json:"seconds"`
	JobsPerSec         float64 `json:"jobs_per_s"`

	QueueLedger
	Delivery
	// Hook→wire latency while saturated: queueing, not service time.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	LatencyMaxMs float64 `json:"latency_max_ms"`

	Processes []ProcessCPU `json:"processes,omitempty"`
	Client    ProcessCPU   `json:"client"`
}

// LatencyResult is the latency phase: a constant rate for a duration.
type LatencyResult struct {
	RateJobsPerSec        float64 `json:"rate_jobs_per_s"`
	OfferedJobsPerSec     float64 `json:"offered_jobs_per_s"`
	Batch                 int     `json:"batch"`
	OfferedRequestsPerSec float64 `json:"offered_requests_per_s"`
	DurationSeconds       float64 `json:"duration_seconds"`

	HooksAccepted      int64            `json:"hooks_accepted"`
	HooksFailed        int64            `json:"hooks_failed"`
	AcceptedJobsPerSec float64          `json:"accepted_jobs_per_s"`
	Requests           int64            `json:"requests"`
	RequestsFailed     int64            `json:"requests_failed"`
	RequestErrors      map[string]int64 `json:"request_errors,omitempty"`
	// Request latency is the swarm's publish histogram: from the request's
	// intended send time (the pacer's) to its answer.
	RequestP50Ms float64 `json:"request_p50_ms"`
	RequestP99Ms float64 `json:"request_p99_ms"`
	RequestMaxMs float64 `json:"request_max_ms"`

	QueueLedger
	Delivery
	// Hook→wire: from the hook's intended send time (the pacer's, so a
	// slow server cannot hide its delay) to the read that carried its event.
	LatencySamples int64   `json:"latency_samples"`
	LatencyP50Ms   float64 `json:"latency_p50_ms"`
	LatencyP90Ms   float64 `json:"latency_p90_ms"`
	LatencyP99Ms   float64 `json:"latency_p99_ms"`
	LatencyP999Ms  float64 `json:"latency_p999_ms"`
	LatencyMaxMs   float64 `json:"latency_max_ms"`
	LatencyMeanMs  float64 `json:"latency_mean_ms"`

	Processes []ProcessCPU `json:"processes,omitempty"`
	Client    ProcessCPU   `json:"client"`
}

// String is a human-readable summary of r.
func (r *Result) String() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "target %s: %d subscribers (%d connected, %d dropped), one per thread; %d foreign events\n",
		c.Target, c.Subscribers, r.SubscribersConnected, r.SubscribersDropped, r.ForeignEvents)
	if r.DropErrorSample != "" {
		fmt.Fprintf(&b, "           first drop: %s\n", r.DropErrorSample)
	}
	if t := r.Throughput; t != nil {
		fmt.Fprintf(&b, "throughput: %d jobs in batches of %d from %d posters\n", t.Jobs, t.Batch, t.Posters)
		fmt.Fprintf(&b, "  jobs/s:   %.0f (first post to last ack, %.2fs); accepted %.0f/s (posting took %.2fs)\n",
			t.JobsPerSec, t.Seconds, t.AcceptedJobsPerSec, t.PostSeconds)
		writeRequests(&b, t.HooksAccepted, t.HooksFailed, t.Requests, t.RequestsFailed, t.RequestErrors)
		fmt.Fprintf(&b, "            request p50 %.2f ms, p99 %.2f ms; %d re-posted after 503\n", t.RequestP50Ms, t.RequestP99Ms, t.RequestsRetried)
		writeLedger(&b, t.QueueLedger, t.Delivery)
		fmt.Fprintf(&b, "  latency:  p50 %.2f ms, p99 %.2f ms, max %.2f ms (saturated: mostly queueing)\n", t.LatencyP50Ms, t.LatencyP99Ms, t.LatencyMaxMs)
		writeCPU(&b, t.Processes, t.Client)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, "latency:    %.0f jobs/s offered in batches of %d (%.0f requests/s) for %gs; %.0f accepted/s\n",
			l.OfferedJobsPerSec, l.Batch, l.OfferedRequestsPerSec, l.DurationSeconds, l.AcceptedJobsPerSec)
		writeRequests(&b, l.HooksAccepted, l.HooksFailed, l.Requests, l.RequestsFailed, l.RequestErrors)
		fmt.Fprintf(&b, "            request p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", l.RequestP50Ms, l.RequestP99Ms, l.RequestMaxMs)
		writeLedger(&b, l.QueueLedger, l.Delivery)
		fmt.Fprintf(&b, "  hook→wire: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms (%d samples)\n",
			l.LatencyP50Ms, l.LatencyP90Ms, l.LatencyP99Ms, l.LatencyP999Ms, l.LatencyMaxMs, l.LatencySamples)
		writeCPU(&b, l.Processes, l.Client)
	}
	fmt.Fprintf(&b, "run took %.1fs\n", r.DurationSeconds)
	return b.String()
}

func writeRequests(b *strings.Builder, accepted, failed, requests, requestsFailed int64, errs map[string]int64) {
	fmt.Fprintf(b, "  hooks:    %d accepted, %d failed; %d requests, %d failed\n", accepted, failed, requests, requestsFailed)
	msgs := make([]string, 0, len(errs))
	for msg := range errs {
		msgs = append(msgs, msg)
	}
	sort.Strings(msgs)
	for _, msg := range msgs {
		fmt.Fprintf(b, "            %d× %s\n", errs[msg], msg)
	}
}

func writeLedger(b *strings.Builder, q QueueLedger, d Delivery) {
	fmt.Fprintf(b, "  queue:    %d acked, %d retried, %d dead-lettered, imbalance %d, at most %d queued\n",
		q.Acked, q.Retried, q.DeadLettered, q.Imbalance, q.MaxQueued)
	fmt.Fprintf(b, "  events:   %d expected, %d received, %d lost, %d duplicated, %d unexpected\n",
		d.EventsExpected, d.EventsReceived, d.EventsLost, d.EventsDuplicated, d.EventsUnexpected)
}

func writeCPU(b *strings.Builder, procs []ProcessCPU, client ProcessCPU) {
	for _, p := range append(procs, client) {
		fmt.Fprintf(b, "  cpu %-8s %6.2f µs/job (%.2f s, %.2f cores)\n", p.Name+":", p.MicrosPerJob, p.CPUSeconds, p.Cores)
	}
}
