package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/capacity"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/runner"
	"github.com/darktime/darktime/scenario"
)

// capacityFlags are report capacity's flags of the resource model.
type capacityFlags struct {
	forecast, model, modelOut string
	window                    int
	verify                    bool
	v                         capacity.VerifyOptions
	verifyDir, verifyJSON     string
}

func (c *capacityFlags) add(f *pflag.FlagSet) {
	f.StringVar(&c.forecast, "forecast", "", "size this forecast (YAML: peak_users, channels, distribution, messages_per_s, hot_messages_per_s, event_bytes, node, headroom)")
	f.StringVar(&c.model, "model", "", "plan from this saved model instead of ramp runs")
	f.StringVar(&c.modelOut, "model-out", "", "write the fitted model here (darktime.capacity-model/v1)")
	f.IntVar(&c.window, "window", capacity.DefaultWindow, "samples (seconds) per window of the fit")
	f.BoolVar(&c.verify, "verify", false, "scale the forecast down to this machine, run it and report predicted against measured")
	f.StringVar(&c.verifyDir, "verify-dir", "results/capacity-verify", "the verification run's folder")
	f.StringVar(&c.verifyJSON, "verify-json", "", "write the verification as JSON here (darktime.capacity-verify/v1)")
	f.Float64Var(&c.v.Tolerance, "tolerance", capacity.DefaultTolerance, "--verify: the largest |predicted - measured| / measured that passes")
	f.Float64Var(&c.v.TargetCPU, "verify-cpu", capacity.DefaultTargetCPU, "--verify: scale the forecast to about this much server CPU (cores) on one node")
	f.IntVar(&c.v.MaxClients, "verify-clients", 0, "--verify: at most this many users (default: the most connections a fitted run held, at most 8,000)")
	f.DurationVar(&c.v.Measure, "verify-duration", capacity.DefaultMeasure, "--verify: how long to measure, after a warm-up of --verify-warmup")
	f.DurationVar(&c.v.Warmup, "verify-warmup", capacity.DefaultWarmup, "--verify: the warm-up before the measured stretch")
}

// run is report capacity with the resource model.
func (c *capacityFlags) run(cmd *cobra.Command, args []string, slo float64, breach int, jsonOut string) error {
	switch {
	case c.model == "" && len(args) == 0:
		return usagef("give ramp runs (darktime run folders) or --model FILE")
	case c.forecast == "" && c.modelOut == "":
		return usagef("give --forecast FILE to plan, or --model-out FILE to save the fit")
	case c.verify && c.forecast == "":
		return usagef("--verify checks a forecast: give --forecast FILE")
	}
	rq := capacity.Request{
		Runs: args, Model: c.model, Forecast: c.forecast, ModelOut: c.modelOut, JSON: jsonOut, Text: cmd.OutOrStdout(),
		Load: capacity.LoadOptions{Files: reportFiles(cmd), SLOP99Ms: slo, Breach: breach, Window: c.window,
			CutAtKnee: cmd.Flags().Changed("slo-p99-ms")},
	}
	m, p, err := rq.Do(cmd.Context())
	if err != nil || !c.verify {
		return reportErr(err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "\nverify: running the forecast scaled down to this machine in %s (about %v)\n", c.verifyDir, c.v.Warmup+c.v.Measure+time.Minute)
	v, err := capacity.Verify(cmd.Context(), m, p.Forecast, c.v, c.verifyDir, rq.Load, runVerification(cmd))
	if err != nil {
		return runExit(cmd, reportErr(err))
	}
	if err := report.WriteFile(c.verifyJSON, v.WriteJSON); err != nil {
		return err
	}
	if err := v.WriteText(cmd.OutOrStdout()); err != nil {
		return err
	}
	if !v.Pass {
		return errors.New("capacity: a resource is off its prediction by more than the tolerance")
	}
	return nil
}

// runVerification runs the generated scenario as darktime run does; its
// summary goes to run-summary.txt beside it.
func runVerification(cmd *cobra.Command) capacity.RunScenario {
	return func(ctx context.Context, file string) (string, error) {
		summary, err := os.Create(filepath.Join(filepath.Dir(file), "run-summary.txt"))
		if err != nil {
			return "", err
		}
		defer summary.Close()
		log, err := newLogger("warn")
		if err != nil {
			return "", err
		}
		cfg := runner.Config{Logger: log, Out: summary, Quiet: true, Env: childEnv()}
		err = runner.RunFiles(ctx, []string{file}, scenario.Options{}, cfg, summary)
		switch {
		case err == nil:
			return "", nil
		case errors.Is(err, runner.ErrInterrupted), errors.Is(err, runner.ErrUnreachable), errors.Is(err, runner.ErrScenario), ctx.Err() != nil:
			return "", err
		}
		return fmt.Sprintf("the run's gates: %v (%s)", err, summary.Name()), nil
	}
}
