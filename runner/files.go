package runner

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/darktime/darktime/scenario"
)

// ErrScenario marks a scenario file that does not load; the CLI exits 2.
var ErrScenario = errors.New("scenario does not load")

// loadError wraps ErrScenario and keeps the loader's message.
type loadError struct{ err error }

func (e loadError) Error() string   { return e.err.Error() }
func (e loadError) Unwrap() []error { return []error{ErrScenario, e.err} }

// RunFiles runs the scenario files one after another (`darktime run`),
// each with cfg (Scenario and File set per file), until one is
// interrupted: each writes its terminal summary to cfg.Out and a "gate
// failed: …" line per failed gate to gateOut. The error names every file
// that failed: it did not load (ErrScenario), a gate failed (or an
// abort_on_fail threshold stopped it), its target could not be reached
// (ErrUnreachable), or the run failed or was interrupted (ErrInterrupted).
//
// With cfg.Markdown set, each file's Markdown summary is written there,
// one section after the other (a file that gave no report says why).
func RunFiles(ctx context.Context, files []string, opts scenario.Options, cfg Config, gateOut io.Writer) error {
	var errs []error
	for i, f := range files {
		if cfg.Markdown != nil && i > 0 {
			_, _ = io.WriteString(cfg.Markdown, "\n")
		}
		if err := runFile(ctx, f, opts, cfg, gateOut); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func runFile(ctx context.Context, file string, opts scenario.Options, cfg Config, gateOut io.Writer) error {
	s, err := scenario.LoadFileContext(ctx, file, opts)
	if err != nil {
		if cfg.Markdown != nil {
			_ = WriteMarkdownError(cfg.Markdown, file, "BAD INPUT", err)
		}
		return loadError{err}
	}
	cfg.Scenario, cfg.File = s, file
	r, err := New(cfg)
	if err != nil {
		return err
	}
	o, runErr := r.Run(ctx)
	if cfg.Markdown != nil {
		var werr error
		switch {
		case o != nil && len(o.Targets) > 0:
			werr = o.WriteMarkdown(cfg.Markdown)
		case errors.Is(runErr, ErrUnreachable):
			werr = WriteMarkdownError(cfg.Markdown, file, "TARGET UNREACHABLE", runErr)
		case errors.Is(runErr, ErrInterrupted) || ctx.Err() != nil:
			werr = WriteMarkdownError(cfg.Markdown, file, "INTERRUPTED", runErr)
		case runErr != nil:
			werr = WriteMarkdownError(cfg.Markdown, file, "ERROR", runErr)
		}
		if werr != nil {
			return werr
		}
	}
	if o == nil {
		return runErr
	}
	if err := o.WriteSummary(r.out); err != nil {
		return err
	}
	for _, g := range o.Failed() {
		fmt.Fprintf(gateOut, "gate failed: %s\n", g)
	}
	if runErr == nil {
		runErr = o.Err()
	}
	if err := afterRun(ctx, cfg, o); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// afterRun calls Config.AfterRun (darktime run --history) with what a run
// produced, interrupted or not: an interrupted run is recorded as one.
func afterRun(ctx context.Context, cfg Config, o *Outcome) error {
	if cfg.AfterRun == nil {
		return nil
	}
	return cfg.AfterRun(context.WithoutCancel(ctx), o)
}
