package main

import (
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/swarm/live"
)

// addRemoteWriteFlags adds the live-metrics flags of darktime swarm,
// swarm agent and run.
func addRemoteWriteFlags(f *pflag.FlagSet, rw *live.Flags) {
	f.StringVar(&rw.URL, "remote-write", "", "export the run's metrics live to this Prometheus remote-write `URL` (e.g. http://127.0.0.1:9090/api/v1/write, the path's default; native histograms)")
	f.DurationVar(&rw.Interval, "remote-write-interval", live.DefaultInterval, "how often to send the live metrics")
	f.StringArrayVar(&rw.Headers, "remote-write-header", nil, "header \"Name: value\" on every remote-write request, e.g. for auth (repeatable)")
}
