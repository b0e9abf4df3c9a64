// Package resourcefile is the file a scenario run writes beside its
// results, resources.json (schema "darktime.resources/v1"): each second,
// every server node's and Redis process's CPU time, resident memory, open
// files and bytes written and read (/proc), and for a node its own
// counters from GET /stats read at the same moment. The capacity plan fits
// its model to these. A leaf, so that readers link no engine.
package resourcefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Schema versions the file.
const Schema = "darktime.resources/v1"

// MaxBytes bounds a file read with Read: one sample a second of a dozen
// processes for a day is ~200 MB; a run is minutes.
const MaxBytes = 256 << 20

// ErrResources marks a file that cannot be used.
var ErrResources = errors.New("bad resources file")

// Roles of a process.
const (
	RoleNode  = "node"
	RoleRedis = "redis"
)

// File is one target run's samples.
type File struct {
	Schema string `json:"schema"`
	// IntervalS is the planned time between samples.
	IntervalS float64   `json:"interval_s"`
	Processes []Process `json:"processes"`
	// Notes say what could not be sampled and why.
	Notes []string `json:"notes,omitempty"`
}

// Process is one process's samples, oldest first.
type Process struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Samples []Sample `json:"samples"`
}

// Sample is one reading. The counters (CPU, bytes, the node's) grow
// while the process lives; a new PID (a restarted Redis) starts them
// again, so differences are taken between samples of one PID only.
type Sample struct {
	// T is the Unix time of the reading, in seconds.
	T          float64 `json:"t"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	RSSBytes   int64   `json:"rss_bytes"`
	FDs        int     `json:"fds"`
	WriteBytes int64   `json:"write_bytes"`
	ReadBytes  int64   `json:"read_bytes"`
	// StatsBytes is what the sampler's own GET /stats of this node read
	// so far (bodies and headers): part of WriteBytes that is not the
	// node's traffic.
	StatsBytes int64 `json:"stats_bytes,omitempty"`
	// Node is the node's GET /stats totals at T (nodes only; absent when
	// /stats did not answer in time).
	Node *NodeCounters `json:"node,omitempty"`
}

// NodeCounters are the /stats totals the model needs.
type NodeCounters struct {
	// Published counts publishes this node accepted; Received, events
	// its broker handed it for channels it has subscribers on; Written,
	// deliveries written to its subscribers.
	Published uint64 `json:"published"`
	Received  uint64 `json:"received"`
	Written   uint64 `json:"written"`
	// Subscribers is open streams now; Connections, streams accepted so
	// far; Channels, channels with subscribers now.
	Subscribers int64  `json:"subscribers"`
	Connections uint64 `json:"connections"`
	Channels    int    `json:"channels"`
}

// Read reads and checks a file: its schema, and that every process has a
// known role and samples in time order with sane values.
func Read(r io.Reader) (*File, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxBytes+1))
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResources, err)
	}
	if f.Schema != Schema {
		return nil, fmt.Errorf("%w: schema %q, want %q", ErrResources, f.Schema, Schema)
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Check checks what Read checks after decoding.
func (f *File) Check() error {
	if !(f.IntervalS > 0) || f.IntervalS > 3600 {
		return fmt.Errorf("%w: interval_s %v: want a number of seconds in (0, 3600]", ErrResources, f.IntervalS)
	}
	names := map[string]bool{}
	for _, p := range f.Processes {
		if p.Name == "" || names[p.Name] {
			return fmt.Errorf("%w: process name %q empty or given twice", ErrResources, p.Name)
		}
		names[p.Name] = true
		if p.Role != RoleNode && p.Role != RoleRedis {
			return fmt.Errorf("%w: process %s: role %q, want %s or %s", ErrResources, p.Name, p.Role, RoleNode, RoleRedis)
		}
		last := math.Inf(-1)
		for i, s := range p.Samples {
			switch {
			case !(s.T > last) || math.IsInf(s.T, 0):
				return fmt.Errorf("%w: process %s: sample %d at %v is not after the one before", ErrResources, p.Name, i, s.T)
			case s.PID <= 0 || !(s.CPUSeconds >= 0) || math.IsInf(s.CPUSeconds, 0) || s.RSSBytes < 0 || s.FDs < 0 || s.WriteBytes < 0 || s.ReadBytes < 0 || s.StatsBytes < 0:
				return fmt.Errorf("%w: process %s: sample %d has a negative or missing value", ErrResources, p.Name, i)
			}
			last = s.T
		}
	}
	return nil
}

// Write writes the file as JSON.
func (f *File) Write(w io.Writer) error {
	f.Schema = Schema
	return json.NewEncoder(w).Encode(f)
}
