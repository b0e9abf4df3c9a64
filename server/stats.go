package server

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/server/statsfile"
)

// deliveryCounters are kept per channel and per node. They form the
// server's +1/-1 ledger: every event a node receives for a channel is
// fanned out once per subscriber (+1 each), and each fanned-out copy ends
// as written or dropped, or is still queued:
//
//	fanned_out = written + dropped + queued
type deliveryCounters struct {
	received  atomic.Uint64 // events received from the broker
	fannedOut atomic.Uint64 // +1 per subscriber an event was queued for
	written   atomic.Uint64 // handed to the kernel
	dropped   [numReasons]atomic.Uint64
}

func reasonIndex(reason string) int {
	for i, r := range allReasons {
		if r == reason {
			return i
		}
	}
	return 0
}

// nodeStats are the node's counters.
type nodeStats struct {
	deliveryCounters
	published       atomic.Uint64 // events accepted by this node's publish API
	publishErrors   atomic.Uint64 // publishes answered 5xx (503 not done, 504 unknown)
	publishUnknown  atomic.Uint64 // of those, answered 504: the outcome is unknown
	rejected        atomic.Uint64 // requests answered 4xx
	historyReplayed atomic.Uint64 // events written from history on resume
	missedNotices   atomic.Uint64 // darktime.missed notices sent
	brokerErrors    atomic.Uint64 // broker receive errors (Redis lost, ...)
	caughtUp        atomic.Uint64 // events received from history after the broker link was restored
	catchUps        atomic.Uint64 // broker link restorations caught up
	connections     atomic.Uint64 // SSE connections accepted since start
	disconnects     [numReasons]atomic.Uint64
	subscribers     atomic.Int64 // open SSE connections
	auth            authCounters // subscriptions refused, streams ended by expiry (subauth.go)
}

// wrote counts events handed to the kernel, per channel and for the node.
func (n *nodeStats) wrote(chs []*channel) {
	if len(chs) == 0 {
		return
	}
	n.written.Add(uint64(len(chs)))
	run, count := chs[0], uint64(0)
	for _, ch := range chs {
		if ch != run {
			run.stats.written.Add(count)
			run, count = ch, 0
		}
		count++
	}
	run.stats.written.Add(count)
}

// dropped counts events that will never be written.
func (n *nodeStats) dropped(chs []*channel, reason string) {
	if len(chs) == 0 {
		return
	}
	i := reasonIndex(reason)
	n.deliveryCounters.dropped[i].Add(uint64(len(chs)))
	for _, ch := range chs {
		ch.stats.dropped[i].Add(1)
	}
}

// The /stats document (package statsfile, a leaf that readers of snapshots
// import without the server engine).
type (
	// Stats is the JSON document served at GET /stats.
	Stats = statsfile.Stats
	// NodeTotals are the node's counters.
	NodeTotals = statsfile.NodeTotals
	// ChannelStats are one channel's counters on this node.
	ChannelStats = statsfile.ChannelStats
	// AuthStats is the "auth" object of /stats.
	AuthStats = statsfile.AuthStats
	// HookStats is the "hooks" section of /stats.
	HookStats = statsfile.HookStats
)

func droppedMap(c *deliveryCounters) (uint64, map[string]uint64) {
	var total uint64
	m := map[string]uint64{}
	for i, r := range allReasons {
		v := c.dropped[i].Load()
		total += v
		if v > 0 {
			m[r] = v
		}
	}
	return total, m
}

// snapshot builds the Stats document.
func (h *hub) snapshot() Stats {
	st := &h.stats
	subs := h.subscribers()
	queuedBy := map[*channel]uint64{}
	var queued uint64
	for _, s := range subs {
		s.mu.Lock()
		for _, ch := range s.pendCh {
			queuedBy[ch]++
		}
		queued += uint64(len(s.pendCh) + s.inflight)
		s.mu.Unlock()
	}
	out := Stats{
		Node:          h.cfg.NodeID,
		Broker:        h.brokerName,
		StartedAt:     h.started,
		UptimeSeconds: time.Since(h.started).Seconds(),
		Channels:      map[string]ChannelStats{},
	}
	t := &out.Totals
	t.Published = st.published.Load()
	t.PublishErrors = st.publishErrors.Load()
	t.PublishUnknown = st.publishUnknown.Load()
	t.Rejected = st.rejected.Load()
	t.Received = st.received.Load()
	t.FannedOut = st.fannedOut.Load()
	t.Written = st.written.Load()
	t.Dropped, t.DroppedByReason = droppedMap(&st.deliveryCounters)
	t.Queued = queued
	t.HistoryReplayed = st.historyReplayed.Load()
	t.MissedNotices = st.missedNotices.Load()
	t.BrokerErrors = st.brokerErrors.Load()
	t.CaughtUp = st.caughtUp.Load()
	t.CatchUps = st.catchUps.Load()
	t.Subscribers = st.subscribers.Load()
	t.Connections = st.connections.Load()
	t.DisconnectsByReason = map[string]uint64{}
	for i, r := range allReasons {
		if v := st.disconnects[i].Load(); v > 0 {
			t.DisconnectsByReason[r] = v
		}
	}
	for _, ch := range h.channelList() {
		c := ChannelStats{
			Subscribers: len(*ch.subs.Load()),
			Received:    ch.stats.received.Load(),
			FannedOut:   ch.stats.fannedOut.Load(),
			Written:     ch.stats.written.Load(),
			Queued:      queuedBy[ch],
		}
		c.Dropped, c.DroppedBy = droppedMap(&ch.stats)
		if len(c.DroppedBy) == 0 {
			c.DroppedBy = nil
		}
		out.Channels[ch.name] = c
	}
	t.Channels = len(out.Channels)
	out.Auth = h.authSnapshot()
	out.Balance = int64(t.FannedOut) - int64(t.Written) - int64(t.Dropped) - int64(t.Queued)
	return out
}

