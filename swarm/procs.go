package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WorkerArgs are the arguments that make the darktime binary a RunProcs
// worker: it reads its RunSpec on stdin and runs it (RunWorker).
func WorkerArgs() []string { return []string{"swarm", "worker", "--spec", "-"} }

// MaxProcs bounds Procs.N.
const MaxProcs = 64

// Procs says how RunProcs starts its worker processes.
type Procs struct {
	// N is how many workers, each running one part (1 to MaxProcs).
	N int
	// Command, when set, builds worker part's command: a process that
	// reads a RunSpec on its stdin and runs it (RunWorker). RunProcs sets
	// its Stdin and how it is stopped, and calls Command from its own
	// goroutine, one part after another, before it returns. Default: this
	// executable with WorkerArgs, its output to Stderr.
	Command func(ctx context.Context, part Part) *exec.Cmd
	// Stderr receives the default command's output (os.Stderr).
	Stderr io.Writer
	// Live, when set, goes to every worker in its RunSpec: how it
	// exports its part live (swarm/live's Config as JSON).
	Live json.RawMessage
}

func (p Procs) command(ctx context.Context, part Part) (*exec.Cmd, error) {
	if p.Command != nil {
		return p.Command(ctx, part), nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable to start workers: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, WorkerArgs()...)
	cmd.Stdout = io.Discard
	cmd.Stderr = p.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	return cmd, nil
}

// RunProcs runs cfg as p.N worker processes, each with Part {i, N} (a
// slice of the channels, their clients and their share of the publish
// rate), and merges their results exactly. Each worker gets the run as a
// RunSpec on its stdin, with cfg's defaults filled in here, once, so that
// every part computes the same assignment; a config that cannot run is
// refused before any worker starts (ErrConfig, ErrTemplate). Worker 0
// logs as cfg.Logger does (its level) and prints progress when
// cfg.Progress is set; the others log only warnings.
//
// On cancellation the workers get SIGINT, stop cleanly and still write
// their results, which are merged as usual. A worker that fails without a
// result makes the merged result partial: its error is returned with
// what the others measured.
func RunProcs(ctx context.Context, cfg Config, p Procs) (*Result, error) {
	if p.N < 1 || p.N > MaxProcs {
		return nil, fmt.Errorf("%w: procs must be between 1 and %d", ErrConfig, MaxProcs)
	}
	infoLogged := cfg.Logger != nil && cfg.Logger.Enabled(ctx, slog.LevelInfo)
	spec, err := newSpec(cfg, p.N)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "darktime-swarm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	type outcome struct {
		part int
		err  error
	}
	done := make(chan outcome, p.N)
	outs := make([]string, p.N)
	for i := range p.N {
		outs[i] = filepath.Join(dir, "part-"+strconv.Itoa(i)+".json")
		s := spec
		s.Part, s.Out = Part{Index: i, Count: p.N}, outs[i]
		s.Progress, s.Quiet = i == 0 && cfg.Progress != nil, i != 0 || !infoLogged
		s.Live = p.Live
		if err := startWorker(ctx, p, s, func(err error) { done <- outcome{i, err} }); err != nil {
			done <- outcome{i, fmt.Errorf("start worker %d: %w", i, err)}
		}
	}
	var errs []error
	for range p.N {
		if o := <-done; o.err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", o.part, o.err))
		}
	}
	results, rerrs := readWorkerResults(outs)
	errs = append(errs, rerrs...)
	if len(results) == 0 {
		return nil, errors.Join(append(errs, errors.New("no worker produced a result"))...)
	}
	merged, err := Merge(results...)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	if ctx.Err() != nil {
		merged.Interrupted = true
		errs = append(errs, ctx.Err())
	}
	return merged, errors.Join(errs...)
}

// startWorker starts the worker of spec; exited is called with its exit
// once it has been waited for.
func startWorker(ctx context.Context, p Procs, spec RunSpec, exited func(error)) error {
	var in bytes.Buffer
	if err := spec.Encode(&in); err != nil {
		return err
	}
	cmd, err := p.command(ctx, spec.Part)
	if err != nil {
		return err
	}
	cmd.Stdin = &in
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second // a worker that ignores SIGINT is killed
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { exited(cmd.Wait()) }()
	return nil
}

// readWorkerResults reads the result file of every worker.
func readWorkerResults(paths []string) ([]*Result, []error) {
	var results []*Result
	var errs []error
	for i, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("worker %d wrote no result: %w", i, err))
			continue
		}
		res, err := ReadResult(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
			continue
		}
		results = append(results, res)
	}
	return results, errs
}
