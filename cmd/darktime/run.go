package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/report/history"
	"github.com/darktime/darktime/runner"
	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/swarm/live"
)

func init() { subcommands = append(subcommands, newRunCmd) }

// runOptions are the flags of `darktime run`.
type runOptions struct {
	check, skipBinaries, quiet bool
	ov                         scenario.Overrides
	logLevel                   string
	h                          historyFlags
	summaryMD                  string
	remoteWrite                live.Flags
}

// runLong is the help of darktime run.
const runLong = `Run a scenario: start what its target needs (a private redis-server, the
reference server's nodes, nginx + nchan, the shadow proxy and its candidate),
drive the swarm of EventSource clients and publishers through the phases,
inject the faults on time, snapshot the servers' /stats before and after, and
report with the scenario's thresholds as gates: the terminal summary, and the
JSON, HTML and JUnit files of outputs (results/NAME by default).

--check only checks the files: the schema (version 1, scenarios/README.md),
every value, faults against the run and its nodes, thresholds against the
report's metric vocabulary, and what this machine allows (open files,
ephemeral ports, nginx for start: nchan, redis-server for broker: redis).

The overrides run a library scenario in another setting; the result is
checked like the file. make run is

  darktime run --embedded --shadow 10 --clients 1000 --time-scale 0.25 scenarios/steady-state.yaml

--remote-write URL exports each target's swarm live through Prometheus remote
write, labelled with the scenario and the target (README "Live metrics").

--history DIR|postgres://... appends each target's headline metrics to a
history (darktime report history finds where they shifted), also for a run
whose gates failed or that was interrupted.

--summary-md FILE writes a Markdown summary (verdict, gates with their measured
values and worst windows, ledgers, latency, the HTML report's path); when
GITHUB_STEP_SUMMARY is set it is appended there too.

Exit status:
  0  every gate passed
  1  a gate failed (an abort_on_fail threshold that stopped the run early
     included), or the run failed otherwise (an output could not be written)
  2  bad input: a file does not check (FILE:LINE:COLUMN: PATH: what is wrong
     and what to do), or a flag
  3  the target could not be reached (what it needs did not start, no client
     could subscribe, no publish got a connection) or the run was interrupted
     (SIGINT, SIGTERM, limits.max_duration); what it measured is written
With several files the highest of 3, 2, 1 wins.`

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [--check] FILE...",
		Short: "Run a scenario (scenarios/NAME.yaml) from nothing to a verdict; --check only validates it",
		Long:  runLong,
		Example: `  darktime run --check scenarios/*.yaml
  darktime run scenarios/ci-smoke.yaml
  darktime run --embedded --shadow 10 scenarios/steady-state.yaml`,
		Args: func(_ *cobra.Command, files []string) error {
			if len(files) == 0 {
				return usagef("give at least one scenario FILE, e.g. darktime run --check scenarios/*.yaml")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, files []string) error { return o.run(cmd, files) },
	}
	f := cmd.Flags()
	f.BoolVar(&o.check, "check", false, "validate the files and exit: 0 valid, 2 invalid")
	f.BoolVar(&o.skipBinaries, "skip-binary-check", false, "do not look for nginx or redis-server (checking scenarios meant for another machine)")
	f.BoolVar(&o.ov.Embedded, "embedded", false, "replace the target with one embedded node on the in-process broker (no Redis)")
	f.Float64Var(&o.ov.ShadowPercent, "shadow", 0, "put the shadow proxy in front, mirroring this percent of users to an embedded candidate")
	f.IntVar(&o.ov.Clients, "clients", 0, "replace clients.count")
	f.Float64Var(&o.ov.TimeScale, "time-scale", 0, "multiply the phases, fault times and max_duration by this (0.25: a quarter)")
	f.StringVar(&o.ov.Dir, "out", "", "results folder (replaces outputs.dir)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress lines, and at most warnings logged (raises --log-level to warn)")
	f.StringVar(&o.logLevel, "log-level", "warn", "debug, info, warn or error (lifecycle messages on stderr)")
	o.h.addAppend(f, false)
	f.StringVar(&o.summaryMD, "summary-md", "", "write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)")
	addRemoteWriteFlags(f, &o.remoteWrite)
	return cmd
}