// collector exposes the node counters to Prometheus at scrape time, so
// the hot path pays for atomics only.
type collector struct {
	h     *hub
	descs map[string]*prometheus.Desc
}

func newCollector(h *hub) *collector {
	c := &collector{h: h, descs: map[string]*prometheus.Desc{}}
	for name, help := range metricHelp {
		var labels []string
		if name == "dropped_total" || name == "disconnects_total" {
			labels = []string{"reason"}
		}
		c.descs[name] = prometheus.NewDesc("darktime_server_"+name, help, labels, nil)
	}
	return c
}

var metricHelp = map[string]string{
	"published_total":            "Events accepted by this node's publish API.",
	"publish_errors_total":       "Publishes that failed: the broker was unavailable (answered 503) or did not answer (504).",
	"publish_unknown_total":      "Publishes answered 504: sent to the broker, no answer, so they may have been delivered.",
	"rejected_total":             "Requests answered with a 4xx status.",
	"received_total":             "Events received from the broker for channels with local subscribers.",
	"fanned_out_total":           "Event copies queued for subscribers (+1 per subscriber per event).",
	"written_total":              "Event copies written to subscriber sockets.",
	"dropped_total":              "Event copies dropped, by reason.",
	"queued":                     "Event copies queued and not yet written.",
	"history_replayed_total":     "Events written from history to resuming subscribers.",
	"missed_notices_total":       "darktime.missed notices sent: to resuming subscribers whose id was too old, and to subscribers of a channel whose history lost events while the broker link was down.",
	"broker_errors_total":        "Errors receiving from the broker (for example Redis lost).",
	"caught_up_total":            "Events received from history, not live: published while the broker link was down (included in received).",
	"catch_ups_total":            "Times the broker link was restored and the missed events were read back from history.",
	"subscribers":                "Open SSE connections.",
	"connections_total":          "SSE connections accepted since start.",
	"disconnects_total":          "SSE connections ended, by reason.",
	"channels":                   "Channels with local state.",
	"auth_unauthorized_total":    "Subscriptions refused with 401: a private channel without a valid token.",
	"auth_forbidden_total":       "Subscriptions refused with 403: a valid token that does not allow a channel.",
	"auth_expired_streams_total": "Streams ended by a darktime.renew notice because their token expired.",
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.h.stats
	counter := func(name string, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v)
	}
	counter("published_total", st.published.Load())
	counter("publish_errors_total", st.publishErrors.Load())
	counter("publish_unknown_total", st.publishUnknown.Load())
	counter("rejected_total", st.rejected.Load())
	counter("received_total", st.received.Load())
	counter("fanned_out_total", st.fannedOut.Load())
	counter("written_total", st.written.Load())
	counter("history_replayed_total", st.historyReplayed.Load())
	counter("missed_notices_total", st.missedNotices.Load())
	counter("broker_errors_total", st.brokerErrors.Load())
	counter("caught_up_total", st.caughtUp.Load())
	counter("catch_ups_total", st.catchUps.Load())
	counter("connections_total", st.connections.Load())
	counter("auth_unauthorized_total", st.auth.unauthorized.Load())
	counter("auth_forbidden_total", st.auth.forbidden.Load())
	counter("auth_expired_streams_total", st.auth.expiredStreams.Load())
	for i, r := range allReasons {
		counter("dropped_total", st.deliveryCounters.dropped[i].Load(), r)
		counter("disconnects_total", st.disconnects[i].Load(), r)
	}
	var queued int
	for _, s := range c.h.subscribers() {
		queued += s.queuedEvents()
	}
	gauge("queued", float64(queued))
	gauge("subscribers", float64(st.subscribers.Load()))
	gauge("channels", float64(len(c.h.channelList())))
}
