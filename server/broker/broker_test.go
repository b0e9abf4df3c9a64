package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/hashslot"
	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// recorder collects deliveries.
type recorder struct {
	mu  sync.Mutex
	got []Delivery
}

func (r *recorder) handle(d Delivery) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

func (r *recorder) waitFor(t *testing.T, n int) []Delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.snapshot(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("got %d deliveries, want %d", len(r.snapshot()), n)
	return nil
}

// marker publishes a marker event on channel through b and waits until
// r has it, then returns r's deliveries but the marker. Published after
// the events under test, it stands for a pause: a duplicate or a leak would
// have come first, since one node delivers a channel's events in id order
// and its channels in the order its one pub/sub connection received them.
func (r *recorder) marker(t *testing.T, b Broker, channel string) []Delivery {
	t.Helper()
	ids, err := b.Publish(context.Background(), []Message{{Channel: channel, Body: body("marker")}})
	if err != nil {
		t.Fatalf("publish the marker: %v", err)
	}
	isMarker := func(d Delivery) bool { return d.Channel == channel && d.ID == ids[0] } // ids are per channel
	var got []Delivery
	tstest.WaitFor(t, 5*time.Second, "the marker on "+channel, func() bool {
		got = r.snapshot()
		return slices.ContainsFunc(got, isMarker)
	})
	return slices.DeleteFunc(got, isMarker)
}

// catchUps collects OnCatchUp reports.
type catchUps struct {
	mu  sync.Mutex
	got []CatchUp
}

func (c *catchUps) add(cu CatchUp) {
	c.mu.Lock()
	c.got = append(c.got, cu)
	c.mu.Unlock()
}

func (c *catchUps) snapshot() []CatchUp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CatchUp(nil), c.got...)
}

type factory func(t *testing.T, cfg Config) Broker

// suite is one broker implementation under the conformance suite.
type suite struct {
	newBroker factory
	// linkDown cuts every node's link to the others and keeps new links
	// from being made until restore is called; nil when the broker has no
	// link to lose.
	linkDown func(t *testing.T) (restore func())
}

