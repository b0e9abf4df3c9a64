package hookbench_test

import (
	"context"
	"fmt"
	"time"

	"github.com/darktime/darktime/internal/hookbench"
)

// A run against a darktime server started with --redis and workers.
func ExampleRun() {
	res, err := hookbench.Run(context.Background(), hookbench.Config{
		Target:   "http://127.0.0.1:8080",
		Jobs:     100_000,          // throughput phase: as fast as possible
		Rate:     5_000,            // latency phase: hooks/s at a constant pace
		Duration: 10 * time.Second, // for this long
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f jobs/s; p99 hook→wire %.1f ms at %.0f jobs/s\n",
		res.Throughput.JobsPerSec, res.Latency.LatencyP99Ms, res.Latency.OfferedJobsPerSec)
}

func ExampleParseProcesses() {
	procs, err := hookbench.ParseProcesses("server=123,worker1=456,redis=789")
	fmt.Println(procs, err)
	// Output: [{server 123} {worker1 456} {redis 789}] <nil>
}
