package swarm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WorkerCommand builds the command of one worker process: it must run this
// part of the run and write its result to out.
type WorkerCommand func(ctx context.Context, part Part, out string) *exec.Cmd

// RunProcs runs one swarm run as n worker processes, each with Part
// {i, n} (a slice of the channels, their clients and their share of the
// publish rate), and merges their results exactly. On cancellation the
// workers get SIGINT, stop cleanly and still write their results, which
// are merged as usual. A worker that fails without a result makes the
// merged result partial: its error is returned with what the others
// measured.
func RunProcs(ctx context.Context, n int, command WorkerCommand) (*Result, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: procs must be positive", ErrConfig)
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
	done := make(chan outcome, n)
	outs := make([]string, n)
	for i := range n {
		outs[i] = filepath.Join(dir, "part-"+strconv.Itoa(i)+".json")
		cmd := command(ctx, Part{Index: i, Count: n}, outs[i])
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
		cmd.WaitDelay = 30 * time.Second // a worker that ignores SIGINT is killed
		if err := cmd.Start(); err != nil {
			done <- outcome{i, fmt.Errorf("start worker %d: %w", i, err)}
			continue
		}
		go func() { done <- outcome{i, cmd.Wait()} }()
	}
	var errs []error
	for range n {
		if o := <-done; o.err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", o.part, o.err))
		}
	}
	var results []*Result
	for i, path := range outs {
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
