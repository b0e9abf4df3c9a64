package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
)

// publisher publishes numbered events through one node until stopped,
// alternating between channels, and records every attempt and which were
// accepted.
type publisher struct {
	mu       sync.Mutex
	channel  map[string]string     // data -> channel, every attempt
	accepted map[string]eventid.ID // data -> id, publishes answered 201
}

func newPublisher() *publisher {
	return &publisher{channel: map[string]string{}, accepted: map[string]eventid.ID{}}
}

func (p *publisher) run(ctx context.Context, base, name string, channels []string) {
	for n := 0; ctx.Err() == nil; n++ {
		ch, data := channels[n%len(channels)], fmt.Sprintf("%s-%d", name, n)
		p.mu.Lock()
		p.channel[data] = ch
		p.mu.Unlock()
		resp, err := http.Post(base+"/pub?id="+ch, "text/plain", strings.NewReader(data))
		if err == nil {
			var r PublishResult
			if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&r) == nil {
				if id, err := eventid.Parse(r.ID); err == nil {
					p.mu.Lock()
					p.accepted[data] = id
					p.mu.Unlock()
				}
			}
			resp.Body.Close()
		}
		time.Sleep(time.Millisecond)
	}
}

// published merges what the publishers attempted and what was accepted.
func published(pubs []*publisher) (channel map[string]string, accepted map[string]eventid.ID) {
	channel, accepted = map[string]string{}, map[string]eventid.ID{}
	for _, p := range pubs {
		p.mu.Lock()
		for data, c := range p.channel {
			channel[data] = c
		}
		for data, id := range p.accepted {
			accepted[data] = id
		}
		p.mu.Unlock()
	}
	return channel, accepted
}

// receiver collects what one subscriber got.
type receiver struct {
	name  string
	chans []string
	s     *stream
	got   []sse.Event
}

func (r *receiver) drain() {
	for {
		select {
		case ev, ok := <-r.s.events:
			if !ok {
				r.s.t.Fatalf("%s: stream ended: %v", r.name, <-r.s.err)
			}
			r.got = append(r.got, ev)
		default:
			return
		}
	}
}

// delivery is one event a receiver got, with its channel and its id there.
type delivery struct {
	data, channel string
	id            eventid.ID
}

// deliveries resolves r's events against what was published (a
// connection to several channels sends a cursor as id).
func (r *receiver) deliveries(channelOf map[string]string) ([]delivery, error) {
	var out []delivery
	for _, ev := range r.got {
		if ev.Event != "message" {
			return nil, fmt.Errorf("%s: unexpected event %q: %s", r.name, ev.Event, ev.Data)
		}
		d := delivery{data: string(ev.Data), channel: channelOf[string(ev.Data)]}
		if d.channel == "" {
			return nil, fmt.Errorf("%s: event %q was never published", r.name, ev.Data)
		}
		plain, cursor, err := eventid.ParseLastEventID(ev.ID)
		if err != nil {
			return nil, fmt.Errorf("%s: event %q has id %q: %w", r.name, ev.Data, ev.ID, err)
		}
		d.id = plain
		if cursor != nil {
			d.id = cursor[d.channel]
		}
		out = append(out, d)
	}
	return out, nil
}

// missing returns the accepted events of r's channels that r did not get.
func (r *receiver) missing(ds []delivery, channelOf map[string]string, accepted map[string]eventid.ID) []string {
	got := map[delivery]bool{}
	for _, d := range ds {
		got[d] = true
	}
	var out []string
	for data, id := range accepted {
		for _, c := range r.chans {
			if channelOf[data] == c && !got[delivery{data: data, channel: c, id: id}] {
				out = append(out, data+"@"+id.String())
			}
		}
	}
	return out
}

