package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// TestRunSlowConsumers makes one client a slow reader before a spike on
// its channel: the server, which bounds what it queues per subscriber,
// cuts it off; it resumes with Last-Event-ID from the server's history
// and catches up, nothing lost, while the other client reads on.
func TestRunSlowConsumers(t *testing.T) {
	tstest.Long(t, "a swarm run with slow consumers (~4 s)")
	t.Parallel()
	// Small send buffers, as loopback autotunes them to megabytes, which a
	// slow reader takes seconds to drain; a queue that a burst cannot fill
	// while a resuming stream is being set up.
	n := startNode(t, server.Config{MaxQueueBytes: 256 << 10, HistoryLength: 5000}, nodeOptions{sendBuffer: 16 << 10})
	cfg := quickConfig(t, n.url)
	cfg.Clients, cfg.Size, cfg.Rate = 2, 8000, 4
	cfg.Distribution = Distribution{Kind: DistOne} // client i alone on channel i
	cfg.Phases = []Phase{
		{Name: "spike", Duration: 400 * time.Millisecond, Rate: 400, Hot: true, HotChannel: 0}, // 3.2 MB/s
		{Name: "calm", Duration: time.Second},
	}
	cfg.Slowdowns = []Slowdown{{At: 0, Clients: 1, ReadDelay: 2 * time.Millisecond}} // client 0: <= 1 MB/s
	cfg.Drain = 2 * time.Second
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if res.Events.Slow == 0 {
		t.Errorf("no event counted as slow: %+v", res.Events)
	}
	if res.Clients.SlowClients != 1 {
		t.Errorf("slow clients %d, want 1", res.Clients.SlowClients)
	}
	if cuts := n.srv.Stats().Totals.DisconnectsByReason["slow_consumer"]; cuts == 0 || res.Clients.Reconnects == 0 {
		t.Errorf("the server cut %d slow consumers, clients %+v: want the slow client cut off and back", cuts, res.Clients)
	}
	want := []SlowdownEcho{{AtSeconds: 0, Clients: 1, ReadDelaySeconds: 0.002}}
	if got := res.Config.Slowdowns; len(got) != 1 || got[0] != want[0] {
		t.Errorf("slowdowns echoed %+v, want %+v", got, want)
	}
}

// TestRunSlowClientsStopPromptly: a slow reader asleep before its next
// read wakes up when the run ends.
func TestRunSlowClientsStopPromptly(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Clients, cfg.Duration, cfg.Drain = 10, time.Second, 200*time.Millisecond
	cfg.Slowdowns = []Slowdown{{At: 100 * time.Millisecond, Clients: 5, ReadDelay: maxReadDelay}}
	start := time.Now()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the run took %v with clients asleep for %v", took, maxReadDelay)
	}
	if res.Clients.SlowClients != 5 {
		t.Errorf("slow clients %d, want 5", res.Clients.SlowClients)
	}
}