func memoryFactory(t *testing.T, cfg Config) Broker {
	b, err := NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// redisSuite returns a suite whose brokers share one private Redis, so
// two brokers made by it are two nodes.
func redisSuite(t *testing.T, sharded bool) suite {
	srv := redistest.Start(t)
	admin := srv.Client()
	prefix := fmt.Sprintf("t%d:", time.Now().UnixNano())
	return suite{
		newBroker: func(t *testing.T, cfg Config) Broker {
			b, err := NewRedis(RedisConfig{Config: cfg, URL: srv.URL, Prefix: prefix, Sharded: sharded})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		linkDown: func(t *testing.T) func() {
			return cutPubSub(t, admin)
		},
	}
}

// clusterSuite returns a suite whose brokers share one private Redis
// Cluster (3 masters, 3 replicas).
func clusterSuite(t *testing.T) suite {
	c := redistest.StartCluster(t, 3, 1)
	prefix := fmt.Sprintf("t%d:", time.Now().UnixNano())
	var admins []*redis.Client
	for _, n := range c.Nodes {
		admins = append(admins, n.Client())
	}
	return suite{
		newBroker: func(t *testing.T, cfg Config) Broker {
			b, err := NewRedis(RedisConfig{Config: cfg, URL: c.URL, Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
		linkDown: func(t *testing.T) func() {
			var restores []func()
			for _, a := range admins {
				restores = append(restores, cutPubSub(t, a))
			}
			return func() {
				for _, r := range restores {
					r()
				}
			}
		},
	}
}

// cutPubSub kills every pub/sub connection of a Redis and refuses new
// connections (maxclients 1; connections already open keep working, so
// publishing goes on) until restore.
func cutPubSub(t *testing.T, admin *redis.Client) (restore func()) {
	t.Helper()
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "maxclients", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := admin.ConfigSet(ctx, "maxclients", "10000").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func body(s string) []byte { return []byte("data: " + s + "\n") }

// TestConformance runs the same suite against every broker.
func TestConformance(t *testing.T) {
	for name, mk := range map[string]func(t *testing.T) suite{
		"memory":        func(*testing.T) suite { return suite{newBroker: memoryFactory} },
		"redis":         func(t *testing.T) suite { return redisSuite(t, false) },
		"redis-sharded": func(t *testing.T) suite { return redisSuite(t, true) },
		"redis-cluster": clusterSuite,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runConformance(t, mk(t))
		})
	}
}

func runConformance(t *testing.T, s suite) {
	ctx := context.Background()
	newBroker := s.newBroker

	t.Run("delivers in order to subscribers only", func(t *testing.T) {
		rec := &recorder{}
		b := newBroker(t, Config{Handler: rec.handle})
		if err := b.Subscribe(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		var want []eventid.ID
		for i := 0; i < 50; i++ {
			ids, err := b.Publish(ctx, []Message{{Channel: "a", Body: body(fmt.Sprint(i))}, {Channel: "unsubscribed", Body: body("x")}})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ids[0])
		}
		rec.waitFor(t, 50)
		got := rec.marker(t, b, "a")
		if len(got) != 50 {
			t.Fatalf("got %d deliveries, want 50 (unsubscribed channel leaked?)", len(got))
		}
		for i, d := range got {
			if d.Channel != "a" || d.ID != want[i] || string(d.Body) != string(body(fmt.Sprint(i))) {
				t.Fatalf("delivery %d = %+v %q, want id %v", i, d, d.Body, want[i])
			}
			if i > 0 && !got[i-1].ID.Less(d.ID) {
				t.Fatalf("ids not increasing: %v then %v", got[i-1].ID, d.ID)
			}
		}
	})

	t.Run("unsubscribe stops delivery", func(t *testing.T) {
		rec := &recorder{}
		b := newBroker(t, Config{Handler: rec.handle})
		if err := b.Subscribe(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Publish(ctx, []Message{{Channel: "u", Body: body("1")}}); err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, 1)
		if err := b.Unsubscribe(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		// Subscribe returns once confirmed, on the connection that sent
		// the unsubscribe: Redis has done that too.
		if err := b.Subscribe(ctx, "u-marker"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Publish(ctx, []Message{{Channel: "u", Body: body("2")}}); err != nil {
			t.Fatal(err)
		}
		if n := len(rec.marker(t, b, "u-marker")); n != 1 {
			t.Fatalf("got %d deliveries after unsubscribe, want 1", n)
		}
	})

	t.Run("history resumes after an id", func(t *testing.T) {
		b := newBroker(t, Config{Handler: func(Delivery) {}})
		var ids []eventid.ID
		for i := 0; i < 5; i++ {
			got, err := b.Publish(ctx, []Message{{Channel: "h", Body: body(fmt.Sprint(i))}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got[0])
		}
		h, err := b.History(ctx, "h", ids[1])
		if err != nil {
			t.Fatal(err)
		}
		if h.Missed || len(h.Events) != 3 || h.Events[0].ID != ids[2] || string(h.Events[2].Body) != string(body("4")) {
			t.Fatalf("history after ids[1] = %+v", h)
		}
		h, _ = b.History(ctx, "h", eventid.ID{})
		if len(h.Events) != 5 || h.Missed {
			t.Fatalf("history from zero = %d events, missed=%v", len(h.Events), h.Missed)
		}
		h, _ = b.History(ctx, "h", ids[4])
		if len(h.Events) != 0 || h.Missed {
			t.Fatalf("history after newest = %+v", h)
		}
		last, err := b.Last(ctx, "h")
		if err != nil || last != ids[4] {
			t.Fatalf("Last = %v, %v; want %v", last, err, ids[4])
		}
		last, err = b.Last(ctx, "never-published")
		if err != nil || !last.IsZero() {
			t.Fatalf("Last of empty channel = %v, %v", last, err)
		}
	})

	t.Run("trimmed history is reported as missed", func(t *testing.T) {
		b := newBroker(t, Config{Handler: func(Delivery) {}, MaxLen: 3})
		var ids []eventid.ID
		for i := 0; i < 6; i++ {
			got, err := b.Publish(ctx, []Message{{Channel: "trim", Body: body(fmt.Sprint(i))}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got[0])
		}
		h, err := b.History(ctx, "trim", ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if !h.Missed || h.Reason != MissTrimmed || len(h.Events) != 3 || h.Events[0].ID != ids[3] {
			t.Fatalf("history after trimmed id = %+v", h)
		}
		h, _ = b.History(ctx, "trim", ids[2])
		if h.Missed || len(h.Events) != 3 {
			t.Fatalf("history after last trimmed id = %+v, want 3 events, not missed", h)
		}
	})

	t.Run("ids older than max age are reported as too old", func(t *testing.T) {
		b := newBroker(t, Config{Handler: func(Delivery) {}, MaxAge: time.Minute})
		old := eventid.ID{Ms: uint64(time.Now().Add(-2 * time.Minute).UnixMilli())}
		h, err := b.History(ctx, "old", old)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Missed || h.Reason != MissTooOld {
			t.Fatalf("history after a 2-minute-old id = %+v, want too_old", h)
		}
	})

	t.Run("events older than max age are trimmed and reported", func(t *testing.T) {
		b := newBroker(t, Config{Handler: func(Delivery) {}, MaxAge: 300 * time.Millisecond})
		first, err := b.Publish(ctx, []Message{{Channel: "age", Body: body("old")}, {Channel: "age", Body: body("old2")}})
		if err != nil {
			t.Fatal(err)
		}
		// Keep publishing so the channel stays alive while the first two age out.
		var last []eventid.ID
		for i := 0; i < 5; i++ {
			time.Sleep(100 * time.Millisecond)
			if last, err = b.Publish(ctx, []Message{{Channel: "age", Body: body("new")}}); err != nil {
				t.Fatal(err)
			}
		}
		h, err := b.History(ctx, "age", first[0])
		if err != nil {
			t.Fatal(err)
		}
		if !h.Missed || h.Reason != MissTrimmed || len(h.Events) == 0 || len(h.Events) > 3 || h.Events[len(h.Events)-1].ID != last[0] {
			t.Fatalf("history after an aged-out id = %+v, want the recent events and history_trimmed", h)
		}
	})

	t.Run("publish with a key is idempotent", func(t *testing.T) {
		rec := &recorder{}
		b := newBroker(t, Config{Handler: rec.handle})
		if err := b.Subscribe(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		first, err := b.Publish(ctx, []Message{{Channel: "d", Body: body("x"), Key: "job-1"}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := b.Publish(ctx, []Message{{Channel: "d", Body: body("x"), Key: "job-1"}, {Channel: "d", Body: body("y"), Key: "job-2"}})
		if err != nil {
			t.Fatal(err)
		}
		if again[0] != first[0] || again[1] == first[0] {
			t.Fatalf("ids: first %v, again %v", first, again)
		}
		rec.waitFor(t, 2)
		if n := len(rec.marker(t, b, "d")); n != 2 {
			t.Fatalf("got %d deliveries, want 2 (the repeated key must not deliver)", n)
		}
	})

	t.Run("every node receives every event", func(t *testing.T) {
		if _, ok := newBroker(t, Config{Handler: func(Delivery) {}}).(*Memory); ok {
			t.Skip("the memory broker is one node")
		}
		var recs [3]recorder
		var nodes [3]Broker
		for i := range nodes {
			nodes[i] = newBroker(t, Config{Handler: recs[i].handle})
			if err := nodes[i].Subscribe(ctx, "multi"); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 30; i++ {
			if _, err := nodes[i%3].Publish(ctx, []Message{{Channel: "multi", Body: body(fmt.Sprint(i))}}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range recs {
			got := recs[i].waitFor(t, 30)
			for j, d := range got {
				if string(d.Body) != string(body(fmt.Sprint(j))) {
					t.Fatalf("node %d delivery %d = %q", i, j, d.Body)
				}
			}
		}
		// History written through one node is read through another.
		h, err := nodes[2].History(ctx, "multi", eventid.ID{})
		if err != nil || len(h.Events) != 30 {
			t.Fatalf("history via another node: %d events, %v", len(h.Events), err)
		}
	})

	t.Run("events published while the link is down are caught up once, in order", func(t *testing.T) {
		rec := &recorder{}
		var cus catchUps
		node := newBroker(t, Config{Handler: rec.handle, OnCatchUp: cus.add})
		publishers := []Broker{node}
		if s.linkDown != nil {
			publishers = append(publishers, newBroker(t, Config{Handler: func(Delivery) {}}))
		}
		want := map[string][]eventid.ID{}
		n := 0
		pub := func(channel string) {
			t.Helper()
			ids, err := publishers[n%len(publishers)].Publish(ctx, []Message{{Channel: channel, Body: body(fmt.Sprint(n))}})
			if err != nil {
				t.Fatal(err)
			}
			n++
			want[channel] = append(want[channel], ids[0])
		}
		// Published before the node subscribed: a catch-up must not bring it.
		pub("gap")
		pub("quiet")
		want = map[string][]eventid.ID{}
		for _, c := range []string{"gap", "quiet"} {
			if err := node.Subscribe(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		pub("gap")
		pub("gap")
		rec.waitFor(t, 2)

		restore := func() {}
		if s.linkDown != nil {
			restore = s.linkDown(t)
		}
		for i := 0; i < 10; i++ {
			pub("gap")
		}
		// quiet had no event since the node subscribed: its catch-up starts
		// from the newest event before the subscription.
		pub("quiet")
		pub("quiet")
		time.Sleep(50 * time.Millisecond)
		restore()
		for i := 0; i < 5; i++ {
			pub("gap")
			time.Sleep(time.Millisecond)
		}
		rec.waitFor(t, 19)
		// A marker on each channel instead of a pause: a duplicate would
		// come before it (a channel's deliveries come in id order).
		pub("gap")
		pub("quiet")
		isMarker := func(d Delivery) bool { // ids are per channel
			ids := want[d.Channel]
			return (d.Channel == "gap" || d.Channel == "quiet") && d.ID == ids[len(ids)-1]
		}
		tstest.WaitFor(t, 5*time.Second, "the markers on gap and quiet", func() bool {
			markers := 0
			for _, d := range rec.snapshot() {
				if isMarker(d) {
					markers++
				}
			}
			return markers >= 2
		})

		got := map[string][]Delivery{}
		for _, d := range rec.snapshot() {
			got[d.Channel] = append(got[d.Channel], d)
		}
		for c, ids := range want {
			if len(got[c]) != len(ids) {
				t.Fatalf("%s: got %d deliveries %v, want %d %v", c, len(got[c]), got[c], len(ids), ids)
			}
			for i, d := range got[c] {
				if d.ID != ids[i] {
					t.Fatalf("%s: delivery %d is %v, want %v (got %v)", c, i, d.ID, ids[i], got[c])
				}
			}
		}
		caught := 0
		for _, d := range rec.snapshot() {
			if d.CaughtUp && !isMarker(d) {
				caught++
			}
		}
		all := cus.snapshot()
		if s.linkDown == nil {
			if len(all) != 0 || caught != 0 {
				t.Fatalf("a broker without a link caught up: %+v, %d events", all, caught)
			}
			return
		}
		// The 12 events of the outage came from history (the 5 after it may
		// have too, if published before the node resubscribed).
		if len(all) == 0 || caught < 12 || caught > 17 {
			t.Fatalf("catch-ups %+v, %d events caught up; want at least one, and 12 to 17 events", all, caught)
		}
		for _, cu := range all {
			if len(cu.Gaps) != 0 {
				t.Fatalf("catch-up reported gaps: %+v", cu)
			}
		}
	})

	t.Run("events the history lost while the link was down are reported", func(t *testing.T) {
		if s.linkDown == nil {
			t.Skip("the broker has no link to lose")
		}
		rec := &recorder{}
		var cus catchUps
		node := newBroker(t, Config{Handler: rec.handle, OnCatchUp: cus.add, MaxLen: 5})
		if err := node.Subscribe(ctx, "lossy"); err != nil {
			t.Fatal(err)
		}
		first, err := node.Publish(ctx, []Message{{Channel: "lossy", Body: body("first")}})
		if err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, 1)
		restore := s.linkDown(t)
		var ids []eventid.ID
		for i := 0; i < 12; i++ {
			got, err := node.Publish(ctx, []Message{{Channel: "lossy", Body: body(fmt.Sprint(i))}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got[0])
		}
		restore()
		got := rec.waitFor(t, 6)
		for i, d := range got[1:] {
			if d.ID != ids[7+i] || !d.CaughtUp {
				t.Fatalf("delivery %d after the gap = %+v, want the retained %v, caught up", i, d, ids[7+i])
			}
		}
		all := cus.snapshot()
		want := Gap{Channel: "lossy", After: first[0], Reason: MissTrimmed}
		if len(all) != 1 || len(all[0].Gaps) != 1 || all[0].Gaps[0] != want || all[0].Events != 5 {
			t.Fatalf("catch-ups %+v, want one with 5 events and gap %+v", all, want)
		}
	})
}

func TestRedisUnreachableNamesURL(t *testing.T) {
	t.Parallel()
	_, err := NewRedis(RedisConfig{Config: Config{Handler: func(Delivery) {}}, URL: "redis://:secret@127.0.0.1:1/0"})
	if err == nil {
		t.Fatal("NewRedis succeeded against a closed port")
	}
	if got := err.Error(); !strings.Contains(got, "127.0.0.1:1") || strings.Contains(got, "secret") {
		t.Fatalf("error %q should name the URL without the password", got)
	}
}

func TestRedisSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := redistest.Start(t)
	rec := &recorder{}
	b, err := NewRedis(RedisConfig{Config: Config{Handler: rec.handle}, URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []Message{{Channel: "r", Body: body("before")}}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 1)
	srv.Stop()
	if _, err := b.Publish(ctx, []Message{{Channel: "r", Body: body("during")}}); err == nil {
		t.Fatal("publish succeeded while Redis was down")
	}
	srv.StartAgain()
	// go-redis reconnects and resubscribes; publishing works again and the
	// subscription delivers again (script cache was lost: NOSCRIPT path).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.Publish(ctx, []Message{{Channel: "r", Body: body("after")}})
		if err == nil && len(rec.snapshot()) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after restart (last publish err %v, deliveries %d)", err, len(rec.snapshot()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A batch after the restart exercises the NOSCRIPT fallback of pipelines.
	srv.Restart()
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := b.Publish(ctx, []Message{{Channel: "r", Body: body("b1")}, {Channel: "r", Body: body("b2")}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch publish after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChannelSlot: a channel's history and pub/sub channel hash to the
// slot ChannelSlot names, with the default prefix and another.
func TestChannelSlot(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "other:"} {
		r := &Redis{cfg: RedisConfig{Prefix: prefix}}
		if prefix == "" {
			r.cfg.Prefix = DefaultPrefix
		}
		for _, ch := range []string{"c", "swarm1a2b_0", "news:eu"} {
			got := ChannelSlot(prefix, ch)
			if h, p := hashslot.Of(r.historyKey(ch)), hashslot.Of(r.pubsubChannel(ch)); got != h || got != p {
				t.Errorf("ChannelSlot(%q, %q) = %d; history key's slot %d, pub/sub channel's %d", prefix, ch, got, h, p)
			}
		}
	}
}
