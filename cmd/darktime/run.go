package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/runner"
	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/swarm"
)

func init() { subcommands = append(subcommands, newRunCmd) }

// workerFlags are the hidden flags of a swarm worker process of a run
// with clients.procs > 1 (the runner starts them).
type workerFlags struct {
	part, out, label, runID, prefix string
	targets                         []string
	seed                            uint64
	publishAt                       int64
}

func newRunCmd() *cobra.Command {
	var (
		check, skipBinaries, quiet bool
		ov                         scenario.Overrides
		logLevel                   string
		wf                         workerFlags
	)
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
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := ov.Validate(cmd.Flags().Changed("time-scale")); err != nil {
				return usagef("%v", err)
			}
			// A run reads its file again (the runner, its workers): only
			// --check reads a FIFO or a device.
			_, allowSpecial := inputLimits(cmd)
			if allowSpecial && !check {
				for _, f := range files {
					if st, err := os.Stat(f); err == nil && !st.Mode().IsRegular() {
						return usagef("%s is not a regular file: a run reads its scenario more than once (each swarm worker does); --allow-special-files works with --check", f)
					}
				}
			}
			opts := scenario.Options{SkipBinaries: skipBinaries, Overrides: ov, AllowSpecialFiles: allowSpecial && check}
			if wf.part != "" {
				return runWorker(cmd, files, opts, wf)
			}
			if err := scenario.CheckFiles(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), files, opts); err != nil {
				return usageError{err}
			}
			if check {
				return nil
			}
			if quiet {
				logLevel = quietLogLevel(logLevel)
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			var errs []error
			for _, f := range files {
				if err := runScenario(cmd, f, opts, log, quiet); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", f, err))
					if cmd.Context().Err() != nil {
						break
					}
				}
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&check, "check", false, "validate the files and exit: 0 valid, 2 invalid")
	f.BoolVar(&skipBinaries, "skip-binary-check", false, "do not look for nginx or redis-server (checking scenarios meant for another machine)")
	f.BoolVar(&ov.Embedded, "embedded", false, "replace the target with one embedded node on the in-process broker (no Redis)")
	f.Float64Var(&ov.ShadowPercent, "shadow", 0, "put the shadow proxy in front, mirroring this percent of users to an embedded candidate")
	f.IntVar(&ov.Clients, "clients", 0, "replace clients.count")
	f.Float64Var(&ov.TimeScale, "time-scale", 0, "multiply the phases, fault times and max_duration by this (0.25: a quarter)")
	f.StringVar(&ov.Dir, "out", "", "results folder (replaces outputs.dir)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress lines, and at most warnings logged (raises --log-level to warn)")
	f.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error (lifecycle messages on stderr)")
	f.StringVar(&wf.part, "part", "", "run swarm part INDEX/COUNT only (set by the runner)")
	f.StringVar(&wf.out, "worker-out", "", "the worker's result file (set by the runner)")
	f.StringVar(&wf.label, "worker-label", "", "the target's label (set by the runner)")
	f.StringArrayVar(&wf.targets, "worker-target", nil, "a target URL (set by the runner)")
	f.StringVar(&wf.runID, "worker-run-id", "", "the run id (set by the runner)")
	f.StringVar(&wf.prefix, "worker-channel-prefix", "", "the channel prefix (set by the runner)")
	f.Uint64Var(&wf.seed, "worker-seed", 0, "the seed (set by the runner)")
	f.Int64Var(&wf.publishAt, "worker-publish-at", 0, "when publishing starts, Unix ns (set by the runner)")
	for _, h := range []string{"part", "worker-out", "worker-label", "worker-target", "worker-run-id", "worker-channel-prefix", "worker-seed", "worker-publish-at"} {
		_ = f.MarkHidden(h)
	}
	return cmd
}

// runScenario runs one checked file.
func runScenario(cmd *cobra.Command, file string, opts scenario.Options, log *slog.Logger, quiet bool) error {
	s, err := scenario.LoadFileContext(cmd.Context(), file, opts)
	if err != nil {
		return usageError{err}
	}
	out := cmd.OutOrStdout()
	r, err := runner.New(runner.Config{
		Scenario: s, File: file, Logger: log, Out: out, Quiet: quiet,
		Env:    childEnv(),
		Worker: workerArgs(file, opts),
	})
	if err != nil {
		return err
	}
	o, runErr := r.Run(cmd.Context())
	if o != nil {
		if err := o.WriteSummary(out); err != nil {
			return err
		}
		for _, g := range o.Failed() {
			fmt.Fprintf(cmd.ErrOrStderr(), "gate failed: %s\n", g)
		}
		if runErr == nil {
			runErr = o.Err()
		}
	}
	return runErr
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

// workerArgs builds the command line of a swarm worker process.
func workerArgs(file string, opts scenario.Options) func(swarm.Part, runner.WorkerArgs) []string {
	return func(part swarm.Part, w runner.WorkerArgs) []string {
		a := []string{"run", "--quiet", "--part", fmt.Sprintf("%d/%d", part.Index, part.Count),
			"--worker-out", w.Out, "--worker-label", w.Label, "--worker-run-id", w.RunID,
			"--worker-channel-prefix", w.ChannelPrefix, "--worker-seed", strconv.FormatUint(w.Seed, 10),
			"--worker-publish-at", strconv.FormatInt(w.PublishAt.UnixNano(), 10)}
		for _, t := range w.Targets {
			a = append(a, "--worker-target", t)
		}
		o := opts.Overrides
		if o.Embedded {
			a = append(a, "--embedded")
		}
		if o.ShadowPercent > 0 {
			a = append(a, "--shadow", strconv.FormatFloat(o.ShadowPercent, 'f', -1, 64))
		}
		if o.Clients > 0 {
			a = append(a, "--clients", strconv.Itoa(o.Clients))
		}
		if o.TimeScale > 0 {
			a = append(a, "--time-scale", strconv.FormatFloat(o.TimeScale, 'f', -1, 64))
		}
		if opts.SkipBinaries {
			a = append(a, "--skip-binary-check")
		}
		return append(a, file)
	}
}

// runWorker runs one part of a scenario's swarm and writes its result.
func runWorker(cmd *cobra.Command, files []string, opts scenario.Options, wf workerFlags) error {
	if len(files) != 1 || wf.out == "" || len(wf.targets) == 0 {
		return usagef("a worker runs one scenario FILE with --worker-out and --worker-target")
	}
	part, err := parsePart(wf.part)
	if err != nil {
		return err
	}
	s, err := scenario.LoadFileContext(cmd.Context(), files[0], opts)
	if err != nil {
		return usageError{err}
	}
	t := s.Target
	if s.CompareWith != nil && wf.label == s.CompareWith.Label {
		t = *s.CompareWith
	}
	shadowed := s.Shadow != nil && t.Label == s.Target.Label
	cfg, err := runner.SwarmConfig(s, t, wf.targets, shadowed)
	if err != nil {
		return err
	}
	cfg.Part, cfg.RunID, cfg.Seed, cfg.ChannelPrefix = part, wf.runID, wf.seed, wf.prefix
	if wf.publishAt > 0 {
		cfg.PublishAt = time.Unix(0, wf.publishAt)
	}
	raiseFileLimit()
	cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	res, err := swarm.Run(cmd.Context(), cfg)
	if res != nil {
		if werr := writeSwarmResult(res, wf.out, ""); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}
