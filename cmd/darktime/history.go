package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/internal/machine"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/report/history"
	"github.com/darktime/darktime/runner"
)

// historyErr makes bad input of a history or a report a usage error
// (exit 2); a standing regression stays an ordinary error (exit 1).
func historyErr(err error) error { return usageIf(err, report.ErrInput, history.ErrInput) }

// historyFlags are the flags that append runs to a history (`darktime
// report`, `darktime run`) or read one.
type historyFlags struct {
	location, commit, scenario, target string
}

// addAppend adds the flags of a command that appends; withSeries adds
// --scenario and --target (a run of darktime run names its own).
func (h *historyFlags) addAppend(f *pflag.FlagSet, withSeries bool) {
	f.StringVar(&h.location, "history", "", "append the run's headline metrics to this history: a folder (history.jsonl in it) or a postgres:// URL")
	f.StringVar(&h.commit, "commit", "", "the commit under test, for the history (default $GITHUB_SHA, else git rev-parse HEAD)")
	if withSeries {
		h.addSeries(f, "the series the run belongs to in the history: a scenario name (default the result's scenario, if any)",
			"the target label within the scenario's series (default none)")
	}
}

// addSeries adds --scenario and --target with their help.
func (h *historyFlags) addSeries(f *pflag.FlagSet, scenarioHelp, targetHelp string) {
	f.StringVar(&h.scenario, "scenario", "", scenarioHelp)
	f.StringVar(&h.target, "target", "", targetHelp)
}

// open opens the history, warnings on stderr; nil without --history.
func (h *historyFlags) open(cmd *cobra.Command) (history.Store, error) {
	if h.location == "" {
		return nil, nil
	}
	st, err := history.Open(cmd.Context(), h.location, history.Options{
		Warn: func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), "history: warning:", msg) },
	})
	return st, historyErr(err)
}

// meta is what every record of this command says beyond its report.
func (h *historyFlags) meta(ctx context.Context) history.Meta {
	m := history.Meta{Commit: h.commit, Scenario: h.scenario, Target: h.target, Machine: machine.Describe()}
	if m.Commit == "" {
		dir, _ := os.Getwd()
		m.Commit = history.DetectCommit(ctx, dir)
	}
	return m
}

// appendReport appends one report; a run already there is a warning.
func (h *historyFlags) appendReport(cmd *cobra.Command, st history.Store, r *report.Report, gates []report.GateResult, m history.Meta) error {
	rec, err := history.AppendReport(context.WithoutCancel(cmd.Context()), st, r, gates, m)
	switch {
	case errors.Is(err, history.ErrDuplicate):
		fmt.Fprintf(cmd.ErrOrStderr(), "history: %v: not appended again\n", err)
		return nil
	case err != nil:
		return historyErr(fmt.Errorf("history %s: %w", h.location, err))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "history: run %s of %s (%s) appended to %s\n", rec.RunID, rec.Series(), rec.Verdict, h.location)
	return nil
}

// reportDone is Request.Done for `darktime report --history`.
func (h *historyFlags) reportDone(cmd *cobra.Command, st history.Store) func(*report.Report, []report.GateResult) error {
	m := h.meta(cmd.Context())
	return func(r *report.Report, gates []report.GateResult) error {
		return h.appendReport(cmd, st, r, gates, m)
	}
}

// runDone is runner.Config.AfterRun for `darktime run --history`: one
// record per target, its label the target.
func (h *historyFlags) runDone(cmd *cobra.Command, st history.Store) func(context.Context, *runner.Outcome) error {
	m := h.meta(cmd.Context())
	return func(_ context.Context, o *runner.Outcome) error {
		var errs []error
		for _, t := range o.Targets {
			if t.Report == nil {
				continue
			}
			tm := m
			tm.Target = t.Label
			errs = append(errs, h.appendReport(cmd, st, t.Report, t.Gates, tm))
		}
		return errors.Join(errs...)
	}
}

// historyOptions are the flags of `darktime report history`.
type historyOptions struct {
	h                historyFlags
	metrics          []string
	opts             history.AnalyzeOptions
	last             int
	jsonOut          string
	failOnRegression bool
}

