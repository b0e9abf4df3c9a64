package fanoutbench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/darktime/darktime/internal/procstat"
)

// ConfigEcho is the Config a Result was measured with, defaults filled in.
type ConfigEcho struct {
	Target          string           `json:"target"`
	Subscribers     int              `json:"subscribers"`
	Channels        int              `json:"channels"`
	RateEventsPerS  float64          `json:"rate_events_per_s"`
	DurationSeconds float64          `json:"duration_seconds"`
	SizeBytes       int              `json:"size_bytes"`
	RampPerS        float64          `json:"ramp_per_s"`
	Sources         int              `json:"sources"`
	ServerPID       int              `json:"server_pid,omitempty"`
	Processes       []procstat.Named `json:"processes,omitempty"`
	SettleSeconds   float64          `json:"settle_seconds"`
	DrainSeconds    float64          `json:"drain_seconds"`
	ChannelPrefix   string           `json:"channel_prefix"`
}

func echoConfig(c Config) ConfigEcho {
	return ConfigEcho{
		Target:          c.Target,
		Subscribers:     c.Subscribers,
		Channels:        c.Channels,
		RateEventsPerS:  c.Rate,
		DurationSeconds: c.Duration.Seconds(),
		SizeBytes:       c.Size,
		RampPerS:        c.Ramp,
		Sources:         c.Sources,
		ServerPID:       c.ServerPID,
		Processes:       c.Processes,
		SettleSeconds:   c.Settle.Seconds(),
		DrainSeconds:    c.Drain.Seconds(),
		ChannelPrefix:   c.ChannelPrefix,
	}
}

// Result is what one Run measured. Latencies are in milliseconds; server
// figures are present only when Config.ServerPID was set.
type Result struct {
	Config ConfigEcho `json:"config"`

	SubscribersConnected int     `json:"subscribers_connected"`
	ConnectErrors        int     `json:"connect_errors"`
	ConnectErrorSample   string  `json:"connect_error_sample,omitempty"`
	ConnectSeconds       float64 `json:"connect_seconds"` // first dial to last connected
	ConnectP50Ms         float64 `json:"connect_p50_ms"`
	ConnectP99Ms         float64 `json:"connect_p99_ms"`
	// SubscribersDropped counts streams that ended during the publish
	// window or the drain; their missed events are also counted as lost.
	SubscribersDropped int    `json:"subscribers_dropped"`
	DropErrorSample    string `json:"drop_error_sample,omitempty"`

	PublishesOK     int64            `json:"publishes_ok"`
	PublishesFailed int64            `json:"publishes_failed"` // non-2xx and transport errors
	PublishesNon2xx int64            `json:"publishes_non_2xx"`
	PublishErrors   map[string]int64 `json:"publish_errors,omitempty"`
	PublishP50Ms    float64          `json:"publish_p50_ms"` // intended send time to answer (the swarm's "publish" histogram)
	PublishP99Ms    float64          `json:"publish_p99_ms"`
	PublishMaxMs    float64          `json:"publish_max_ms"`
	PublishSeconds  float64          `json:"publish_seconds"` // first publish to last answer

	OfferedEventsPerSec     float64 `json:"offered_events_per_s"`
	OfferedDeliveriesPerSec float64 `json:"offered_deliveries_per_s"`
	// AchievedDeliveriesPerSec counts events received during the nominal
	// publish window (Duration from the first publish), so a server that
	// falls behind shows its real throughput.
	AchievedDeliveriesPerSec float64 `json:"achieved_deliveries_per_s"`

	// The swarm's ledger: ExpectedDeliveries sums, over publishes answered
	// 2xx, the subscribers on the event's channel (a subscriber that drops
	// stays owed its channel's events to the end of the run); Received
	// counts their first arrivals and Lost the shortfall. Duplicates and
	// reorders are exact per connection.
	ExpectedDeliveries   int64 `json:"expected_deliveries"`
	ReceivedDeliveries   int64 `json:"received_deliveries"`
	LostDeliveries       int64 `json:"lost_deliveries"`
	DuplicatedDeliveries int64 `json:"duplicated_deliveries"`
	ReorderedDeliveries  int64 `json:"reordered_deliveries"`  // arrived after a later event; included in Received
	UnexpectedDeliveries int64 `json:"unexpected_deliveries"` // events whose publish was not answered 2xx
	ForeignEvents        int64 `json:"foreign_events"`        // data not published by this run to that channel, or of another event type

	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP90Ms  float64 `json:"latency_p90_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyP999Ms float64 `json:"latency_p999_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
	LatencyMeanMs float64 `json:"latency_mean_ms"`

	// Server CPU is measured from the first publish to the end of the
	// drain and divided by every event received in that time.
	ServerCPUSeconds           float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUMicrosPerDelivery float64 `json:"server_cpu_us_per_delivery,omitempty"`
	ServerRSSBeforeKiB         int64   `json:"server_rss_before_kib,omitempty"`
	ServerRSSIdleKiB           int64   `json:"server_rss_idle_kib,omitempty"`
	ServerRSSPerSubscriberKiB  float64 `json:"server_rss_per_subscriber_kib,omitempty"`
	// Processes is Config.Processes' CPU over the server's span.
	Processes []ProcessCPU `json:"processes,omitempty"`

	// Client CPU (this process) over the same span, per received event:
	// if it nears the server's figure, the load generator is the bottleneck.
	ClientCPUSeconds        float64 `json:"client_cpu_seconds"`
	ClientCPUMicrosPerEvent float64 `json:"client_cpu_us_per_event"`
	ClientCPUCores          float64 `json:"client_cpu_cores"` // average cores busy
	// ClientLimited is set when this process used over 90% of the cores it
	// may run on (GOMAXPROCS): the figures may then be the client's limit.
	ClientLimited bool `json:"client_limited"`

	DurationSeconds float64 `json:"duration_seconds"`
}

