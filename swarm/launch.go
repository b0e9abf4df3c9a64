package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Launch says where `darktime swarm` runs a Config — in this process,
// in worker processes (Procs) or on agents coordinated through Redis —
// and where its result goes. Launch.Run does all of it.
type Launch struct {
	// Procs > 1 runs RunProcs with that many workers; Agents > 0 runs
	// RunAgents through Coordination (RedisURL required, Procs 1).
	Procs        int
	Agents       int
	Coordination Coordination
	// Out receives the JSON result (required); HdrLog, when set, the
	// per-second histograms (WriteFiles).
	Out, HdrLog string
	// Summary receives the run's summary (WriteSummary); Stderr the
	// worker processes' output.
	Summary, Stderr io.Writer
	// Watch, when set, watches the run live in this process; with Procs
	// each worker watches its part as Live says (required then). Not with
	// Agents: each agent watches its own part.
	Watch Watch
	Live  json.RawMessage
}

// Check refuses a Launch that cannot run; the errors wrap ErrConfig and
// name the flags.
func (l Launch) Check() error {
	switch {
	case l.Procs < 1 || l.Procs > MaxProcs:
		return flagError(fmt.Sprintf("--procs must be between 1 and %d", MaxProcs))
	case l.Agents < 0 || l.Agents > 1000 || (l.Agents > 0 && (l.Coordination.RedisURL == "" || l.Procs > 1)):
		return flagError("--agents N (1 to 1000) needs --redis URL and no --procs")
	case l.Coordination.JoinTimeout < 0:
		return flagError(fmt.Sprintf("--join-timeout %v is negative", l.Coordination.JoinTimeout))
	case l.Out == "":
		return flagError("--out FILE is required: the run's result goes there")
	case l.Watch != nil && l.Agents > 0:
		return flagError("--remote-write exports from the processes that run the clients: give it to each `darktime swarm agent` rather than with --agents")
	case l.Watch != nil && l.Procs > 1 && len(l.Live) == 0:
		return flagError("a watched run over --procs needs Launch.Live, what the workers export with")
	}
	return nil
}

// Run runs cfg as l says, writes the result files and the summary, and
// returns the run's error; an interrupted run (ctx canceled) still
// writes what it measured and returns nil.
func (l Launch) Run(ctx context.Context, cfg Config) error {
	if err := l.Check(); err != nil {
		return err
	}
	var (
		res *Result
		err error
	)
	switch {
	case l.Agents > 0:
		co := l.Coordination
		co.Agents = l.Agents
		res, err = RunAgents(ctx, cfg, co)
	case l.Procs > 1:
		res, err = RunProcs(ctx, cfg, Procs{N: l.Procs, Stderr: l.Stderr, Live: l.Live})
	default:
		var done func(*Result)
		if l.Watch != nil {
			var tick func(Tick)
			tick, done = l.Watch(cfg)
			cfg.Tick = ChainTick(cfg.Tick, tick)
		}
		res, err = Run(ctx, cfg)
		if done != nil {
			defer done(res) // after the files: the last interval may take a while
		}
	}
	if res != nil {
		if werr := WriteFiles(res, l.Out, l.HdrLog); werr != nil {
			return errors.Join(err, werr)
		}
		if l.Summary != nil {
			WriteSummary(l.Summary, res)
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// LoadProfile is the built-in profile name, or, when file is set, the
// JSON profile in it (ParseProfile) read with read. Errors wrap ErrConfig
// and name the flag.
func LoadProfile(name, file string, read func(string) ([]byte, error)) (Profile, error) {
	if file == "" {
		return ProfileByName(name)
	}
	data, err := read(file)
	if err != nil {
		return Profile{}, flagError(fmt.Sprintf("--profile-file: %v", err))
	}
	p, err := ParseProfile(data)
	if err != nil {
		return p, flagError(fmt.Sprintf("--profile-file %s: %v", file, err))
	}
	return p, nil
}
