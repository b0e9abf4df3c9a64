package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/darktime/darktime/internal/fdlimit"
)

// SpecVersion is the version of RunSpec this darktime writes, and the only
// one it reads.
const SpecVersion = 1

// MaxSpecBytes bounds a RunSpec read (ReadSpec): a run's config is a few
// kilobytes.
const MaxSpecBytes = 1 << 20

// ErrSpec marks a RunSpec that cannot be read: not JSON, another
// version, an unknown field, too large.
var ErrSpec = errors.New("swarm run spec")

// RunSpec is a swarm run handed to another process, and the only way one
// is handed over: a worker of `darktime swarm --procs N` or of a
// scenario's clients.procs reads it on its stdin (`darktime swarm worker
// --spec -`, RunWorker), an agent reads it from Redis (Agent.Serve). The
// receiving process reads nothing else: no flags, no scenario file.
//
// Its JSON form (version 1):
//
//	{"version": 1, "config": {…Config's fields…}, "part": {"index": 0, "count": 2},
//	 "out": "/tmp/…/part-0.json", "progress": true, "quiet": false}
//
// ReadSpec refuses another version, unknown fields (at any depth) and
// trailing data.
type RunSpec struct {
	// Version is SpecVersion.
	Version int `json:"version"`
	// Config is the run with its defaults filled in (run id, seed, channel
	// prefix, sources), so that every part computes the same assignment.
	// Its Part is not used: Part is.
	Config Config `json:"config"`
	// Part is the part the process runs. In a run posted for agents, Index
	// is 0: each agent runs the index its join gives it.
	Part Part `json:"part"`
	// Out is the file a worker writes its result to (RunProcs); agents
	// push theirs back through Redis instead.
	Out string `json:"out,omitempty"`
	// JoinTimeout is how long the coordinator waits for agents to join
	// (agents only; they wait as long for the start).
	JoinTimeout time.Duration `json:"join_timeout_ns,omitempty"`
	// Progress sends the worker's per-second status lines to its stderr;
	// Quiet logs only warnings and errors there. Agents use their own
	// flags instead.
	Progress bool `json:"progress,omitempty"`
	Quiet    bool `json:"quiet,omitempty"`
	// Live, when set, is how the worker exports its part live (Procs.Live:
	// swarm/live's Config as JSON); the worker's command builds the
	// Watch from it (RunWorkerWatched). Agents use their own flags.
	Live json.RawMessage `json:"live,omitempty"`
}

// newSpec is the spec of cfg split into parts, cfg's defaults filled in.
// A token secret given as bytes cannot travel: only its environment
// variable's name or its file's path do.
func newSpec(cfg Config, parts int) (RunSpec, error) {
	if t := cfg.Token; t != nil && len(t.Secret) > 0 && t.SecretEnv == "" && t.KeyFile == "" {
		return RunSpec{}, fmt.Errorf("%w: a token secret given as bytes (TokenConfig.Secret) is not handed to other processes: use SecretEnv or KeyFile", ErrConfig)
	}
	cfg = cfg.withDefaults()
	cfg.Part = Part{Index: 0, Count: parts}
	if err := cfg.check(); err != nil {
		return RunSpec{}, err
	}
	cfg.Logger, cfg.Progress, cfg.OnPublish = nil, nil, nil
	return RunSpec{Version: SpecVersion, Config: cfg, Part: cfg.Part}, nil
}

// Encode writes the spec as JSON, with Version set to SpecVersion.
func (s RunSpec) Encode(w io.Writer) error {
	s.Version = SpecVersion
	return json.NewEncoder(w).Encode(s)
}

// ReadSpec reads one RunSpec of at most MaxSpecBytes: version 1, no
// unknown field at any depth, nothing after it (json.Unmarshal refuses
// trailing data). Errors wrap ErrSpec.
func ReadSpec(r io.Reader) (RunSpec, error) {
	var s RunSpec
	data, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if len(data) > MaxSpecBytes {
		return s, fmt.Errorf("%w: over %d bytes", ErrSpec, MaxSpecBytes)
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return s, fmt.Errorf("%w: not a run spec: %w", ErrSpec, err)
	}
	switch {
	case v.Version == nil:
		return s, fmt.Errorf("%w: no \"version\": not a darktime run spec (or one from before version 1)", ErrSpec)
	case *v.Version != SpecVersion:
		return s, fmt.Errorf("%w: version %d, and this darktime reads version %d only: run one darktime release on every machine of the run", ErrSpec, *v.Version, SpecVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w (version %d): %w", ErrSpec, SpecVersion, err)
	}
	if p := s.Part; p.Count < 1 || p.Index < 0 || p.Index >= p.Count {
		return s, fmt.Errorf("%w: part %d/%d: want 0 <= index < count", ErrSpec, p.Index, p.Count)
	}
	return s, nil
}

// NewLogger is the swarm's text logger on w: from INFO on, or with quiet
// only warnings and errors.
func NewLogger(w io.Writer, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// RunWorker is the receiving side of RunProcs (`darktime swarm worker
// --spec -`): it runs the part of the run spec names, logging to stderr,
// and writes the result to spec.Out, also when ctx ends early (RunProcs
// sends SIGINT on cancellation).
func RunWorker(ctx context.Context, spec RunSpec, stderr io.Writer) error {
	return RunWorkerWatched(ctx, spec, stderr, nil)
}

// RunWorkerWatched is RunWorker with the run watched (nil: not).
func RunWorkerWatched(ctx context.Context, spec RunSpec, stderr io.Writer, watch Watch) error {
	if spec.Out == "" {
		return fmt.Errorf("%w: a worker's spec needs \"out\", the file its result goes to", ErrSpec)
	}
	cfg := spec.Config
	cfg.Part = spec.Part
	cfg.Logger = NewLogger(stderr, spec.Quiet).With("part", spec.Part.Index)
	if spec.Progress {
		cfg.Progress = stderr
	}
	fdlimit.Raise()
	var done func(*Result)
	if watch != nil {
		cfg.Tick, done = watch(cfg)
	}
	res, err := Run(ctx, cfg)
	if done != nil {
		defer done(res) // after the result file
	}
	if res != nil {
		if werr := WriteFiles(res, spec.Out, ""); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}
