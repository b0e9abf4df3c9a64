package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
	"github.com/darktime/darktime/server/worker"
)

func init() { subcommands = append(subcommands, newWorkerCmd) }

func newWorkerCmd() *cobra.Command {
	var (
		pc                      worker.ProcessConfig
		pipelinesFile, logLevel string
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run hook workers: claim jobs from the Redis queue, run the pipelines, publish",
		Long: `Run hook workers apart from the web tier, so the two scale apart.

A worker claims model-hook jobs (POST /hooks on any server) from the Redis
job queue, runs each through its model's pipeline of stages, publishes the
events through Redis to every server node, and acks the job. It serves its
counters at --listen (/stats, /metrics).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if pc.Logger, err = newLogger(logLevel); err != nil {
				return err
			}
			if pc.Pipelines, err = pipeline.LoadFile(pipelinesFile, yamlReader(cmd)); err != nil {
				return usageIf(fmt.Errorf("--pipelines: %w", err), pipeline.ErrInvalidConfig)
			}
			return usageIf(worker.RunProcess(cmd.Context(), pc), worker.ErrProcessConfig)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pc.RedisURL, "redis", "", "Redis URL of the job queue and the broker (required)")
	f.StringVar(&pc.Prefix, "redis-prefix", broker.DefaultPrefix, "prefix of the broker's Redis keys (as the servers use)")
	f.BoolVar(&pc.Sharded, "redis-sharded", false, "publish with SPUBLISH (as the servers subscribe)")
	f.StringVar(&pc.Queue.Name, "queue", queue.DefaultName, "job queue name")
	f.IntVar(&pc.Queue.Partitions, "queue-partitions", 0, "partition streams of the job queue (0: 1 on one Redis, 16 on a cluster); as the servers use it")
	f.StringVar(&pipelinesFile, "pipelines", "", "pipeline config YAML (default: the built-in post and thread models)")
	f.IntVar(&pc.Lanes, "lanes", worker.DefaultLanes, "processing goroutines; jobs of one object stay on one lane, in order")
	f.IntVar(&pc.Batch, "batch", worker.DefaultBatch, "jobs per claim")
	f.IntVar(&pc.Queue.MaxAttempts, "max-attempts", queue.DefaultMaxAttempts, "deliveries before a job is dead-lettered")
	f.DurationVar(&pc.Queue.VisibilityTimeout, "visibility-timeout", queue.DefaultVisibilityTimeout, "a claimed job not acked within this is redelivered")
	f.IntVar(&pc.HistoryLength, "history-length", broker.DefaultMaxLen, "events kept per channel (as the servers)")
	f.DurationVar(&pc.HistoryAge, "history-age", broker.DefaultMaxAge, "how long events are kept (as the servers)")
	f.DurationVar(&pc.StopTimeout, "stop-timeout", worker.DefaultStopTimeout, "on SIGTERM, how long to finish claimed jobs")
	f.StringVar(&pc.Listen, "listen", worker.DefaultListen, "address for /stats and /metrics")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
