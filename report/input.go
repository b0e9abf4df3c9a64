package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/yamlsafe"
	"github.com/darktime/darktime/server/statsfile"
	"github.com/darktime/darktime/shadow/ledgerfile"
	"github.com/darktime/darktime/swarm/resultfile"
)

// ErrInput marks input the report cannot use: a truncated or corrupt
// file, results of different runs, snapshots of different server starts,
// an unknown metric or a malformed gate. The CLI exits 2 on it.
var ErrInput = errors.New("bad report input")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, args...))
}

// Inputs is everything a report is built from. Results are required;
// the rest is optional.
type Inputs struct {
	// Results are the parts of ONE swarm run; Build merges them with
	// resultfile.Merge (results of different runs are an error).
	Results []*resultfile.Result
	// ResultNames name Results in messages (file names); optional.
	ResultNames []string
	// StatsBefore and StatsAfter are GET /stats snapshots of the server
	// nodes, taken before the run and after it drained; paired by node.
	StatsBefore, StatsAfter []statsfile.Stats
	// Shadow are shadow-proxy ledgers (shadow/LEDGER.md).
	Shadow []ledgerfile.Report
	// ShadowNames name Shadow in messages; optional.
	ShadowNames []string
	// Scenario, when the run came from a scenario, names it and gives its
	// phases and the faults injected, to annotate the report. Build
	// measures each phase (Report.Phases).
	Scenario *Scenario
}

// Files reads the report's input files with bounds (internal/inputfile):
// only regular files unless AllowSpecial, at most MaxBytes each (gate
// files: at most yamlsafe.MaxBytes, 1 MiB), and ctx stops a read. Every
// error wraps ErrInput. The zero value reads regular files up to
// DefaultMaxBytes.
type Files struct {
	MaxBytes     int64 // per result, snapshot or ledger file; 0 means DefaultMaxBytes
	AllowSpecial bool  // read FIFOs, pipes and devices too (still bounded)
}

// DefaultMaxBytes is the size limit of one result, snapshot or ledger
// file: a 40,000-client result is a few MB.
const DefaultMaxBytes = inputfile.DefaultMaxBytes