// waitComplete drains the receivers until each has every accepted event of
// its channels, then checks that each got those exactly once and in id
// order per channel, among nothing but published events. (A publish whose
// reply was lost as Redis died can have been run again by go-redis's retry
// and so be in a channel twice, with two ids: two events.) The publishers
// must have stopped: a marker published on base to each channel, after
// everything else, shows when a duplicate would have arrived, since a
// channel's events reach a stream in id order.
func waitComplete(t *testing.T, base string, recvs []*receiver, pubs []*publisher) {
	t.Helper()
	channelOf, accepted := published(pubs)
	deadline := time.Now().Add(15 * time.Second)
	for _, r := range recvs {
		for {
			r.drain()
			ds, err := r.deliveries(channelOf)
			if err != nil {
				t.Fatal(err)
			}
			miss := r.missing(ds, channelOf, accepted)
			if len(miss) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d accepted events never arrived: %v", r.name, len(miss), miss)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Instead of a pause: a duplicate would come before its channel's marker.
	channels := map[string]bool{}
	for _, r := range recvs {
		for _, c := range r.chans {
			channels[c] = true
		}
	}
	for c := range channels {
		channelOf["marker-"+c] = c
		publish(t, base, c, "marker-"+c)
	}
	for _, r := range recvs {
		tstest.WaitFor(t, 5*time.Second, r.name+"'s markers", func() bool {
			r.drain()
			markers := 0
			for _, ev := range r.got {
				if strings.HasPrefix(string(ev.Data), "marker-") {
					markers++
				}
			}
			return markers >= len(r.chans)
		})
	}
	for _, r := range recvs {
		r.drain()
		ds, err := r.deliveries(channelOf)
		if err != nil {
			t.Fatal(err)
		}
		last := map[string]delivery{}
		twice := map[string]int{}
		for _, d := range ds {
			if twice[d.data]++; twice[d.data] == 2 {
				t.Logf("%s: %q is in %s twice (published again by a retry)", r.name, d.data, d.channel)
			}
			if prev := last[d.channel]; !prev.id.Less(d.id) {
				t.Errorf("%s: %q (%v) after %q (%v) on %s: a duplicate or out of order", r.name, d.data, d.id, prev.data, prev.id, d.channel)
			}
			last[d.channel] = d
		}
	}
}

func subscribeReceiver(t *testing.T, base, node string, chans ...string) *receiver {
	t.Helper()
	return &receiver{
		name:  node + ":" + strings.Join(chans, "+"),
		chans: chans,
		s:     subscribe(t, base+"/sub/"+strings.Join(chans, "/"), nil),
	}
}

// TestRedisRestartCatchUp: two nodes on one Redis with AOF, publishers on
// both, Redis restarted mid-run: every subscriber that stayed connected gets
// every accepted event once and in order, including those published after
// Redis came back but before its node had resubscribed.
func TestRedisRestartCatchUp(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t, redistest.Options{AppendOnly: true})
	a, baseA := startServer(t, Config{RedisURL: rds.URL, NodeID: "a"})
	b, baseB := startServer(t, Config{RedisURL: rds.URL, NodeID: "b"})
	var recvs []*receiver
	for node, base := range map[string]string{"a": baseA, "b": baseB} {
		recvs = append(recvs,
			subscribeReceiver(t, base, node, "c1"),
			subscribeReceiver(t, base, node, "c2"),
			subscribeReceiver(t, base, node, "c1", "c2"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pubs := []*publisher{newPublisher(), newPublisher()}
	var wg sync.WaitGroup
	for i, base := range []string{baseA, baseB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pubs[i].run(ctx, base, fmt.Sprint("p", i), []string{"c1", "c2"})
		}()
	}
	time.Sleep(300 * time.Millisecond)
	rds.Restart()
	tstest.WaitFor(t, 10*time.Second, "both nodes to catch up", func() bool {
		return a.Stats().Totals.CatchUps > 0 && b.Stats().Totals.CatchUps > 0
	})
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()

	waitComplete(t, baseA, recvs, pubs)
	for _, srv := range []*Server{a, b} {
		tstest.WaitFor(t, 5*time.Second, "the counters to balance", func() bool { return srv.Stats().Balance == 0 })
		st := srv.Stats().Totals
		t.Logf("node %s: received %d, caught up %d in %d catch-ups, fanned out %d, broker errors %d", srv.cfg.NodeID, st.Received, st.CaughtUp, st.CatchUps, st.FannedOut, st.BrokerErrors)
		if st.Subscribers != 3 || st.FannedOut != st.Written+st.Dropped+st.Queued || st.CaughtUp > st.Received {
			t.Errorf("node %s: %+v", srv.cfg.NodeID, st)
		}
	}
}

// cutPubSub kills the pub/sub connection of the node whose Redis client
// is named name, and refuses new connections (maxclients 1; open ones keep
// working, so the other node goes on publishing) until restore.
func cutPubSub(t *testing.T, admin *redis.Client, name string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "maxclients", "1").Err(); err != nil {
		t.Fatal(err)
	}
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		var id string
		var isNode, isPubSub bool
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch {
			case k == "id":
				id = v
			case k == "name":
				isNode = v == name
			case (k == "sub" || k == "ssub") && v != "0":
				isPubSub = true
			}
		}
		if isNode && isPubSub {
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections of %s, want 1:\n%s", killed, name, list)
	}
	return func() {
		t.Helper()
		if err := admin.ConfigSet(ctx, "maxclients", "10000").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPubSubCutCatchUp: one node's pub/sub connection is killed and kept
// down while the other node publishes; once it is back, its subscribers
// get what they missed, once, in order, and a darktime.missed notice where
// the history no longer held all of it.
func TestPubSubCutCatchUp(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprint("sharded=", sharded), func(t *testing.T) {
			t.Parallel()
			rds := redistest.Start(t)
			admin := rds.Client()
			_, baseA := startServer(t, Config{RedisURL: rds.URL + "?client_name=node-a", RedisSharded: sharded, HistoryLength: 8})
			b, baseB := startServer(t, Config{RedisURL: rds.URL + "?client_name=node-b", RedisSharded: sharded, HistoryLength: 8})
			recvs := []*receiver{subscribeReceiver(t, baseB, "b", "k"), subscribeReceiver(t, baseB, "b", "k", "q")}
			onA := subscribeReceiver(t, baseA, "a", "k")
			var ids []string
			for i := 0; i < 3; i++ {
				ids = append(ids, publish(t, baseA, "k", fmt.Sprint("before-", i)))
			}
			for _, r := range append(recvs, onA) {
				for range ids {
					r.s.next(5 * time.Second)
				}
			}

			// A short outage: everything is still in history.
			restore := cutPubSub(t, admin, "node-b")
			for i := 0; i < 5; i++ {
				publish(t, baseA, "k", fmt.Sprint("during-", i))
			}
			publish(t, baseA, "q", "quiet") // q's first event since b subscribed
			restore()
			tstest.WaitFor(t, 10*time.Second, "node b to catch up", func() bool { return b.Stats().Totals.CaughtUp >= 6 })
			for i := 0; i < 3; i++ {
				publish(t, baseA, "k", fmt.Sprint("after-", i))
			}
			want := []string{"during-0", "during-1", "during-2", "during-3", "during-4", "after-0", "after-1", "after-2"}
			for _, r := range recvs {
				// Order is per channel: q's event may come anywhere among k's.
				var onK, onQ []string
				for len(onK)+len(onQ) < len(want)+len(r.chans)-1 {
					if data := string(r.s.next(5 * time.Second).Data); data == "quiet" {
						onQ = append(onQ, data)
					} else {
						onK = append(onK, data)
					}
				}
				if fmt.Sprint(onK) != fmt.Sprint(want) || len(onQ) != len(r.chans)-1 {
					t.Fatalf("%s got %v on k and %v on q, want %v and the quiet event if subscribed", r.name, onK, onQ, want)
				}
			}

			// A long one: history keeps 8 of the 12 events published meanwhile.
			restore = cutPubSub(t, admin, "node-b")
			var during []string
			for i := 0; i < 12; i++ {
				during = append(during, publish(t, baseA, "k", fmt.Sprint("long-", i)))
			}
			restore()
			for _, r := range recvs {
				ev := r.s.next(10 * time.Second)
				var n missedNotice
				if ev.Event != "darktime.missed" || json.Unmarshal(ev.Data, &n) != nil || n.Channel != "k" || n.Reason != "history_trimmed" {
					t.Fatalf("%s: first event after the long outage = %+v, want a darktime.missed notice for k", r.name, ev)
				}
				for i := 4; i < 12; i++ {
					ev := r.s.next(5 * time.Second)
					if string(ev.Data) != fmt.Sprint("long-", i) || (len(r.chans) == 1 && ev.ID != during[i]) {
						t.Fatalf("%s: event after the notice = %q %q, want long-%d %s", r.name, ev.ID, ev.Data, i, during[i])
					}
				}
			}
			tstest.WaitFor(t, 5*time.Second, "node b's counters to balance", func() bool { return b.Stats().Balance == 0 })
			if st := b.Stats().Totals; st.CatchUps != 2 || st.MissedNotices != 2 || st.CaughtUp < 6+8 {
				t.Fatalf("node b after two outages: %+v", st)
			}
			// Node a never lost its link: its subscriber got everything live.
			var longData []string
			for i := 0; i < 12; i++ {
				longData = append(longData, fmt.Sprint("long-", i))
			}
			for i, data := range append(want, longData...) {
				if ev := onA.s.next(5 * time.Second); string(ev.Data) != data {
					t.Fatalf("node a's subscriber: event %d = %q, want %q", i, ev.Data, data)
				}
			}
		})
	}
}
