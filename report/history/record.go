package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/darktime/darktime/internal/machine"
	"github.com/darktime/darktime/report"
)

// Schema versions a Record (README "History and regressions"). A later
// version only adds fields: a reader of v1 ignores what it does not know.
const Schema = "darktime.history/v1"

// The verdicts of a run.
const (
	VerdictPass        = "pass"        // every gate passed, the defaults included
	VerdictFail        = "fail"        // a gate failed (FailedGates)
	VerdictInterrupted = "interrupted" // stopped before its end: its metrics cover part of the run
)

// Record is one run's line in the history: who ran what, where, with
// which result. Metrics holds every metric of the report's vocabulary
// the run gave (report.MetricTable, by name), so that the history, the
// gates and `report compare` read one definition of each.
type Record struct {
	Schema string `json:"schema"`
	// RunID is the swarm run's id; with Target it identifies the record.
	RunID string `json:"run_id"`
	// Time is when the run started (UTC).
	Time time.Time `json:"time"`
	// DurationSeconds is how long it measured.
	DurationSeconds float64 `json:"duration_seconds"`
	// Commit is the revision of the system under test, when known
	// (--commit, $GITHUB_SHA, or git rev-parse HEAD).
	Commit string `json:"commit,omitempty"`
	// Scenario names the series the record belongs to: the scenario's
	// name (darktime run), or --scenario.
	Scenario string `json:"scenario"`
	// Target is the target's label when a scenario runs several
	// (compare_with); each target is a series of its own.
	Target string `json:"target,omitempty"`
	// Machine is where the run measured.
	Machine machine.Description `json:"machine"`
	// Verdict is pass, fail or interrupted; FailedGates lists the gates
	// that failed, as "METRIC OP NUMBER".
	Verdict     string   `json:"verdict"`
	FailedGates []string `json:"failed_gates,omitempty"`
	// Metrics are the run's metrics by name.
	Metrics map[string]float64 `json:"metrics"`
}

// Key identifies a record in a store: a run is appended once per target.
func (r Record) Key() string { return r.RunID + "\x00" + r.Target }

// Series names the series of a record: its scenario, and the target when
// there is one ("ci-smoke", "vs-nchan/nchan").
func (r Record) Series() string {
	if r.Target == "" {
		return r.Scenario
	}
	return r.Scenario + "/" + r.Target
}

// Meta is what a record says beyond the report: where and on what it ran.
type Meta struct {
	Commit   string
	Scenario string
	Target   string
	Machine  machine.Description
}

// FromReport makes the record of a report whose gates were evaluated
// (gates are Report.Evaluate's results). The scenario defaults to the
// report's scenario's name, the target to its label when the scenario
// compared targets.
func FromReport(r *report.Report, gates []report.GateResult, m Meta) (Record, error) {
	rec := Record{
		Schema: Schema, RunID: r.RunID, Time: r.Started.UTC(), DurationSeconds: r.DurationSeconds,
		Commit: m.Commit, Scenario: m.Scenario, Target: m.Target, Machine: m.Machine,
		Verdict: VerdictPass, Metrics: map[string]float64{},
	}
	if rec.Scenario == "" && r.Scenario != nil {
		rec.Scenario = r.Scenario.Name
	}
	for k, v := range r.Metrics {
		rec.Metrics[k] = v
	}
	for _, g := range gates {
		if !g.Pass {
			rec.Verdict = VerdictFail
			rec.FailedGates = append(rec.FailedGates, g.Expr)
		}
	}
	if r.Interrupted {
		rec.Verdict = VerdictInterrupted
	}
	return rec, rec.Validate()
}

// MaxRecordBytes bounds one record (one line of a JSON-lines history): a
// record is about 3 KB, so a line of a megabyte is not one.
const MaxRecordBytes = 1 << 20

// Validate checks what a reader relies on.
func (r Record) Validate() error {
	switch {
	case r.Schema != Schema:
		return fmt.Errorf("%w: schema %q, want %q (a newer darktime's history? upgrade darktime)", ErrMalformed, r.Schema, Schema)
	case r.RunID == "":
		return fmt.Errorf("%w: no run_id", ErrMalformed)
	case r.Scenario == "":
		return fmt.Errorf("%w: run %s: no scenario (give --scenario NAME: the series the run belongs to)", ErrMalformed, r.RunID)
	case r.Time.IsZero():
		return fmt.Errorf("%w: run %s: no time", ErrMalformed, r.RunID)
	case r.Verdict != VerdictPass && r.Verdict != VerdictFail && r.Verdict != VerdictInterrupted:
		return fmt.Errorf("%w: run %s: verdict %q, want pass, fail or interrupted", ErrMalformed, r.RunID, r.Verdict)
	case r.Metrics == nil:
		return fmt.Errorf("%w: run %s: no metrics", ErrMalformed, r.RunID)
	case strings.ContainsRune(r.RunID+r.Scenario+r.Target, 0):
		return fmt.Errorf("%w: run %s: a NUL in run_id, scenario or target", ErrMalformed, r.RunID)
	}
	for k, v := range r.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: run %s: metric %s is %v", ErrMalformed, r.RunID, k, v)
		}
	}
	return nil
}

// Marshal is the record as one line of JSON, without the newline.
func (r Record) Marshal() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: run %s: the record is %d bytes, over %d", ErrMalformed, r.RunID, len(b), MaxRecordBytes)
	}
	return b, nil
}

// ParseRecord reads one record (a line of a history, or a row's JSON) and
// validates it. Unknown fields are ignored (a v1 reader of a file a later
// darktime appended to); a second JSON value after the record is not.
func ParseRecord(data []byte) (Record, error) {
	var r Record
	if len(data) > MaxRecordBytes {
		return r, fmt.Errorf("%w: %d bytes, over %d", ErrMalformed, len(data), MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, fmt.Errorf("%w: data after the record", ErrMalformed)
	}
	return r, r.Validate()
}

// AppendReport makes the record of a report (FromReport) and appends it.
// A run already in the store is an error wrapping ErrDuplicate, which a
// caller may take as a warning: the record is there.
func AppendReport(ctx context.Context, st Store, r *report.Report, gates []report.GateResult, m Meta) (Record, error) {
	rec, err := FromReport(r, gates, m)
	if err != nil {
		return rec, err
	}
	return rec, st.Append(ctx, rec)
}
