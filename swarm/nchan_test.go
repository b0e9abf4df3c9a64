package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

func TestRunNchan(t *testing.T) {
	tstest.Long(t, "a swarm run against nchan (~3 s)")
	t.Parallel()
	target := tstest.Nchan(t)
	cfg := quickConfig(t, target)
	cfg.Profile, _ = LookupProfile("nchan")
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	t.Logf("nchan: %d events, delivery %+v", res.Events.Events, res.Summary[HistDelivery])
}

func TestRunNchanStormResumes(t *testing.T) {
	tstest.Long(t, "a swarm run against nchan (~3 s)")
	t.Parallel()
	target := tstest.Nchan(t)
	cfg := quickConfig(t, target)
	cfg.Profile, _ = LookupProfile("nchan")
	cfg.Duration = 2 * time.Second
	cfg.Storms = []time.Duration{700 * time.Millisecond}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients.StormCuts != int64(cfg.Clients) || res.Clients.Reconnects != int64(cfg.Clients) {
		t.Errorf("storm cuts %d reconnects %d, want %d each", res.Clients.StormCuts, res.Clients.Reconnects, cfg.Clients)
	}
	// nchan resumes from Last-Event-ID: nothing owed is lost.
	checkBalanced(t, res)
}
