package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/internal/fanoutbench"
	"github.com/darktime/darktime/internal/hookbench"
	"github.com/darktime/darktime/internal/procstat"
)

func init() { subcommands = append(subcommands, newBenchCmd) }

func newBenchCmd() *cobra.Command {
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of SSE servers",
	}
	bench.AddCommand(newBenchFanoutCmd(), newBenchHooksCmd())
	return bench
}

func newBenchFanoutCmd() *cobra.Command {
	var (
		cfg            fanoutbench.Config
		jsonPath, pids string
	)
	cmd := &cobra.Command{
		Use:   "fanout",
		Short: "Hold many SSE subscribers, publish at a constant rate, measure deliveries",
		Long: `Runs the swarm (darktime swarm) with --subscribers clients on
{target}/sub/{channel}, client i on channel i mod --channels, publishing
--rate events/s (total, round-robin) to {target}/pub?id={channel} for
--duration, then reports the swarm's delivery accounting and end-to-end
latency and, with --server-pid, the server's CPU per delivery and memory per
idle subscriber, sampled from /proc at the first publish and at the end of
the drain. Pin the server and this command to different cores (taskset) so
they do not compete. Several --target nodes sharing one broker
(comma-separated) get the subscribers and publishes round robin, so
deliveries cross nodes; --pids measures the other nodes and the broker's
processes (e.g. every Redis shard) per delivery too.`,
		Example: `  darktime bench fanout --target http://127.0.0.1:8090 --server-pid "$(cat nginx.pid)" --json results/bench/nchan.json
  darktime bench fanout --target http://127.0.0.1:8081,http://127.0.0.1:8082 --server-pid "$node1" --pids "node2=$node2,redis=$redis"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := procstat.ParseProcesses(pids)
			if err != nil {
				return usagef("--pids: %v", err)
			}
			cfg.Processes = procs
			if err := cfg.CheckSet(); err != nil {
				return usageError{err}
			}
			raiseFileLimit()
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			res, err := fanoutbench.Run(cmd.Context(), cfg)
			return printBench(cmd, jsonPath, res, res != nil, err, fanoutbench.ErrConfig)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", fanoutbench.DefaultTarget, "server base URL (http only); nodes sharing a broker comma-separated")
	f.StringVar(&pids, "pids", "", "more processes to measure per delivery, name=pid,... (other nodes, Redis shards)")
	f.IntVar(&cfg.Subscribers, "subscribers", fanoutbench.DefaultSubscribers, "SSE connections to hold")
	f.IntVar(&cfg.Channels, "channels", fanoutbench.DefaultChannels, "channels the subscribers spread over")
	f.Float64Var(&cfg.Rate, "rate", fanoutbench.DefaultRate, "publish rate, events/s in total (round-robin over channels)")
	f.DurationVar(&cfg.Duration, "duration", fanoutbench.DefaultDuration, "how long to publish")
	f.IntVar(&cfg.Size, "size", fanoutbench.DefaultSize, "event body size in bytes")
	f.Float64Var(&cfg.Ramp, "ramp", fanoutbench.DefaultRamp, "subscribers opened per second")
	f.IntVar(&cfg.ServerPID, "server-pid", 0, "server process to measure (CPU, RSS; includes its child processes)")
	f.IntVar(&cfg.Sources, "sources", 0, "source addresses 127.0.0.2.. to spread subscribers over (default one per 20,000)")
	f.DurationVar(&cfg.Drain, "drain", fanoutbench.DefaultDrain, "wait for deliveries after the last publish")
	f.StringVar(&jsonPath, "json", "", "write the result as JSON to `FILE`")
	return cmd
}

func newBenchHooksCmd() *cobra.Command {
	var (
		cfg            hookbench.Config
		jsonPath, pids string
		phase          string
	)
	cmd := &cobra.Command{
		Use:   "hooks",
		Short: "Post model hooks, measure jobs/s through the queue and workers and hook→event latency",
		Long: `Runs the swarm (darktime swarm) once per phase, with --subscribers clients on
{target}/sub/thread:<prefix>_<i>, one per thread, and its publisher posting
hooks to {target}/hooks round robin over the threads:

  throughput  --jobs hooks in batches of --batch from --posters requests in
              flight, as fast as the server takes them (a 503 is posted
              again); jobs/s from the first post to the last ack in
              /queue/stats;
  latency     --rate hooks/s for --duration in batches of --latency-batch at
              a constant pace; the time from each hook's intended send time
              to its event at a subscriber.

Every accepted hook must arrive exactly once (on its thread); the swarm's
ledger counts lost and duplicated events. With --pids, the CPU time of those processes
(server, workers, redis) is reported per job. The target needs Redis
(--redis) and workers (--workers N, or darktime worker processes).`,
		Example: `  darktime bench hooks --target http://127.0.0.1:8080 --pids "server=$(pgrep -f 'darktime server'),redis=$(pgrep redis-server)" --json results/bench/hooks.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := hookbench.ParseProcesses(pids)
			if err != nil {
				return usagef("--pids: %v", err)
			}
			cfg.Processes = procs
			cfg.Phase = hookbench.Phase(phase)
			if err := cfg.CheckSet(); err != nil {
				return usageError{err}
			}
			raiseFileLimit()
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			res, err := hookbench.Run(cmd.Context(), cfg)
			return printBench(cmd, jsonPath, res, res != nil, err, hookbench.ErrConfig)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", hookbench.DefaultTarget, "server base URL (http only)")
	f.StringVar(&phase, "phase", string(hookbench.PhaseBoth), "throughput, latency or both")
	f.IntVar(&cfg.Subscribers, "subscribers", hookbench.DefaultSubscribers, "SSE subscribers, one per thread; hooks spread over the threads")
	f.IntVar(&cfg.Jobs, "jobs", hookbench.DefaultJobs, "throughput phase: hooks to post")
	f.IntVar(&cfg.Batch, "batch", hookbench.DefaultBatch, "throughput phase: hooks per request (at most 1000)")
	f.IntVar(&cfg.Posters, "posters", hookbench.DefaultPosters, "throughput phase: requests in flight")
	f.Float64Var(&cfg.Rate, "rate", hookbench.DefaultRate, "latency phase: hooks/s")
	f.DurationVar(&cfg.Duration, "duration", hookbench.DefaultDuration, "latency phase: how long to post")
	f.IntVar(&cfg.LatencyBatch, "latency-batch", hookbench.DefaultLatencyBatch, "latency phase: hooks per request")
	f.DurationVar(&cfg.Drain, "drain", hookbench.DefaultDrain, "wait this long for events after the last ack")
	f.StringVar(&pids, "pids", "", "processes to measure, `name=pid,...` (e.g. server=123,worker1=456,redis=789)")
	f.StringVar(&jsonPath, "json", "", "write the result as JSON to `FILE`")
	return cmd
}

// printBench prints a benchmark's result (when ok: there is one) and writes
// it as JSON to jsonPath; an error wrapping usage is a usage error.
func printBench(cmd *cobra.Command, jsonPath string, res fmt.Stringer, ok bool, err, usage error) error {
	if errors.Is(err, usage) {
		return usageError{err}
	}
	if !ok {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), res)
	if jsonPath != "" {
		if werr := writeJSON(jsonPath, res); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// subscriber is a file descriptor.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // Run reports a limit that is still too low
}

func writeJSON(path string, v any) error {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
