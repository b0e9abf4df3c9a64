package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. The CLI exits 2 on ErrInput (ErrMalformed wraps it).
var (
	// ErrInput marks a history it cannot use: an unreadable file or
	// database, a bad URL, a malformed record.
	ErrInput = errors.New("bad history")
	// ErrMalformed marks a record that is not a darktime.history/v1
	// record.
	ErrMalformed = fmt.Errorf("%w: malformed record", ErrInput)
	// ErrDuplicate is Append's answer to a run (and target) already in the
	// history: it is kept once, so reporting a result twice does not
	// count it twice.
	ErrDuplicate = errors.New("run already in the history")
)

// Filter selects records. The zero value selects every record.
type Filter struct {
	// Scenario and Target, when set, keep the records of that series.
	Scenario, Target string
	// Metric, when set, keeps the records that have this metric.
	Metric string
	// Limit, when > 0, keeps the last Limit records that match.
	Limit int
}

func (f Filter) match(r Record) bool {
	if f.Scenario != "" && r.Scenario != f.Scenario || f.Target != "" && r.Target != f.Target {
		return false
	}
	if f.Metric != "" {
		if _, ok := r.Metrics[f.Metric]; !ok {
			return false
		}
	}
	return true
}

// Store keeps the history: records in the order they were appended.
type Store interface {
	// Append adds a record; ErrDuplicate when its run and target are in
	// the store already.
	Append(ctx context.Context, r Record) error
	// List returns the records that match, oldest first.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Close releases the store.
	Close() error
}

var (
	_ Store = (*JSONL)(nil)
	_ Store = (*Postgres)(nil)
)

// Options tune Open.
type Options struct {
	// Warn receives what a store repaired or skipped (a torn last line);
	// nil drops it.
	Warn func(msg string)
}

// IsURL reports whether location names a database rather than a folder.
func IsURL(location string) bool { return strings.Contains(location, "://") }

// Open opens the history at location: a postgres:// or postgresql:// URL
// is a PostgreSQL database (Postgres); anything else is a folder (or a
// .jsonl file) holding history.jsonl (JSONL). Errors wrap ErrInput.
func Open(ctx context.Context, location string, opts Options) (Store, error) {
	if location == "" {
		return nil, fmt.Errorf("%w: no history location (a folder, or postgres://…)", ErrInput)
	}
	if IsURL(location) {
		scheme, _, _ := strings.Cut(location, "://")
		if scheme != "postgres" && scheme != "postgresql" {
			return nil, fmt.Errorf("%w: %s://…: a history is a folder or a postgres:// URL", ErrInput, scheme)
		}
		return OpenPostgres(ctx, location)
	}
	return OpenJSONL(location, opts)
}