func (o *runOptions) run(cmd *cobra.Command, files []string) error {
	if err := o.ov.Validate(cmd.Flags().Changed("time-scale")); err != nil {
		return usagef("%v", err)
	}
	// A run reads its file again (to run it, to copy it beside the
	// results): only --check reads a FIFO or a device.
	_, allowSpecial := inputLimits(cmd)
	if allowSpecial && !o.check {
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && !st.Mode().IsRegular() {
				return usagef("%s is not a regular file: a run reads its scenario more than once; --allow-special-files works with --check", f)
			}
		}
	}
	rw, err := o.remoteWrite.Config(nil)
	if err != nil {
		return usageError{err}
	}
	opts := scenario.Options{SkipBinaries: o.skipBinaries, Overrides: o.ov, AllowSpecialFiles: allowSpecial && o.check, CheckCanary: checkCanaryPlan}
	md := newSummaryMD(o.summaryMD)
	var problems bytes.Buffer // what CheckFiles says, for the summary
	if err := scenario.CheckFiles(cmd.Context(), cmd.OutOrStdout(), io.MultiWriter(cmd.ErrOrStderr(), &problems), files, opts); err != nil {
		if md != nil && !o.check {
			_ = runner.WriteMarkdownError(md, strings.Join(files, " "), "BAD INPUT", fmt.Errorf("%s%w", problems.String(), err))
			_ = md.flush()
		}
		return usageError{err}
	}
	if o.check {
		return nil
	}
	if o.quiet {
		o.logLevel = quietLogLevel(o.logLevel)
	}
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	cfg := runner.Config{Logger: log, Out: cmd.OutOrStdout(), Quiet: o.quiet, Env: childEnv(), RemoteWrite: rw}
	if rw != nil {
		rw.Logger = log
	}
	st, err := o.h.open(cmd)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
		cfg.AfterRun = o.h.runDone(cmd, st)
	}
	if md != nil {
		cfg.Markdown = md
	}
	err = runner.RunFiles(cmd.Context(), files, opts, cfg, cmd.ErrOrStderr())
	if werr := md.flush(); werr != nil && err == nil {
		err = fmt.Errorf("--summary-md: %w", werr)
	}
	return runExit(cmd, err)
}

// runExit maps a run's error to its exit status (the command's help): 3
// the target unreachable or the run interrupted, 2 a file that does not
// load, 1 a failed gate or another failure.
func runExit(cmd *cobra.Command, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runner.ErrInterrupted), errors.Is(err, runner.ErrUnreachable), cmd.Context().Err() != nil:
		return exitError{3, err}
	}
	return usageIf(err, runner.ErrScenario, history.ErrInput)
}

// summaryMD collects the Markdown summary of a run and writes it to the
// --summary-md file and $GITHUB_STEP_SUMMARY (appended) at the end.
type summaryMD struct {
	bytes.Buffer
	file, step string
}

// newSummaryMD is nil when the summary goes nowhere.
func newSummaryMD(file string) *summaryMD {
	step := os.Getenv("GITHUB_STEP_SUMMARY")
	if file == "" && step == "" {
		return nil
	}
	return &summaryMD{file: file, step: step}
}

func (m *summaryMD) flush() error {
	if m == nil {
		return nil
	}
	write := func(w io.Writer) error { _, err := w.Write(m.Bytes()); return err }
	return errors.Join(report.WriteFile(m.file, write), report.AppendFile(m.step, write))
}

// childEnv is what this process passes on to the processes it starts: in
// the tests, the switch that makes the test binary act as darktime.
func childEnv() []string {
	if v := os.Getenv(asMainEnvName); v != "" {
		return []string{asMainEnvName + "=" + v}
	}
	return nil
}

// asMainEnvName is the environment variable with which the tests run
// this binary's main (see swarm_test.go).
const asMainEnvName = "DARKTIME_TEST_AS_MAIN"
