package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/report/history"
)

func init() { subcommands = append(subcommands, newReportCmd) }

// reportErr turns the report package's bad-input errors into usage errors
// (exit 2); a failed gate or a regression stays an ordinary error (exit 1).
func reportErr(err error) error { return usageIf(err, report.ErrInput) }

// reportOptions are the flags of `darktime report`.
type reportOptions struct {
	rq                 report.Request
	quiet, listMetrics bool
	h                  historyFlags
}

func newReportCmd() *cobra.Command {
	var o reportOptions
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
metric or bad gate syntax); 3 is not used (darktime run's "unreachable or
interrupted": a report judges the file it is given). --metrics lists the
metric names. A window judges the worst stretch of that many seconds:
'p99_delivery_ms[10s] < 50', 'error_rate[5s] < 0.01' (REPORT.md, "Gates").

--summary-md FILE writes a Markdown summary (verdict, gates, ledgers,
latency, the HTML report's path); when GITHUB_STEP_SUMMARY is set it is
appended there too.

--history DIR|postgres://... appends the run's headline metrics to a history
(darktime report history finds where they shifted); --scenario names its
series when the result is not a scenario run's.

Output formats: report/REPORT.md.`,
		Example: `  darktime report results/run.json
  darktime report results/run-*.json --stats-before before.json --stats-after after.json \
    --gate 'p99_delivery_ms < 50' --gate 'lost == 0' --junit gates.xml --html report.html`,
		RunE: func(cmd *cobra.Command, args []string) error { return historyErr(o.run(cmd, args)) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.rq.Paths.StatsBefore, "stats-before", nil, "GET /stats of a server node before the run (repeatable: one per node)")
	f.StringArrayVar(&o.rq.Paths.StatsAfter, "stats-after", nil, "GET /stats of a server node after the run drained (repeatable: one per node)")
	f.StringArrayVar(&o.rq.Paths.Shadow, "shadow", nil, "shadow proxy ledger file (repeatable)")
	f.BoolVar(&o.rq.Paths.MergeShadow, "merge-shadow", false, "the --shadow files are instances of one proxy fleet: report their exact sum as one ledger")
	f.StringArrayVar(&o.rq.Gates, "gate", nil, "threshold 'METRIC OP NUMBER' or 'METRIC[WINDOW] OP NUMBER', OP one of < <= > >= == != (repeatable)")
	f.StringVar(&o.rq.GatesFile, "gates", "", "YAML or JSON file with gates: a list of expressions, or {gates: [...]}")
	f.StringVar(&o.rq.JSON, "json", "", "write the darktime.report/v1 JSON here")
	f.StringVar(&o.rq.JUnit, "junit", "", "write the gates as JUnit XML here")
	f.StringVar(&o.rq.HTML, "html", "", "write the self-contained HTML page with charts here")
	f.StringVar(&o.rq.Markdown, "summary-md", "", "write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no terminal summary")
	f.BoolVar(&o.listMetrics, "metrics", false, "list the metrics gates and comparisons can name, and exit")
	o.h.addAppend(f, true)
	cmd.AddCommand(newReportCompareCmd(), newReportCapacityCmd(), newReportHistoryCmd())
	return cmd
}

func (o *reportOptions) run(cmd *cobra.Command, args []string) error {
	if o.listMetrics {
		return report.WriteVocabulary(cmd.OutOrStdout())
	}
	if len(args) == 0 {
		return usagef("give at least one swarm result file")
	}
	o.rq.Paths.Results = args
	if step := os.Getenv("GITHUB_STEP_SUMMARY"); step != "" {
		o.rq.AppendMarkdown = []string{step}
	}
	if !o.quiet {
		o.rq.Text = cmd.OutOrStdout()
	}
	st, err := o.h.open(cmd)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
		o.rq.Done = o.h.reportDone(cmd, st)
	}
	return reportFiles(cmd).Run(cmd.Context(), o.rq)
}

// reportFiles reads the report's inputs within the command line's bounds.
func reportFiles(cmd *cobra.Command) report.Files {
	maxBytes, allowSpecial := inputLimits(cmd)
	return report.Files{MaxBytes: maxBytes, AllowSpecial: allowSpecial}
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
		h                   historyFlags
		historyRuns         int
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
when a metric got worse by more than its threshold.

With --history DIR|postgres://... the base is the last --history-runs runs
of the candidates' series in that history (darktime report history): give
only the candidates.`,
		Example: `  darktime report compare base-1.json base-2.json base-3.json -- cand-1.json cand-2.json cand-3.json
  darktime report compare --base base-1.json,base-2.json --candidate cand-1.json,cand-2.json
  darktime report compare --history results/history --scenario ci-smoke -- results/ci-smoke/swarm.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Metrics = splitList(metrics)
			if h.location != "" {
				return historyCompare(cmd, &h, historyRuns, base, append(splitList(cand), args...), opts, jsonOut)
			}
			b, c := splitList(base), splitList(cand)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				b, c = append(b, args[:dash]...), append(c, args[dash:]...)
			} else if len(args) > 0 {
				return usagef("separate base and candidate files with --, or use --base and --candidate")
			}
			if len(b) == 0 || len(c) == 0 {
				return usagef("give base and candidate results: BASE... -- CANDIDATE..., or --base and --candidate")
			}
			return reportErr(reportFiles(cmd).Compare(cmd.Context(), b, c, opts, jsonOut, cmd.OutOrStdout()))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&base, "base", nil, "base result files (comma-separated or repeated)")
	f.StringArrayVar(&cand, "candidate", nil, "candidate result files (comma-separated or repeated)")
	f.StringArrayVar(&metrics, "metric", nil, "metrics to compare (default: latency percentiles, throughput, errors, ledger kinds)")
	f.Float64Var(&opts.NoiseK, "noise-k", report.DefaultNoiseK, "a change counts when it exceeds this many times the noise")
	f.Float64Var(&opts.MinRelative, "min-relative", report.DefaultMinRelative, "changes below this share of the base median never count")
	f.StringVar(&jsonOut, "json", "", "write the darktime.compare/v1 JSON here")
	f.StringVar(&h.location, "history", "", "take the base from this history (a folder or a postgres:// URL): the last --history-runs runs of the series")
	f.IntVar(&historyRuns, "history-runs", history.DefaultBaseRuns, "how many of the history's last runs make the base")
	h.addSeries(f, "the series in the history (needed when it has several)", "the target label within the series")
	return cmd
}

// historyCompare checks the command line of compare --history and runs it.
func historyCompare(cmd *cobra.Command, h *historyFlags, runs int, base, cand []string, opts report.CompareOptions, jsonOut string) error {
	switch {
	case len(base) > 0:
		return usagef("--history is the base: give no --base files")
	case len(cand) == 0:
		return usagef("give the candidate result files: compare --history DIR -- CANDIDATE...")
	case runs < 1:
		return usagef("--history-runs %d: at least 1", runs)
	}
	return historyErr(compareWithHistory(cmd, h, runs, cand, opts, jsonOut))
}

func newReportCapacityCmd() *cobra.Command {
	var (
		opts    report.CapacityOptions
		jsonOut string
		c       capacityFlags
	)
	cmd := &cobra.Command{
		Use:   "capacity RUN... --forecast FILE | RESULT... --slo-p99-ms X --users P --rate M",
		Short: "Fit every resource to ramp runs and size a forecast: nodes, Redis shards, bandwidth, what binds; --verify checks it here",
		Long: `With --forecast (or --model-out): fits a model of every resource that binds —
server CPU per delivery, publish, received event, connect and connection;
memory and open files per connection; bytes written per delivery and
publish; Redis CPU per publish and per message sent to a node — by least
squares to the per-second resource samples of ramp runs (darktime run
folders: swarm.json + resources.json; scenarios/capacity-ramp.yaml), up to
each run's knee at the SLO, with each coefficient's standard error and its
spread over the runs. For the forecast (peak users, channels and their
distribution, messages/s overall and on the hottest channel, event size,
the node's cores, memory, files and NIC, headroom) it prints the nodes
each resource needs, which binds, the Redis shards, the bandwidth and the
assumptions. --model FILE plans from a saved model (--model-out).

--verify scales the forecast down to what this machine holds (one node,
about --verify-cpu cores of server CPU predicted), runs it as a scenario
into --verify-dir, measures every resource the same way and prints
predicted against measured: exit 1 when one is off by more than
--tolerance.

Without --forecast: the knee plan of one ramp run (the most subscribers and
deliveries/s per node under the SLO) for --users and --rate.`,
		Example: `  darktime report capacity results/ramp-1 results/ramp-2 results/ramp-3 --forecast forecast.yaml --json plan.json
  darktime report capacity --model model.json --forecast forecast.yaml --verify
  darktime report capacity results/ramp.json --slo-p99-ms 50 --users 200000 --rate 20 --hot-share 0.1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.forecast != "" || c.model != "" || c.modelOut != "" || c.verify {
				return c.run(cmd, args, opts.SLOP99Ms, opts.Breach, jsonOut)
			}
			if len(args) == 0 {
				return usagef("give a ramp run's result file (or --forecast with ramp runs)")
			}
			return reportErr(reportFiles(cmd).Capacity(cmd.Context(), args, opts, jsonOut, cmd.OutOrStdout()))
		},
	}
	f := cmd.Flags()
	f.Float64Var(&opts.SLOP99Ms, "slo-p99-ms", 0, "the SLO: p99 delivery latency in ms (required without --forecast; with it, cuts the fit at the knee, default 50)")
	f.Int64Var(&opts.PeakUsers, "users", 0, "peak concurrent users to plan for (the knee plan; required without --forecast)")
	f.Float64Var(&opts.HotRate, "rate", 0, "messages/s on the hottest channel at the peak (the knee plan)")
	f.Float64Var(&opts.HotShare, "hot-share", report.DefaultHotShare, "share of users subscribed to the hottest channel (the knee plan)")
	f.Float64Var(&opts.Headroom, "headroom", report.DefaultHeadroom, "plan nodes at this share of the knee (the knee plan; a forecast sets its own)")
	f.IntVar(&opts.Nodes, "nodes", report.DefaultNodes, "server nodes that served the ramp run (the knee plan)")
	f.IntVar(&opts.Breach, "breach", report.DefaultBreach, "consecutive seconds over the SLO that end the usable ramp")
	f.StringVar(&jsonOut, "json", "", "write the plan as JSON here (darktime.capacity/v2 with --forecast)")
	c.add(f)
	return cmd
}
