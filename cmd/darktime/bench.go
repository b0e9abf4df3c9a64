package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/internal/fanoutbench"
)

func init() { subcommands = append(subcommands, newBenchCmd) }

func newBenchCmd() *cobra.Command {
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of SSE servers",
	}
	bench.AddCommand(newBenchFanoutCmd())
	return bench
}

func newBenchFanoutCmd() *cobra.Command {
	var (
		cfg      fanoutbench.Config
		jsonPath string
	)
	cmd := &cobra.Command{
		Use:   "fanout",
		Short: "Hold many SSE subscribers, publish at a constant rate, measure deliveries",
		Long: `Opens --subscribers lean SSE connections to {target}/sub/{channel} over
--channels channels, publishes --rate events/s (total, round-robin) to
{target}/pub?id={channel} for --duration, then reports delivery accounting,
end-to-end latency and, with --server-pid, the server's CPU per delivery and
memory per idle subscriber. Pin the server and this command to different
cores (taskset) so they do not compete.`,
		Example: `  darktime bench fanout --target http://127.0.0.1:8090 --server-pid "$(cat nginx.pid)" --json results/bench/nchan.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateFanoutFlags(cfg); err != nil {
				return err
			}
			raiseFileLimit()
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			res, err := fanoutbench.Run(cmd.Context(), cfg)
			if errors.Is(err, fanoutbench.ErrConfig) {
				return usageError{err}
			}
			if res != nil {
				fmt.Fprint(cmd.OutOrStdout(), res)
				if jsonPath != "" {
					if werr := writeJSON(jsonPath, res); werr != nil {
						return errors.Join(err, werr)
					}
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Target, "target", fanoutbench.DefaultTarget, "server base URL (http only)")
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

// validateFanoutFlags rejects values the zero-means-default Config would
// silently replace.
func validateFanoutFlags(cfg fanoutbench.Config) error {
	switch {
	case cfg.Subscribers <= 0:
		return usagef("--subscribers must be at least 1")
	case cfg.Channels <= 0 || cfg.Channels > cfg.Subscribers:
		return usagef("--channels must be between 1 and --subscribers")
	case cfg.Rate <= 0:
		return usagef("--rate must be positive")
	case cfg.Duration <= 0:
		return usagef("--duration must be positive")
	case cfg.Size <= 0:
		return usagef("--size must be positive")
	case cfg.Ramp <= 0:
		return usagef("--ramp must be positive")
	case cfg.Sources < 0:
		return usagef("--sources must not be negative")
	case cfg.ServerPID < 0:
		return usagef("--server-pid must not be negative")
	case cfg.Drain <= 0:
		return usagef("--drain must be positive")
	case cfg.Duration > 24*time.Hour:
		return usagef("--duration must be at most 24h")
	}
	return nil
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
