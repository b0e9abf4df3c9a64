package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/swarm"
)

func init() { subcommands = append(subcommands, newReportCmd) }

// reportErr turns the report package's bad-input errors into usage errors
// (exit 2); a failed gate or a regression stays an ordinary error (exit 1).
func reportErr(err error) error {
	if err != nil && errors.Is(err, report.ErrInput) {
		return usageError{err}
	}
	return err
}

func newReportCmd() *cobra.Command {
	var (
		statsBefore, statsAfter, shadows, gates []string
		gatesFile, jsonOut, junitOut, htmlOut   string
		quiet, listMetrics                      bool
	)
	cmd := &cobra.Command{
		Use:   "report [flags] RESULT...",
		Short: "Reconcile, summarise and gate swarm results; write terminal, JSON, JUnit and HTML reports",
		Long: `Reads the result files of ONE swarm run (its parts are merged exactly; results
of different runs are refused), optionally the server's GET /stats before and
after the run and shadow-proxy ledgers, and reports latency percentiles,
throughput and every +1/-1 ledger with where and how it does not balance.

Gates ('p99_delivery_ms < 50', repeatable, or a YAML/JSON file) make it a CI
step: exit 0 when every gate passes, 1 when one fails (one line per failed
gate on stderr), 2 for bad input (a corrupt file, mixed runs, an unknown
metric or bad gate syntax). --metrics lists the metric names.

Output formats: report/REPORT.md.`,
		Example: `  darktime report results/run.json
  darktime report results/run-*.json --stats-before before.json --stats-after after.json \
    --gate 'p99_delivery_ms < 50' --gate 'lost == 0' --junit gates.xml --html report.html`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listMetrics {
				return printMetrics(cmd.OutOrStdout())
			}
			if len(args) == 0 {
				return usagef("give at least one swarm result file")
			}
			files := reportFiles(cmd)
			in, err := readReportInputs(cmd, files, args, statsBefore, statsAfter, shadows)
			if err != nil {
				return err
			}
			parsed, err := report.ParseGates(gates)
			if err != nil {
				return usageError{err}
			}
			if gatesFile != "" {
				more, err := files.Gates(cmd.Context(), gatesFile)
				if err != nil {
					return usageError{err}
				}
				parsed = append(parsed, more...)
			}
			r, err := report.Build(in)
			if err != nil {
				return reportErr(err)
			}
			results, err := r.Evaluate(parsed)
			if err != nil {
				return reportErr(err)
			}
			for _, out := range []struct {
				path  string
				write func(io.Writer) error
			}{{jsonOut, r.WriteJSON}, {junitOut, r.WriteJUnit}, {htmlOut, r.WriteHTML}} {
				if err := writeFile(out.path, out.write); err != nil {
					return err
				}
			}
			if !quiet {
				if err := r.WriteText(cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			return report.Failures(results)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&statsBefore, "stats-before", nil, "GET /stats of a server node before the run (repeatable: one per node)")
	f.StringArrayVar(&statsAfter, "stats-after", nil, "GET /stats of a server node after the run drained (repeatable: one per node)")
	f.StringArrayVar(&shadows, "shadow", nil, "shadow proxy ledger file (repeatable)")
	f.StringArrayVar(&gates, "gate", nil, "threshold 'METRIC OP NUMBER', OP one of < <= > >= == != (repeatable)")
	f.StringVar(&gatesFile, "gates", "", "YAML or JSON file with gates: a list of expressions, or {gates: [...]}")
	f.StringVar(&jsonOut, "json", "", "write the darktime.report/v1 JSON here")
	f.StringVar(&junitOut, "junit", "", "write the gates as JUnit XML here")
	f.StringVar(&htmlOut, "html", "", "write the self-contained HTML page with charts here")
	f.BoolVarP(&quiet, "quiet", "q", false, "no terminal summary")
	f.BoolVar(&listMetrics, "metrics", false, "list the metrics gates and comparisons can name, and exit")
	cmd.AddCommand(newReportCompareCmd(), newReportCapacityCmd())
	return cmd
}

func printMetrics(w io.Writer) error {
	for _, m := range report.Vocabulary {
		needs := ""
		if m.Needs != "" {
			needs = " (needs " + m.Needs + ")"
		}
		if _, err := fmt.Fprintf(w, "%-24s %s%s\n", m.Name, m.Help, needs); err != nil {
			return err
		}
	}
	return nil
}

// reportFiles reads the report's inputs within the command line's bounds.
func reportFiles(cmd *cobra.Command) report.Files {
	maxBytes, allowSpecial := inputLimits(cmd)
	return report.Files{MaxBytes: maxBytes, AllowSpecial: allowSpecial}
}

func readReportInputs(cmd *cobra.Command, files report.Files, results, before, after, shadows []string) (report.Inputs, error) {
	var in report.Inputs
	ctx := cmd.Context()
	for _, p := range results {
		r, err := files.Result(ctx, p)
		if err != nil {
			return in, usageError{err}
		}
		in.Results = append(in.Results, r)
		in.ResultNames = append(in.ResultNames, p)
	}
	for _, set := range []struct {
		paths []string
		into  *[]server.Stats
	}{{before, &in.StatsBefore}, {after, &in.StatsAfter}} {
		for _, p := range set.paths {
			st, err := files.Stats(ctx, p)
			if err != nil {
				return in, usageError{err}
			}
			*set.into = append(*set.into, st)
		}
	}
	for _, p := range shadows {
		l, err := files.Shadow(ctx, p)
		if err != nil {
			return in, usageError{err}
		}
		in.Shadow = append(in.Shadow, l)
		in.ShadowNames = append(in.ShadowNames, p)
	}
	return in, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runsByID reads result files and builds one report per run, merging the
// parts of each run.
func runsByID(cmd *cobra.Command, paths []string) ([]*report.Report, error) {
	byRun := map[string][]*swarm.Result{}
	var order []string
	files := reportFiles(cmd)
	for _, p := range paths {
		r, err := files.Result(cmd.Context(), p)
		if err != nil {
			return nil, usageError{err}
		}
		if _, ok := byRun[r.RunID]; !ok {
			order = append(order, r.RunID)
		}
		byRun[r.RunID] = append(byRun[r.RunID], r)
	}
	var out []*report.Report
	for _, id := range order {
		r, err := report.Build(report.Inputs{Results: byRun[id]})
		if err != nil {
			return nil, reportErr(err)
		}
		out = append(out, r)
	}
	return out, nil
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func newReportCompareCmd() *cobra.Command {
	var (
		base, cand, metrics []string
		opts                report.CompareOptions
		jsonOut             string
	)
	cmd := &cobra.Command{
		Use:   "compare BASE... -- CANDIDATE...",
		Short: "Compare candidate runs with base runs metric by metric; exit 1 on a regression beyond noise",
		Long: `Each side is one or more runs (result files; the parts of one run are merged
by run_id). For each metric it prints the median and the MAD of each side,
the delta, and the threshold a change must pass to count: the larger of
--noise-k × the noise (the larger of 1.4826 × MAD and half the range, over
both sides) and --min-relative × the base
median. Repeat runs (3 or more a side) for a real noise estimate. Exits 1
when a metric got worse by more than its threshold.`,
		Example: `  darktime report compare base-1.json base-2.json base-3.json -- cand-1.json cand-2.json cand-3.json
  darktime report compare --base base-1.json,base-2.json --candidate cand-1.json,cand-2.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, c := splitList(base), splitList(cand)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				b, c = append(b, args[:dash]...), append(c, args[dash:]...)
			} else if len(args) > 0 {
				return usagef("separate base and candidate files with --, or use --base and --candidate")
			}
			if len(b) == 0 || len(c) == 0 {
				return usagef("give base and candidate results: BASE... -- CANDIDATE..., or --base and --candidate")
			}
			baseRuns, err := runsByID(cmd, b)
			if err != nil {
				return err
			}
			candRuns, err := runsByID(cmd, c)
			if err != nil {
				return err
			}
			opts.Metrics = splitList(metrics)
			cmp, err := report.Compare(baseRuns, candRuns, opts)
			if err != nil {
				return reportErr(err)
			}
			if err := writeFile(jsonOut, cmp.WriteJSON); err != nil {
				return err
			}
			if err := cmp.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			return cmp.Err()
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&base, "base", nil, "base result files (comma-separated or repeated)")
	f.StringArrayVar(&cand, "candidate", nil, "candidate result files (comma-separated or repeated)")
	f.StringArrayVar(&metrics, "metric", nil, "metrics to compare (default: latency percentiles, throughput, errors, ledger kinds)")
	f.Float64Var(&opts.NoiseK, "noise-k", 3, "a change counts when it exceeds this many times the noise")
	f.Float64Var(&opts.MinRelative, "min-relative", 0.05, "changes below this share of the base median never count")
	f.StringVar(&jsonOut, "json", "", "write the darktime.compare/v1 JSON here")
	return cmd
}

func newReportCapacityCmd() *cobra.Command {
	var (
		opts    report.CapacityOptions
		jsonOut string
	)
	cmd := &cobra.Command{
		Use:   "capacity RESULT... --slo-p99-ms X --users P --rate M",
		Short: "Find the knee of a ramp run and size a cluster for a peak",
		Long: `From a ramp run (connections and deliveries/s rising over time), finds the most
subscribers and deliveries/s per node that kept p99 delivery latency under the
SLO, then answers: for --users concurrent users and --rate messages/s on the
hottest channel, how many nodes. Prints its assumptions.`,
		Example: `  darktime report capacity results/ramp.json --slo-p99-ms 50 --users 200000 --rate 20 --hot-share 0.1`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := readReportInputs(cmd, reportFiles(cmd), args, nil, nil, nil)
			if err != nil {
				return err
			}
			r, err := report.Build(in)
			if err != nil {
				return reportErr(err)
			}
			c, err := report.Plan(r, opts)
			if err != nil {
				return reportErr(err)
			}
			if err := writeFile(jsonOut, c.WriteJSON); err != nil {
				return err
			}
			return c.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.Float64Var(&opts.SLOP99Ms, "slo-p99-ms", 0, "the SLO: p99 delivery latency in ms (required)")
	f.Int64Var(&opts.PeakUsers, "users", 0, "peak concurrent users to plan for (required)")
	f.Float64Var(&opts.HotRate, "rate", 0, "messages/s on the hottest channel at the peak (required)")
	f.Float64Var(&opts.HotShare, "hot-share", 1, "share of users subscribed to the hottest channel")
	f.Float64Var(&opts.Headroom, "headroom", 0.7, "plan nodes at this share of the knee")
	f.IntVar(&opts.Nodes, "nodes", 1, "server nodes that served the ramp run")
	f.IntVar(&opts.Breach, "breach", 3, "consecutive seconds over the SLO that end the usable ramp")
	f.StringVar(&jsonOut, "json", "", "write the plan as JSON here")
	return cmd
}
