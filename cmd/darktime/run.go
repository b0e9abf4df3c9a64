package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/report/history"
	"github.com/darktime/darktime/runner"
	"github.com/darktime/darktime/scenario"
)

func init() { subcommands = append(subcommands, newRunCmd) }

// runOptions are the flags of `darktime run`.
type runOptions struct {
	check, skipBinaries, quiet bool
	ov                         scenario.Overrides
	logLevel                   string
	h                          historyFlags
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [--check] FILE...",
		Short: "Run a scenario (scenarios/NAME.yaml) from nothing to a verdict; --check only validates it",
		Long: `Run a scenario: start what its target needs (a private redis-server, the
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

--history DIR|postgres://... appends each target's headline metrics to a
history (darktime report history finds where they shifted), also for a run
whose gates failed or that was interrupted.

Exit status: 0 when every gate passed; 1 when a gate failed, the run was
interrupted (what it measured is written) or something it started failed;
2 when a file does not check (FILE:LINE:COLUMN: PATH: what is wrong and what to do).`,
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
	opts := scenario.Options{SkipBinaries: o.skipBinaries, Overrides: o.ov, AllowSpecialFiles: allowSpecial && o.check, CheckCanary: checkCanaryPlan}
	if err := scenario.CheckFiles(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), files, opts); err != nil {
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
	cfg := runner.Config{Logger: log, Out: cmd.OutOrStdout(), Quiet: o.quiet, Env: childEnv()}
	st, err := o.h.open(cmd)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
		cfg.AfterRun = o.h.runDone(cmd, st)
	}
	return usageIf(runner.RunFiles(cmd.Context(), files, opts, cfg, cmd.ErrOrStderr()), runner.ErrScenario, history.ErrInput)
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
