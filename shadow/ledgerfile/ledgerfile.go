// Package ledgerfile is the shadow proxy's reconciliation ledger as JSON,
// schema "darktime.shadow/v1" (shadow/LEDGER.md): per mirror target, the
// +1/-1 accounts of the events the primary and the target delivered, in
// total, per channel and per user bucket, with the attribution of what is
// missing and extra. It is a leaf — types only — so that readers of
// ledger files (darktime report) do not link the proxy. package shadow
// keeps the old names as aliases (shadow.Report, shadow.Counts, ...).
package ledgerfile

import "time"

// Schema names the version of the ledger's JSON form (LEDGER.md).
const Schema = "darktime.shadow/v1"

// Report is the ledger's JSON form, version Schema (see LEDGER.md).
type Report struct {
	Schema      string         `json:"schema"`
	StartedAt   time.Time      `json:"started_at"`
	GeneratedAt time.Time      `json:"generated_at"`
	Final       bool           `json:"final"`
	SettleMS    int64          `json:"settle_ms"`
	LateMS      int64          `json:"late_ms"`
	EdgeMS      int64          `json:"edge_ms"`
	RememberMS  int64          `json:"remember_ms"`
	RememberMax int64          `json:"remember_max"`
	Identity    string         `json:"identity"`
	Targets     []TargetReport `json:"targets"`
}

// TargetReport is the ledger of one mirror target.
type TargetReport struct {
	Name    string       `json:"name"`
	Role    string       `json:"role"` // candidate or baseline
	URL     string       `json:"url"`
	Streams StreamCounts `json:"streams"`
	// UnmirroredPublishes counts publishes the primary accepted that this
	// target was not sent (mirror_skipped_total has why).
	UnmirroredPublishes int64             `json:"unmirrored_publishes"`
	Totals              Counts            `json:"totals"`
	Channels            map[string]Counts `json:"channels"`
	Buckets             map[string]Counts `json:"buckets"`
}

// StreamCounts counts the mirrored streams of a target.
type StreamCounts struct {
	Mirrored     int64 `json:"mirrored"`
	Active       int64 `json:"active"`
	Unreconciled int64 `json:"unreconciled"`
	Failed       int64 `json:"failed"`
	Resumed      int64 `json:"resumed"`
}

// Counts is one account of the report. LEDGER.md promises, in every
// account:
//
//	balance   = primary - candidate
//	primary   = matched + missing + pending_primary
//	candidate = matched + extra + duplicated + pending_candidate
type Counts struct {
	Primary          int64   `json:"primary"`
	Candidate        int64   `json:"candidate"`
	Balance          int64   `json:"balance"`
	Matched          int64   `json:"matched"`
	Missing          int64   `json:"missing"`
	Extra            int64   `json:"extra"`
	Duplicated       int64   `json:"duplicated"`
	Late             int64   `json:"late"`
	Reordered        int64   `json:"reordered"`
	PendingPrimary   int64   `json:"pending_primary"`
	PendingCandidate int64   `json:"pending_candidate"`
	DelayMeanMS      float64 `json:"delay_mean_ms"`
	DelayMaxMS       float64 `json:"delay_max_ms"`
	// The attribution of missing and extra (LEDGER.md).
	EdgeMissing        int64 `json:"edge_missing"`
	EdgeExtra          int64 `json:"edge_extra"`
	LateSettled        int64 `json:"late_settled"`
	Unmirrored         int64 `json:"unmirrored"`
	UnexplainedMissing int64 `json:"unexplained_missing"`
	UnexplainedExtra   int64 `json:"unexplained_extra"`
}
