// Package statsfile is the JSON document a darktime server serves at
// GET /stats: the node's +1/-1 delivery counters, per node and per
// channel, and the auth and hook sections. It is a leaf — types only, no
// server engine — so that readers of snapshots (darktime report, the
// runner) link neither the hub nor the job queue, the workers or Redis.
// package server keeps the old names as aliases (server.Stats, ...).
//
// The counters and their identities are described in the README,
// "Counters":
//
//	fanned_out = written + dropped + queued   (per node and per channel)
package statsfile

import "time"

// Stats is the JSON document served at GET /stats. Counters are totals
// since the node started; gauges are values now. See README "Counters".
type Stats struct {
	Node          string                  `json:"node"`
	Broker        string                  `json:"broker"`
	StartedAt     time.Time               `json:"started_at"`
	UptimeSeconds float64                 `json:"uptime_seconds"`
	Totals        NodeTotals              `json:"totals"`
	Channels      map[string]ChannelStats `json:"channels"`
	// Balance is fanned_out - written - dropped - queued over the node: 0
	// when every copy of every event is accounted for.
	Balance int64 `json:"balance"`
	// Auth counts refused subscriptions and streams whose token expired
	// (absent without an Authorizer).
	Auth *AuthStats `json:"auth,omitempty"`
	// Hooks is the web tier's and the in-process workers' side of the job
	// ledger (absent without a job queue).
	Hooks *HookStats `json:"hooks,omitempty"`
	// Links are the node's pub/sub links to Redis (one per shard on a
	// Redis Cluster), with the lag of their last health probe (absent with
	// the in-process broker).
	Links []LinkStats `json:"links,omitempty"`
}

// LinkStats is one pub/sub link of a node.
type LinkStats struct {
	Addr      string    `json:"addr"`
	Up        bool      `json:"up"`
	Channels  int       `json:"channels"`
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// LagMs is how long the last health probe took through the link;
	// ProbeAgeMs how long ago it came back.
	LagMs      float64 `json:"lag_ms"`
	ProbeAgeMs float64 `json:"probe_age_ms"`
	// Reason says why /healthz does not trust the link now.
	Reason string `json:"reason,omitempty"`
}

// NodeTotals are the node's counters.
type NodeTotals struct {
	Published           uint64            `json:"published"`
	PublishErrors       uint64            `json:"publish_errors"`
	PublishUnknown      uint64            `json:"publish_unknown"`
	Rejected            uint64            `json:"rejected"`
	Received            uint64            `json:"received"`
	FannedOut           uint64            `json:"fanned_out"`
	Written             uint64            `json:"written"`
	Dropped             uint64            `json:"dropped"`
	DroppedByReason     map[string]uint64 `json:"dropped_by_reason"`
	Queued              uint64            `json:"queued"`
	HistoryReplayed     uint64            `json:"history_replayed"`
	MissedNotices       uint64            `json:"missed_notices"`
	BrokerErrors        uint64            `json:"broker_errors"`
	CaughtUp            uint64            `json:"caught_up"`
	CatchUps            uint64            `json:"catch_ups"`
	Subscribers         int64             `json:"subscribers"`
	Connections         uint64            `json:"connections"`
	DisconnectsByReason map[string]uint64 `json:"disconnects_by_reason"`
	Channels            int               `json:"channels"`
}

// ChannelStats are one channel's counters on this node, kept while the
// channel has subscribers here (and a short while after).
type ChannelStats struct {
	Subscribers int               `json:"subscribers"`
	Received    uint64            `json:"received"`
	FannedOut   uint64            `json:"fanned_out"`
	Written     uint64            `json:"written"`
	Dropped     uint64            `json:"dropped"`
	DroppedBy   map[string]uint64 `json:"dropped_by_reason,omitempty"`
	Queued      uint64            `json:"queued"`
}

// AuthStats is the "auth" object of /stats (present when the server
// authorizes subscriptions).
type AuthStats struct {
	Unauthorized   uint64 `json:"unauthorized"`
	Forbidden      uint64 `json:"forbidden"`
	ExpiredStreams uint64 `json:"expired_streams"`
}

// HookStats is the "hooks" section of /stats.
type HookStats struct {
	Accepted    uint64       `json:"accepted"`
	Rejected    uint64       `json:"rejected"`
	Unavailable uint64       `json:"unavailable"`
	Unknown     uint64       `json:"unknown"`
	Workers     *WorkerStats `json:"workers,omitempty"`
}

// WorkerStats are a worker pool's counters (this process only; package
// server/worker calls them worker.Stats). At rest:
//
//	claimed = acked + retried + rejected
//	acked   = dropped + jobs that published events
type WorkerStats struct {
	Claimed       uint64            `json:"claimed"`
	Acked         uint64            `json:"acked"`
	Retried       uint64            `json:"retried"`
	Rejected      uint64            `json:"rejected"`
	Dropped       uint64            `json:"dropped"`
	Events        uint64            `json:"events_published"`
	EventsByRoute map[string]uint64 `json:"events_by_route"`
	PublishErrors uint64            `json:"publish_errors"`
	InProcess     int64             `json:"in_process"`
}
