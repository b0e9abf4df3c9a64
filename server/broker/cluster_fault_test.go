package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// ledger is what a fault test checks a subscriber against: every event a
// publish answered with ids, per channel.
type ledger struct {
	mu    sync.Mutex
	acked map[string][]eventid.ID
}

func (l *ledger) add(channel string, id eventid.ID) {
	l.mu.Lock()
	l.acked[channel] = append(l.acked[channel], id)
	l.mu.Unlock()
}

// announced collects a node's deliveries and the gaps its catch-ups
// announced, per channel.
type announced struct {
	recorder
	catchUps
}

// unaccounted returns, per channel, the acked events the node neither
// received nor announced as lost (a Gap after an id before them).
func (a *announced) unaccounted(l *ledger) map[string][]eventid.ID {
	got := map[string]map[eventid.ID]bool{}
	for _, d := range a.recorder.snapshot() {
		if got[d.Channel] == nil {
			got[d.Channel] = map[eventid.ID]bool{}
		}
		got[d.Channel][d.ID] = true
	}
	gapAfter := map[string]eventid.ID{}
	for _, cu := range a.catchUps.snapshot() {
		for _, g := range cu.Gaps {
			if prev, ok := gapAfter[g.Channel]; !ok || g.After.Less(prev) {
				gapAfter[g.Channel] = g.After
			}
		}
	}
	out := map[string][]eventid.ID{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for c, ids := range l.acked {
		for _, id := range ids {
			if got[c][id] {
				continue
			}
			if after, ok := gapAfter[c]; ok && after.Less(id) {
				continue
			}
			out[c] = append(out[c], id)
		}
	}
	return out
}

// TestClusterKillMaster kills the master of a shard while a publisher
// publishes on channels of every shard: its replica is promoted, and every
// publish answered with ids reaches both subscribing nodes or is announced
// as a gap — never lost silently.
func TestClusterKillMaster(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster and waits for a failover")
	for _, tc := range []struct {
		name string
		aof  bool
	}{
		{"no persistence", false},
		{"aof always", true},
	} {
		t.Run(tc.name, func(t *testing.T) { killMaster(t, tc.aof) })
	}
}

func killMaster(t *testing.T, aof bool) {
	ctx := context.Background()
	c := redistest.StartCluster(t, 3, 1, redistest.ClusterOptions{AppendOnly: aof})
	prefix := fmt.Sprintf("kill%d:", time.Now().UnixNano())
	mk := func(cfg Config) *Redis {
		b, err := NewRedis(RedisConfig{Config: cfg, URL: c.URL, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	channels := make([]string, 12)
	for i := range channels {
		channels[i] = fmt.Sprintf("ch%d", i)
	}
	var nodes [2]*announced
	for i := range nodes {
		nodes[i] = &announced{}
		b := mk(Config{Handler: nodes[i].handle, OnCatchUp: nodes[i].add})
		for _, ch := range channels {
			if err := b.Subscribe(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub := mk(Config{Handler: func(Delivery) {}})
	l := &ledger{acked: map[string][]eventid.ID{}}
	var okN, failN atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ch := channels[i%len(channels)]
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			ids, err := pub.Publish(pctx, []Message{{Channel: ch, Body: body(fmt.Sprint(i))}})
			cancel()
			if err != nil {
				failN.Add(1)
				time.Sleep(5 * time.Millisecond)
				continue
			}
			okN.Add(1)
			l.add(ch, ids[0])
		}
	}()
	tstest.WaitFor(t, 10*time.Second, "200 publishes before the kill", func() bool { return okN.Load() >= 200 })
	victim := c.MasterOf(prefix + "{" + channels[0] + "}:h")
	c.Kill(victim)
	killedAt := time.Now()
	before := okN.Load()
	// Recovered: publishes on the victim's channel succeed again.
	tstest.WaitFor(t, 20*time.Second, "publishes to succeed on the killed shard again", func() bool {
		ids, err := pub.Publish(ctx, []Message{{Channel: channels[0], Body: body("probe")}})
		if err == nil {
			l.add(channels[0], ids[0])
		}
		return err == nil && okN.Load() > before+100
	})
	recovery := time.Since(killedAt)
	close(stop)
	wg.Wait()
	// A marker per channel on each node: anything still owed comes before it.
	markers := map[string]eventid.ID{}
	for _, ch := range channels {
		ids, err := pub.Publish(ctx, []Message{{Channel: ch, Body: body("marker")}})
		if err != nil {
			t.Fatal(err)
		}
		markers[ch] = ids[0]
		l.add(ch, ids[0])
	}
	for i, n := range nodes {
		tstest.WaitFor(t, 20*time.Second, fmt.Sprintf("node %d to receive every marker", i), func() bool {
			seen := 0
			for _, d := range n.recorder.snapshot() {
				if markers[d.Channel] == d.ID {
					seen++
				}
			}
			return seen == len(channels)
		})
		if lost := n.unaccounted(l); len(lost) > 0 {
			t.Errorf("node %d: acked events neither delivered nor announced: %v", i, lost)
		}
		gaps := 0
		for _, cu := range n.catchUps.snapshot() {
			gaps += len(cu.Gaps)
		}
		t.Logf("node %d: %d deliveries, %d catch-ups, %d gaps", i, len(n.recorder.snapshot()), len(n.catchUps.snapshot()), gaps)
	}
	t.Logf("publishes: %d answered, %d failed; shard recovered %v after the kill", okN.Load(), failN.Load(), recovery.Round(time.Millisecond))
}

// TestClusterBatchPerSlot publishes a batch over every shard while one
// master is down (killed, its replica not yet promoted): the events of the
// other shards are published and delivered, the dead shard's events are
// refused (ErrUnavailable), event by event.
func TestClusterBatchPerSlot(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster")
	ctx := context.Background()
	c := redistest.StartCluster(t, 3, 1, redistest.ClusterOptions{NodeTimeout: 30 * time.Second})
	prefix := fmt.Sprintf("batch%d:", time.Now().UnixNano())
	rec := &recorder{}
	b, err := NewRedis(RedisConfig{Config: Config{Handler: rec.handle}, URL: c.URL, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	var msgs []Message
	for i := range 30 {
		ch := fmt.Sprintf("b%d", i%10)
		if i < 10 {
			if err := b.Subscribe(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		msgs = append(msgs, Message{Channel: ch, Body: body(fmt.Sprint(i))})
	}
	// All shards up: one answer for the whole batch.
	if _, err := b.Publish(ctx, msgs); err != nil {
		t.Fatalf("batch with every shard up: %v", err)
	}
	rec.waitFor(t, 30)

	victim := c.MasterOf(prefix + "{b0}:h")
	onVictim := map[string]bool{}
	for _, m := range msgs {
		onVictim[m.Channel] = c.MasterOf(prefix+"{"+m.Channel+"}:h") == victim
	}
	c.Kill(victim)
	start := time.Now()
	ids, err := b.Publish(ctx, msgs)
	t.Logf("batch with a dead shard answered in %v", time.Since(start).Round(time.Millisecond))
	var partial *PartialError
	if !errors.As(err, &partial) {
		t.Fatalf("batch with a shard down: ids %v, err %v; want a *PartialError", ids, err)
	}
	published := 0
	for i, m := range msgs {
		switch e := partial.Errs[i]; {
		case onVictim[m.Channel] && !errors.Is(e, ErrUnavailable):
			t.Errorf("event %d on the dead shard: %v, want ErrUnavailable", i, e)
		case !onVictim[m.Channel] && (e != nil || partial.IDs[i].IsZero()):
			t.Errorf("event %d on a live shard: id %v, err %v", i, partial.IDs[i], e)
		case !onVictim[m.Channel]:
			published++
		}
	}
	if published == 0 || published == len(msgs) {
		t.Fatalf("%d of %d published; the channels should span the dead and the live shards", published, len(msgs))
	}
	got := rec.waitFor(t, 30+published)
	for _, d := range got[30:] {
		if onVictim[d.Channel] {
			t.Errorf("delivered %v on the dead shard's channel %s", d.ID, d.Channel)
		}
	}
}

// TestClusterReshard moves a channel's slot to another master while it is
// published on: nothing answered with ids is lost (publishes refused during
// the move answer errors), and the subscribing node follows the channel to
// its new shard.
func TestClusterReshard(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster")
	ctx := context.Background()
	c := redistest.StartCluster(t, 3, 1, redistest.ClusterOptions{NodeTimeout: 30 * time.Second})
	prefix := fmt.Sprintf("reshard%d:", time.Now().UnixNano())
	mk := func(cfg Config) *Redis {
		b, err := NewRedis(RedisConfig{Config: cfg, URL: c.URL, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	channels := []string{"r0", "r1", "r2", "r3", "r4", "r5"}
	node := &announced{}
	sub := mk(Config{Handler: node.handle, OnCatchUp: node.add})
	for _, ch := range channels {
		if err := sub.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	pub := mk(Config{Handler: func(Delivery) {}})
	l := &ledger{acked: map[string][]eventid.ID{}}
	var okN, failN atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ch := channels[i%len(channels)]
			ids, err := pub.Publish(ctx, []Message{{Channel: ch, Body: body(fmt.Sprint(i))}})
			if err != nil {
				failN.Add(1)
				continue
			}
			okN.Add(1)
			l.add(ch, ids[0])
		}
	}()
	tstest.WaitFor(t, 10*time.Second, "200 publishes before the move", func() bool { return okN.Load() >= 200 })
	key := prefix + "{r0}:h"
	from := c.MasterOf(key)
	var to *redistest.Server
	for _, m := range c.Masters() {
		if m != from {
			to = m
			break
		}
	}
	c.MoveSlot(redistest.Slot(key), to)
	tstest.WaitFor(t, 10*time.Second, "r0's slot served by its new master", func() bool { return c.MasterOf(key) == to })
	n := okN.Load()
	tstest.WaitFor(t, 10*time.Second, "200 publishes after the move", func() bool { return okN.Load() >= n+200 })
	close(stop)
	wg.Wait()
	markers := map[string]eventid.ID{}
	for _, ch := range channels {
		ids, err := pub.Publish(ctx, []Message{{Channel: ch, Body: body("marker")}})
		if err != nil {
			t.Fatal(err)
		}
		markers[ch] = ids[0]
		l.add(ch, ids[0])
	}
	tstest.WaitFor(t, 20*time.Second, "every marker", func() bool {
		seen := 0
		for _, d := range node.recorder.snapshot() {
			if markers[d.Channel] == d.ID {
				seen++
			}
		}
		return seen == len(channels)
	})
	if lost := node.unaccounted(l); len(lost) > 0 {
		t.Errorf("acked events neither delivered nor announced: %v", lost)
	}
	sub.cluster.mu.Lock()
	on := sub.cluster.of[sub.pubsubChannel("r0")]
	sub.cluster.mu.Unlock()
	if on == nil || on.addr != to.Addr {
		t.Errorf("r0 is subscribed on %v, want its new master %s", on, to.Addr)
	}
	t.Logf("publishes: %d answered, %d failed; catch-ups %+v", okN.Load(), failN.Load(), node.catchUps.snapshot())
}

// TestClusterHealthyAfterFailover kills a master: the node is unhealthy
// while the master's channels have no live link, and healthy again once
// its replica serves them — the dead master's link is not held against
// the node for ever.
func TestClusterHealthyAfterFailover(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster and waits for a failover")
	ctx := context.Background()
	c := redistest.StartCluster(t, 3, 1)
	prefix := fmt.Sprintf("heal%d:", time.Now().UnixNano())
	b, err := NewRedis(RedisConfig{Config: Config{Handler: func(Delivery) {}}, URL: c.URL, Prefix: prefix,
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	for i := range 12 {
		if err := b.Subscribe(ctx, fmt.Sprintf("ch%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	tstest.WaitFor(t, 10*time.Second, "a healthy node with 3 links", func() bool {
		h := b.Health()
		return h.OK && len(h.Links) == 3
	})
	victim := c.MasterOf(prefix + "{ch0}:h")
	c.Kill(victim)
	tstest.WaitFor(t, 5*time.Second, "the node unhealthy", func() bool { return !b.Health().OK })
	t.Logf("unhealthy: %v", b.Health().Reasons)
	c.WaitHealthy()
	tstest.WaitFor(t, 10*time.Second, "the node healthy after the failover", func() bool { return b.Health().OK })
	for _, l := range b.Health().Links {
		if l.Addr == victim.Addr {
			t.Errorf("the killed master's link is still listed: %+v", l)
		}
	}
}