// read reads one file; raise names the flag that raises maxBytes ("" when
// it is fixed).
func (fs Files) read(ctx context.Context, path string, maxBytes int64, raise string) ([]byte, error) {
	data, err := inputfile.Read(ctx, path, inputfile.Options{
		MaxBytes: maxBytes, AllowSpecial: fs.AllowSpecial,
		RaiseLimit: raise, AllowSpecialHint: "--allow-special-files",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return data, nil
}

// Read reads one file of another format within the same bounds (the
// resource samples beside a scenario run's results, for the capacity
// plan).
func (fs Files) Read(ctx context.Context, path string) ([]byte, error) {
	return fs.read(ctx, path, fs.MaxBytes, "--max-input-bytes")
}

// Result reads and checks one swarm result file.
func (fs Files) Result(ctx context.Context, path string) (*resultfile.Result, error) {
	data, err := fs.read(ctx, path, fs.MaxBytes, "--max-input-bytes")
	if err != nil {
		return nil, err
	}
	r, err := resultfile.ReadResult(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInput, path, err)
	}
	return r, nil
}

// Stats reads a GET /stats snapshot file (see ReadStats).
func (fs Files) Stats(ctx context.Context, path string) (statsfile.Stats, error) {
	data, err := fs.read(ctx, path, fs.MaxBytes, "--max-input-bytes")
	if err != nil {
		return statsfile.Stats{}, err
	}
	st, err := ReadStats(bytes.NewReader(data))
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// Shadow reads a shadow ledger file (see ReadShadow).
func (fs Files) Shadow(ctx context.Context, path string) (ledgerfile.Report, error) {
	data, err := fs.read(ctx, path, fs.MaxBytes, "--max-input-bytes")
	if err != nil {
		return ledgerfile.Report{}, err
	}
	l, err := ReadShadow(bytes.NewReader(data))
	if err != nil {
		return l, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// Gates reads a gate file (see LoadGates); its limit is 1 MiB.
func (fs Files) Gates(ctx context.Context, path string) ([]Gate, error) {
	data, err := fs.read(ctx, path, yamlsafe.MaxBytes, "")
	if err != nil {
		return nil, err
	}
	return parseGateFile(path, data)
}

// ReadResultFile reads and checks one swarm result file (Files{}.Result).
func ReadResultFile(path string) (*resultfile.Result, error) {
	return Files{}.Result(context.Background(), path)
}

// ReadStats reads a GET /stats snapshot. Unknown fields are allowed (the
// server only ever adds fields); a truncated file or one without a node
// start time is not.
func ReadStats(rd io.Reader) (statsfile.Stats, error) {
	var st statsfile.Stats
	data, err := io.ReadAll(rd)
	if err != nil {
		return st, badInput("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&st); err != nil {
		return st, badInput("stats snapshot: %v (truncated, or not GET /stats output?)", err)
	}
	if dec.More() {
		return st, badInput("stats snapshot: data after the JSON document")
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(data, &keys) // decoded above: cannot fail
	for _, k := range []string{"node", "started_at", "totals", "channels", "balance"} {
		if _, ok := keys[k]; !ok {
			return st, badInput("stats snapshot: no %q field (not GET /stats output?)", k)
		}
	}
	if st.Node == "" || st.StartedAt.IsZero() {
		return st, badInput("stats snapshot: empty node or started_at (not GET /stats output?)")
	}
	if st.Balance != int64(st.Totals.FannedOut)-int64(st.Totals.Written)-int64(st.Totals.Dropped)-int64(st.Totals.Queued) {
		return st, badInput("stats snapshot of node %q: balance %d does not match its totals (edited or damaged?)", st.Node, st.Balance)
	}
	return st, nil
}

// ReadStatsFile reads a /stats snapshot from a file (Files{}.Stats).
func ReadStatsFile(path string) (statsfile.Stats, error) {
	return Files{}.Stats(context.Background(), path)
}

// ShadowSchema is the shadow ledger version this package reads.
const ShadowSchema = ledgerfile.Schema

// check verifies the identities LEDGER.md promises for every account.
func checkShadowCounts(c ledgerfile.Counts) error {
	switch {
	case c.Balance != c.Primary-c.Candidate:
		return fmt.Errorf("balance %d is not primary %d - candidate %d", c.Balance, c.Primary, c.Candidate)
	case c.Primary != c.Matched+c.Missing+c.PendingPrimary:
		return fmt.Errorf("primary %d is not matched + missing + pending_primary", c.Primary)
	case c.Candidate != c.Matched+c.Extra+c.Duplicated+c.PendingCandidate:
		return fmt.Errorf("candidate %d is not matched + extra + duplicated + pending_candidate", c.Candidate)
	}
	return nil
}

// ReadShadow reads a shadow ledger and checks its schema and identities.
func ReadShadow(rd io.Reader) (ledgerfile.Report, error) {
	var l ledgerfile.Report
	data, err := io.ReadAll(rd)
	if err != nil {
		return l, badInput("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&l); err != nil {
		return l, badInput("shadow ledger: %v (truncated, or not a ledger file?)", err)
	}
	if dec.More() {
		return l, badInput("shadow ledger: data after the JSON document")
	}
	if l.Schema != ShadowSchema {
		return l, badInput("shadow ledger: schema %q, want %q", l.Schema, ShadowSchema)
	}
	for _, t := range l.Targets {
		if err := checkShadowCounts(t.Totals); err != nil {
			return l, badInput("shadow ledger, target %q totals: %v", t.Name, err)
		}
		for _, group := range []map[string]ledgerfile.Counts{t.Channels, t.Buckets} {
			for k, c := range group {
				if err := checkShadowCounts(c); err != nil {
					return l, badInput("shadow ledger, target %q account %q: %v", t.Name, k, err)
				}
			}
		}
	}
	return l, nil
}

// ReadShadowFile reads a shadow ledger from a file (Files{}.Shadow).
func ReadShadowFile(path string) (ledgerfile.Report, error) {
	return Files{}.Shadow(context.Background(), path)
}
