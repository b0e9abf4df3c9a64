package swarm

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/server"
)

// Config.Tick sees every second the series has, with the histograms the
// totals are made of, and the phases in the run's order.
func TestRunTicks(t *testing.T) {
	t.Parallel()
	cfg := quickConfig(t, startServer(t, server.Config{}))
	cfg.Settle = 1100 * time.Millisecond // at least one tick while settling
	cfg.Phases = []Phase{{Name: "warm", Duration: 1100 * time.Millisecond}, {Name: "hot", Duration: 1100 * time.Millisecond, Rate: 80}}
	var (
		mu    sync.Mutex
		ticks []Tick
	)
	cfg.Tick = func(tk Tick) {
		mu.Lock()
		defer mu.Unlock()
		ticks = append(ticks, tk)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	mu.Lock()
	defer mu.Unlock()
	if len(ticks) != len(res.Series) {
		t.Fatalf("%d ticks, %d seconds in the series", len(ticks), len(res.Series))
	}
	var events, delivered, published int64
	var phases []string
	for i, tk := range ticks {
		if tk.Second.T != res.Series[i].T || tk.Second.Events != res.Series[i].Events {
			t.Errorf("tick %d: second %+v, series has %+v", i, tk.Second, res.Series[i])
		}
		events += tk.Second.Events
		delivered += tk.Histograms[HistDelivery].TotalCount()
		published += tk.Histograms[HistPublish].TotalCount()
		if len(phases) == 0 || phases[len(phases)-1] != tk.Phase {
			phases = append(phases, tk.Phase)
		}
	}
	last := ticks[len(ticks)-1]
	if events != res.Events.Events || delivered != res.Summary[HistDelivery].Count || published != res.Summary[HistPublish].Count {
		t.Errorf("ticks: %d events, %d deliveries, %d publishes; the result: %d, %d, %d",
			events, delivered, published, res.Events.Events, res.Summary[HistDelivery].Count, res.Summary[HistPublish].Count)
	}
	if last.Clients.Connected != res.Clients.Connected || last.Clients.Planned != res.Clients.Planned {
		t.Errorf("last tick's clients %+v, the result's %+v", last.Clients, res.Clients)
	}
	// The ramp may end before the first tick; the rest come in order.
	phases = slices.DeleteFunc(phases, func(p string) bool { return p == PhaseRamp })
	if want := []string{PhaseSettle, "warm", "hot", PhaseDrain}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
}

func TestChainTick(t *testing.T) {
	t.Parallel()
	var calls []string
	a := func(Tick) { calls = append(calls, "a") }
	b := func(Tick) { calls = append(calls, "b") }
	if ChainTick(nil, nil) != nil {
		t.Error("ChainTick(nil, nil) is not nil")
	}
	ChainTick(a, nil)(Tick{})
	ChainTick(nil, b)(Tick{})
	ChainTick(a, b)(Tick{})
	if got := strings.Join(calls, ""); got != "abab" {
		t.Errorf("calls %q, want abab", got)
	}
}