// ProcessCPU is one of Config.Processes' CPU time from the first publish
// to the end of the drain, and per delivery received in that time.
type ProcessCPU struct {
	Name              string  `json:"name"`
	PID               int     `json:"pid"`
	CPUSeconds        float64 `json:"cpu_seconds"`
	MicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
}

// String is a human-readable summary of r.
func (r *Result) String() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "target %s: %d subscribers over %d channels, %.4g events/s of %d bytes for %gs\n",
		c.Target, c.Subscribers, c.Channels, c.RateEventsPerS, c.SizeBytes, c.DurationSeconds)
	fmt.Fprintf(&b, "connect:   %d connected, %d errors in %.2fs (p50 %.2f ms, p99 %.2f ms); %d dropped during the run\n",
		r.SubscribersConnected, r.ConnectErrors, r.ConnectSeconds, r.ConnectP50Ms, r.ConnectP99Ms, r.SubscribersDropped)
	if r.ConnectErrorSample != "" {
		fmt.Fprintf(&b, "           first connect error: %s\n", r.ConnectErrorSample)
	}
	if r.DropErrorSample != "" {
		fmt.Fprintf(&b, "           first drop: %s\n", r.DropErrorSample)
	}
	fmt.Fprintf(&b, "publish:   %d ok, %d failed (%d non-2xx); request p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		r.PublishesOK, r.PublishesFailed, r.PublishesNon2xx, r.PublishP50Ms, r.PublishP99Ms, r.PublishMaxMs)
	if len(r.PublishErrors) > 0 {
		msgs := make([]string, 0, len(r.PublishErrors))
		for msg := range r.PublishErrors {
			msgs = append(msgs, msg)
		}
		sort.Strings(msgs)
		for _, msg := range msgs {
			fmt.Fprintf(&b, "           %d× %s\n", r.PublishErrors[msg], msg)
		}
	}
	fmt.Fprintf(&b, "rate:      %.0f deliveries/s offered, %.0f achieved during the %gs window (last publish answered after %.1fs)\n",
		r.OfferedDeliveriesPerSec, r.AchievedDeliveriesPerSec, c.DurationSeconds, r.PublishSeconds)
	fmt.Fprintf(&b, "delivery:  %d expected, %d received, %d lost, %d duplicated, %d reordered, %d unexpected, %d foreign\n",
		r.ExpectedDeliveries, r.ReceivedDeliveries, r.LostDeliveries, r.DuplicatedDeliveries,
		r.ReorderedDeliveries, r.UnexpectedDeliveries, r.ForeignEvents)
	fmt.Fprintf(&b, "latency:   p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
		r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyP999Ms, r.LatencyMaxMs)
	if c.ServerPID != 0 {
		fmt.Fprintf(&b, "server:    %.2f µs CPU per delivery (%.2f s), %.2f KiB RSS per idle subscriber (%d → %d KiB)\n",
			r.ServerCPUMicrosPerDelivery, r.ServerCPUSeconds, r.ServerRSSPerSubscriberKiB, r.ServerRSSBeforeKiB, r.ServerRSSIdleKiB)
	}
	for _, p := range r.Processes {
		fmt.Fprintf(&b, "%-10s %.2f µs CPU per delivery (%.2f s)\n", p.Name+":", p.MicrosPerDelivery, p.CPUSeconds)
	}
	fmt.Fprintf(&b, "client:    %.2f µs CPU per event (%.2f s, %.2f cores busy); run took %.1fs\n",
		r.ClientCPUMicrosPerEvent, r.ClientCPUSeconds, r.ClientCPUCores, r.DurationSeconds)
	if r.ClientLimited {
		fmt.Fprintf(&b, "WARNING:   the load generator was CPU-bound; give it more cores or fewer subscribers before trusting the rate and latency\n")
	}
	return b.String()
}