func newReportHistoryCmd() *cobra.Command {
	var o historyOptions
	cmd := &cobra.Command{
		Use:   "history DIR|postgres://...",
		Short: "Find the runs where a metric shifted in a history of runs (E-divisive means); exit 1 on a standing regression with --fail-on-regression",
		Long: `Reads the history that darktime run --history and darktime report --history
append to (a folder holding history.jsonl, or a postgres:// URL), and for each
series (scenario and target) and each headline metric finds the change points:
E-divisive means (Matteson & James 2014, as Apache Otava), energy distance with
alpha 1, significance by a seeded permutation test. Each change shows the run
and commit where it happens, the means before and after, the relative change,
p and the confidence; shifts under --min-relative are not flagged.

A regression stands when it is a metric's last change and lies among the last
--recent runs. Exit 0 (also with standing regressions, unless
--fail-on-regression: then 1); 2 for an unreadable history, a bad URL or a
malformed record. A change needs --min-size runs on each side: to judge the
latest run alone, use darktime report compare --history.`,
		Example: `  darktime report history results/history
  darktime report history results/history --scenario ci-smoke --fail-on-regression
  darktime report history postgres://ci@db/perf --json changes.json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("give one history: a folder or a postgres:// URL")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return historyErr(o.run(cmd, args[0])) },
	}
	f := cmd.Flags()
	o.h.addSeries(f, "only this scenario's series (default every series)", "only this target's series")
	f.StringArrayVar(&o.metrics, "metric", nil, "metrics to analyse (default: those report compare compares)")
	f.IntVar(&o.last, "last", history.DefaultWindow, "analyse the last N runs of the history")
	f.IntVar(&o.opts.Recent, "recent", history.DefaultRecent, "a regression among the last K runs of its series stands")
	f.BoolVar(&o.failOnRegression, "fail-on-regression", false, "exit 1 when a regression stands")
	f.Float64Var(&o.opts.MinRelative, "min-relative", report.DefaultMinRelative, "shifts below this share of the level before are not flagged")
	f.Float64Var(&o.opts.ChangePoint.PValue, "p-value", 0.01, "the largest p of a change point")
	f.IntVar(&o.opts.ChangePoint.Permutations, "permutations", 499, "shuffles of the permutation test")
	f.IntVar(&o.opts.ChangePoint.MinSize, "min-size", 3, "fewest runs on each side of a change")
	f.Uint64Var(&o.opts.ChangePoint.Seed, "seed", 1, "seed of the shuffles (the same history gives the same answer)")
	f.StringVar(&o.jsonOut, "json", "", "write the darktime.history-analysis/v1 JSON here (- for stdout, instead of the text)")
	return cmd
}

func (o *historyOptions) run(cmd *cobra.Command, location string) error {
	if o.last < 1 {
		return usagef("--last %d: at least 1", o.last)
	}
	o.h.location = location
	st, err := o.h.open(cmd)
	if err != nil {
		return err
	}
	defer st.Close()
	recs, err := st.List(cmd.Context(), history.Filter{Scenario: o.h.scenario, Target: o.h.target, Limit: o.last})
	if err != nil {
		return err
	}
	o.opts.Metrics = splitList(o.metrics)
	a, err := history.Analyze(recs, o.opts)
	if err != nil {
		return err
	}
	if o.jsonOut == "-" {
		err = a.WriteJSON(cmd.OutOrStdout())
	} else if err = report.WriteFile(o.jsonOut, a.WriteJSON); err == nil {
		err = a.WriteText(cmd.OutOrStdout())
	}
	if err != nil || !o.failOnRegression {
		return err
	}
	return a.Err()
}

// compareWithHistory is `report compare --history`: the candidates
// against the last runs of their series.
func compareWithHistory(cmd *cobra.Command, h *historyFlags, runs int, cand []string, opts report.CompareOptions, jsonOut string) error {
	st, err := h.open(cmd)
	if err != nil {
		return err
	}
	defer st.Close()
	candRuns, err := reportFiles(cmd).Runs(cmd.Context(), cand)
	if err != nil {
		return err
	}
	sel := history.BaseSelect{Scenario: h.scenario, Target: h.target, Runs: runs}
	for _, r := range candRuns {
		sel.Exclude = append(sel.Exclude, r.RunID)
	}
	base, series, err := history.Base(cmd.Context(), st, sel)
	if err != nil {
		return err
	}
	cmp, err := report.Compare(base, candRuns, opts)
	if err != nil {
		return err
	}
	cmp.Notes = append(cmp.Notes, fmt.Sprintf("base: the last %d run(s) of %s in the history %s", len(base), series, h.location))
	return cmp.Write(jsonOut, cmd.OutOrStdout())
}
