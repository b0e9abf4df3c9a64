package swarm

import (
	"context"
	"testing"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// TestRunHooksProfile drives the whole queue pipeline: hooks posted to
// /hooks, queued in Redis, processed by two workers, delivered on the
// threads' channels.
func TestRunHooksProfile(t *testing.T) {
	tstest.Long(t, "a swarm run through hooks and workers (~3 s)")
	t.Parallel()
	rs := redistest.Start(t)
	target := startServer(t, server.Config{RedisURL: rs.URL, RedisPrefix: "swarmhooks:", Workers: 2})
	cfg := quickConfig(t, target)
	cfg.Profile, _ = LookupProfile("darktime-hooks")
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if res.Events.OtherType != 0 || res.Events.Malformed != 0 || res.Events.Outside != 0 {
		t.Errorf("events %+v: want every event a measured post.saved", res.Events)
	}
	if s := res.Summary[HistDelivery]; s.Count != res.Ledger.Totals().Debit || s.P50 <= 0 {
		t.Errorf("delivery summary %+v, debits %d", s, res.Ledger.Totals().Debit)
	}
	t.Logf("delivery through the pipeline %+v", res.Summary[HistDelivery])
}

// TestRunSeveralTargets spreads clients and publishes over two server
// nodes that share one Redis: most deliveries cross nodes.
func TestRunSeveralTargets(t *testing.T) {
	tstest.Long(t, "a swarm run (~3 s)")
	t.Parallel()
	rs := redistest.Start(t)
	a := startServer(t, server.Config{RedisURL: rs.URL, RedisPrefix: "swarmnodes:"})
	b := startServer(t, server.Config{RedisURL: rs.URL, RedisPrefix: "swarmnodes:"})
	cfg := quickConfig(t, "")
	cfg.Targets = []string{a, b + "/"}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if want := a + "," + b; res.Target != want {
		t.Errorf("target %q, want %q", res.Target, want)
	}
}
