package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// TestTwoNodesOneRedis: subscribers on both nodes get every event published
// on either node, and a client resumes on the other node.
func TestTwoNodesOneRedis(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	a, baseA := startServer(t, Config{RedisURL: rds.URL, NodeID: "a"})
	b, baseB := startServer(t, Config{RedisURL: rds.URL, NodeID: "b"})
	onA := subscribe(t, baseA+"/sub/thread:1", nil)
	onB := subscribe(t, baseB+"/sub/thread:1", nil)
	var ids []string
	for i := 0; i < 20; i++ {
		base := baseA
		if i%2 == 1 {
			base = baseB
		}
		ids = append(ids, publish(t, base, "thread:1", fmt.Sprint(i)))
	}
	for _, s := range []*stream{onA, onB} {
		for i := 0; i < 20; i++ {
			if ev := s.next(5 * time.Second); ev.ID != ids[i] || string(ev.Data) != fmt.Sprint(i) {
				t.Fatalf("event %d = %q %q, want %q", i, ev.ID, ev.Data, ids[i])
			}
		}
	}
	// The client on A leaves; events go on; it comes back on B.
	onA.close()
	var later []string
	for i := 0; i < 3; i++ {
		later = append(later, publish(t, baseA, "thread:1", fmt.Sprint("later", i)))
	}
	back := subscribe(t, baseB+"/sub/thread:1", map[string]string{"Last-Event-ID": ids[19]})
	for i := 0; i < 3; i++ {
		if ev := back.next(5 * time.Second); ev.ID != later[i] {
			t.Fatalf("resume on the other node: event %d = %q, want %q", i, ev.ID, later[i])
		}
	}
	tstest.WaitFor(t, 2*time.Second, "both nodes to balance", func() bool {
		sa, sb := a.Stats(), b.Stats()
		return sa.Balance == 0 && sb.Balance == 0 && sb.Channels["thread:1"].Written == 23 && sa.Totals.Written == 20
	})
	if sa, sb := a.Stats(), b.Stats(); sa.Totals.Published+sb.Totals.Published != 23 || sa.Totals.Received != 23 || sb.Totals.Received != 23 {
		t.Fatalf("node a %+v\nnode b %+v", sa.Totals, sb.Totals)
	}
}

// TestRedisLostMidRun: while Redis is down, subscribers stay connected,
// publishes answer 503 (nothing vanishes silently) and are counted; after
// Redis returns, delivery resumes on the same connections.
func TestRedisLostMidRun(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	srv, base := startServer(t, Config{RedisURL: rds.URL, KeepAlive: 100 * time.Millisecond})
	s := subscribe(t, base+"/sub/r", nil)
	publish(t, base, "r", "before")
	s.next(5 * time.Second)

	rds.Stop()
	code, body := do(t, "POST", base+"/pub?id=r", nil, "during")
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["error"]), "publish failed") {
		t.Fatalf("publish with Redis down: %d %v", code, body)
	}
	code, _ = do(t, "GET", base+"/sub/other", nil, "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("new subscription with Redis down: %d, want 503", code)
	}
	time.Sleep(300 * time.Millisecond) // keep-alives go on meanwhile
	rds.StartAgain()

	var id string
	tstest.WaitFor(t, 15*time.Second, "publishing to work again", func() bool {
		code, body := do(t, "POST", base+"/pub?id=r", nil, "after")
		if code == http.StatusCreated {
			id = fmt.Sprint(body["id"])
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	// The old connection is still open and receives (after go-redis
	// resubscribed; a publish racing the resubscription may be missed, so
	// publish until one arrives).
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("the subscriber's stream ended while Redis was away")
			}
			if string(ev.Data) == "after" {
				st := srv.Stats()
				if st.Totals.PublishErrors == 0 || st.Totals.BrokerErrors == 0 || st.Totals.Subscribers != 1 {
					t.Fatalf("counters after the outage: %+v", st.Totals)
				}
				_ = id
				return
			}
		case <-time.After(200 * time.Millisecond):
			publish(t, base, "r", "after")
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery after Redis came back")
		}
	}
}

// TestPublishOutcomeUnknown: with Redis paused, a publish that was sent
// and never answered is not a refusal: it answers 504 (the event may be
// delivered), and once Redis continues the event is delivered — which a
// 503 ("not delivered, retry") would have denied. A publish refused
// before it was sent (Redis down) still answers 503.
func TestPublishOutcomeUnknown(t *testing.T) {
	tstest.Long(t, "waits out the publish timeout on a paused Redis")
	t.Parallel()
	rds := redistest.Start(t)
	_, base := startServer(t, Config{RedisURL: rds.URL, KeepAlive: 100 * time.Millisecond})
	s := subscribe(t, base+"/sub/paused", nil)
	publish(t, base, "paused", "before")
	if ev := s.next(5 * time.Second); string(ev.Data) != "before" {
		t.Fatalf("first event %q", ev.Data)
	}
	rds.Pause()
	code, body := do(t, "POST", base+"/pub?id=paused", nil, "during")
	if code != http.StatusGatewayTimeout || !strings.Contains(fmt.Sprint(body["error"]), "outcome unknown") {
		t.Fatalf("publish with Redis paused: %d %v, want 504 outcome unknown", code, body)
	}
	rds.Resume()
	ev := s.next(15 * time.Second)
	if string(ev.Data) != "during" {
		t.Fatalf("after Redis continued the subscriber got %q, want the publish answered 504", ev.Data)
	}
}

func TestRedisUnreachableAtStart(t *testing.T) {
	t.Parallel()
	_, err := New(Config{RedisURL: "redis://127.0.0.1:1/0", Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "redis://127.0.0.1:1/0") {
		t.Fatalf("New with unreachable Redis: %v, want an error naming the URL", err)
	}
}
