package swarm

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/darktime/darktime/server"
)

func TestRunStagesAndRoundRobin(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Clients, cfg.Distribution, cfg.ChannelPrefix = 42, Distribution{Kind: DistRoundRobin}, "rr"
	var (
		mu   sync.Mutex
		seen []Stage
	)
	cfg.Stages = func(s Stage) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, s)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for _, s := range seen {
		names = append(names, s.Name)
	}
	want := []string{StageConnected, StagePublish, StageWindow, StagePublished, StageDrained}
	if !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v", names, want)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].At.Before(seen[i-1].At) || seen[i].Events < seen[i-1].Events {
			t.Errorf("stage %s (%v, %d events) before %s (%v, %d events)", seen[i].Name, seen[i].At, seen[i].Events, seen[i-1].Name, seen[i-1].At, seen[i-1].Events)
		}
	}
	start, end := seen[1], seen[4]
	if start.Open != 42 || start.Events != 0 {
		t.Errorf("at the first publish: %d open, %d events; want 42, 0", start.Open, start.Events)
	}
	if got := end.Events - start.Events; got != res.Resources[0].EventsDuringLoad || got != res.Events.Events {
		t.Errorf("events from publish to drain end %d; resources say %d, the run %d", got, res.Resources[0].EventsDuringLoad, res.Events.Events)
	}
	// Round robin: 42 clients over 4 channels are 11, 11, 10, 10, so the
	// ledger credits each channel's publishes that many times over.
	for ch, c := range res.Ledger.ByScope() {
		n := int64(10)
		if ch == cfg.ChannelPrefix+"_0" || ch == cfg.ChannelPrefix+"_1" {
			n = 11
		}
		if c.Credit%n != 0 || c.Credit == 0 {
			t.Errorf("channel %s credited %d, not a multiple of its %d clients", ch, c.Credit, n)
		}
	}
}
