package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/canary"
	"github.com/darktime/darktime/shadow"
)

func init() { subcommands = append(subcommands, newCanaryCmd) }

// canaryOptions are the flags of `darktime canary`.
type canaryOptions struct {
	plan, token, out, metricsListen, logLevel string
}

func newCanaryCmd() *cobra.Command {
	var o canaryOptions
	cmd := &cobra.Command{
		Use:   "canary --plan FILE",
		Short: "Roll a candidate out step by step on shadow proxies, judged at every step",
		Long: `Run a progressive rollout: for each step of the plan, set the share of users
on the shadow proxies (POST /_darktime/step), wait for the step's evidence
(GET /_darktime/cohorts), judge the candidate's cohort against the primary's
(or the baseline's) and promote, hold or roll back (POST /_darktime/rollback).
A step still holding at its max_duration is rolled back: evidence never
sufficed. Every verdict prints with its checks; --out records the rollout.

  darktime canary --plan canary.yaml --out canary.json
  DARKTIME_SHADOW_ADMIN_TOKEN=... darktime canary --plan canary.yaml --metrics-listen 127.0.0.1:9095

Exit status: 0 promoted, 1 rolled back, 2 bad input (plan, flags, a token the
proxy refuses), 3 a proxy could not be reached, or interrupted (Ctrl-C: the
current share is left as it is, the document is marked interrupted).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.bind(cmd.Flags())
	return cmd
}

func (o *canaryOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&o.plan, "plan", "", "the rollout plan, YAML (README: darktime canary)")
	f.StringVar(&o.token, "admin-token", "", "bearer token of the proxies' admin API (env "+shadow.AdminTokenEnv+")")
	f.StringVar(&o.out, "out", "", "write the rollout's JSON document here (canary/SCHEMA.md), also when rolled back or interrupted")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve the canary's Prometheus metrics on this address while it runs (GET /metrics)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (o *canaryOptions) run(cmd *cobra.Command) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	if o.plan == "" {
		return usagef("--plan FILE is needed")
	}
	_, allowSpecial := inputLimits(cmd)
	plan, err := canary.ReadPlanFile(cmd.Context(), o.plan, allowSpecial)
	if err != nil {
		return usageError{err}
	}
	admin, err := o.admin(cmd, plan)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stop, err := serveMetrics(o.metricsListen, reg)
	if err != nil {
		return err
	}
	defer stop()
	c, err := canary.New(canary.Config{Plan: plan, Admin: admin, Out: cmd.OutOrStdout(), Logger: log, Registerer: reg})
	if err != nil {
		return usageIf(err, canary.ErrInvalidPlan)
	}
	res, runErr := c.Run(cmd.Context())
	if err := o.writeOut(res); err != nil {
		return fmt.Errorf("--out: %w (the rollout ended %s)", err, res.Outcome)
	}
	return exitFor(res, runErr)
}

// admin is the proxies' admin API with the token from the flag or the
// environment, never a flag default (--help would print it).
func (o *canaryOptions) admin(cmd *cobra.Command, plan canary.Plan) (*canary.HTTPAdmin, error) {
	a := &canary.HTTPAdmin{URLs: plan.Admin, Fleet: plan.Fleet, Token: o.token, TokenSource: "--admin-token"}
	if !cmd.Flags().Changed("admin-token") {
		a.Token, a.TokenSource = os.Getenv(shadow.AdminTokenEnv), shadow.AdminTokenEnv
	}
	for _, r := range a.Token {
		if r <= ' ' || r > '~' {
			return nil, usagef("the admin token from %s: visible ASCII only (no spaces or line breaks)", a.TokenSource)
		}
	}
	return a, nil
}

func (o *canaryOptions) writeOut(res *canary.Result) error {
	if o.out == "" {
		return nil
	}
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// exitFor is the exit of an ended rollout: nil when promoted.
func exitFor(res *canary.Result, err error) error {
	if err == nil {
		err = errors.New(res.Reason)
	}
	switch res.Outcome {
	case canary.Promoted:
		return nil
	case canary.Refused:
		return usageError{err}
	case canary.Interrupted:
		return exitError{res.Outcome.ExitCode(), fmt.Errorf("interrupted: the current share is left as it is: %w", err)}
	}
	return exitError{res.Outcome.ExitCode(), err}
}

// serveMetrics serves reg on addr until stop; "" serves nothing.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--metrics-listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// checkCanaryPlan checks a scenario's shadow.canary plan; the run's
// proxies will replace its admin:.
func checkCanaryPlan(ctx context.Context, path string) error {
	_, err := canary.ReadPlanFileWith(ctx, path, false, []string{"http://127.0.0.1:1"})
	return err
}
