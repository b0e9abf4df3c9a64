package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/redistest"
)

// TestResumeOrderTwoNodes: two nodes share one Redis, a channel's publishes
// alternate between them (each answered before the next is sent, so the
// publish order is defined), and clients are cut again and again mid-stream
// and resume with Last-Event-ID on the other node while publishing goes
// on. Every client gets every event exactly once, in publish order, with
// the id its publish answered. Node b serves through the ResponseWriter, so
// both the hijacked and the portable write paths resume.
func TestResumeOrderTwoNodes(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	a, baseA := startServer(t, Config{RedisURL: rds.URL, NodeID: "a"})
	b, baseB := startServer(t, Config{RedisURL: rds.URL, NodeID: "b", DisableDirectWrites: true})
	nodes := []string{baseA, baseB}
	hc := testClient(t)
	const (
		channel = "resume-order"
		events  = 400
		clients = 8
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Every client is subscribed before the first publish, so each is owed
	// all of them.
	conns := make([]*orderConn, clients)
	for c := range conns {
		conns[c] = openOrderConn(ctx, t, hc, nodes[c%2]+"/sub/"+channel, "")
	}

	var (
		mu  sync.Mutex
		ids = make([]string, 0, events) // by publish order
	)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for n := range events {
			id, err := tryPublish(ctx, hc, nodes[n%2], channel, strconv.Itoa(n))
			if err != nil {
				t.Errorf("publish %d: %v", n, err)
				return
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}
	}()

	type delivery struct {
		n  int
		id string
	}
	got := make([][]delivery, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			conn, node, last := conns[c], c%2, ""
			for {
				// Read a few events, then cut the connection mid-stream.
				quota := 3 + rng.IntN(30)
				for range quota {
					ev, err := conn.next()
					if err != nil {
						break // the server ended the stream: resume
					}
					if ev.event != "message" {
						t.Errorf("client %d: unexpected %q event %q after Last-Event-ID %q", c, ev.event, ev.data, conn.lastEventID)
						conn.close()
						return
					}
					n, err := strconv.Atoi(ev.data)
					if err != nil {
						t.Errorf("client %d: event data %q", c, ev.data)
						conn.close()
						return
					}
					got[c] = append(got[c], delivery{n, ev.id})
					last = ev.id
					if n == events-1 {
						conn.close()
						return
					}
				}
				conn.close()
				if ctx.Err() != nil {
					t.Errorf("client %d: timed out after %d events", c, len(got[c]))
					return
				}
				// Sometimes come back at once (live events held while the
				// history is read), sometimes later (more history).
				time.Sleep(time.Duration(rng.IntN(8)) * time.Millisecond)
				node = 1 - node
				conn = openOrderConn(ctx, t, hc, nodes[node]+"/sub/"+channel, last)
				if conn == nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	<-published
	if t.Failed() {
		return
	}
	// Both nodes resumed clients from history, not only from live events.
	for name, srv := range map[string]*Server{"a": a, "b": b} {
		if st := srv.Stats(); st.Totals.HistoryReplayed == 0 || st.Totals.MissedNotices != 0 {
			t.Errorf("node %s: %d events replayed from history, %d missed notices; want some and none", name, st.Totals.HistoryReplayed, st.Totals.MissedNotices)
		}
	}

	for c, ds := range got {
		if len(ds) != events {
			t.Errorf("client %d: %d events, want %d", c, len(ds), events)
		}
		for i, d := range ds {
			if d.n != i {
				t.Errorf("client %d: event %d is publish %d (id %s), want publish %d (id %s); around it: %v",
					c, i, d.n, d.id, i, ids[i], ds[max(0, i-3):min(len(ds), i+4)])
				break
			}
			if d.id != ids[i] {
				t.Errorf("client %d: publish %d arrived with id %s, its publish answered %s", c, i, d.id, ids[i])
				break
			}
		}
	}
}

// TestResumeOrderOverlappingPublishes pins down what "publish order" is
// when two publishes of a channel overlap on different nodes: the order in
// which they reach Redis (the id order), not the order they were sent in.
// Publish 0 is sent first, to a node that stalls (a delaying proxy in
// front of a, as a node busy with a reconnect storm does); publish 1 is
// sent to b meanwhile and lands first. Every subscriber, live or resuming
// with Last-Event-ID, then gets 1 before 0, with increasing ids: a client
// that checks arrival order against the order of sending (the swarm's seq)
// counts one reordering per subscriber of the channel, though the server
// delivered in its own order without gap or duplicate.
func TestResumeOrderOverlappingPublishes(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	_, baseA := startServer(t, Config{RedisURL: rds.URL, NodeID: "a"})
	_, baseB := startServer(t, Config{RedisURL: rds.URL, NodeID: "b"})
	target, _ := url.Parse(baseA)
	proxy := httputil.NewSingleHostReverseProxy(target)
	stalledA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(stalledA.Close)
	hc := testClient(t)
	const channel = "overlap"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := publish(t, baseB, channel, "before")
	live := subscribe(t, baseA+"/sub/"+channel, nil)

	ids := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ids[0], errs[0] = tryPublish(ctx, hc, stalledA.URL, channel, "0")
	}()
	time.Sleep(50 * time.Millisecond) // publish 0 is on its way
	go func() {
		defer wg.Done()
		ids[1], errs[1] = tryPublish(ctx, hc, baseB, channel, "1")
	}()
	wg.Wait()
	for n, err := range errs {
		if err != nil {
			t.Fatalf("publish %d: %v", n, err)
		}
	}
	id0, _ := eventid.Parse(ids[0])
	id1, _ := eventid.Parse(ids[1])
	if !id1.Less(id0) {
		t.Fatalf("publish 1 (id %s) did not overtake the stalled publish 0 (id %s): the proxy did not stall it", ids[1], ids[0])
	}

	resumed := subscribe(t, baseB+"/sub/"+channel, map[string]string{"Last-Event-ID": before})
	for name, s := range map[string]*stream{"live on a": live, "resumed on b": resumed} {
		for i, want := range []struct{ data, id string }{{"1", ids[1]}, {"0", ids[0]}} {
			if ev := s.next(5 * time.Second); string(ev.Data) != want.data || ev.ID != want.id {
				t.Errorf("%s: event %d = %q id %s, want %q id %s (Redis's order)", name, i, ev.Data, ev.ID, want.data, want.id)
			}
		}
	}
}

// orderEvent is an event as a resuming test client sees it.
type orderEvent struct {
	id, event, data string
}

// orderConn is one connection of a test client that cuts and resumes.
type orderConn struct {
	lastEventID string
	resp        *http.Response
	cancel      context.CancelFunc
	next        func() (orderEvent, error)
}

// testClient is an HTTP client of the test's own whose idle connections
// are closed before the servers shut down: a connection the transport
// dialled but never used counts as new, not idle, and would hold
// http.Server.Shutdown for 5 s.
func testClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// openOrderConn subscribes to url, resuming after lastEventID when set. It
// returns once the server has joined the subscriber to its channels (the
// response head comes after), or nil after failing the test.
func openOrderConn(ctx context.Context, t *testing.T, hc *http.Client, url, lastEventID string) *orderConn {
	cctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(cctx, "GET", url, nil)
	if err != nil {
		cancel()
		t.Error(err)
		return nil
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		t.Errorf("subscribe %s with Last-Event-ID %q: %v", url, lastEventID, err)
		return nil
	}
	r := newReader(resp.Body)
	c := &orderConn{lastEventID: lastEventID, resp: resp, cancel: cancel}
	c.next = func() (orderEvent, error) {
		ev, err := r.Next()
		if err != nil {
			return orderEvent{}, err
		}
		name := ev.Event
		if name == "" {
			name = "message"
		}
		return orderEvent{id: ev.ID, event: name, data: string(ev.Data)}, nil
	}
	return c
}

func (c *orderConn) close() {
	c.cancel()
	c.resp.Body.Close()
}

// tryPublish is publish for goroutines other than the test's: it returns
// the error instead of failing the test.
func tryPublish(ctx context.Context, hc *http.Client, base, channel, data string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/pub?id="+channel, strings.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r PublishResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("status %d, %v", resp.StatusCode, err)
	}
	return r.ID, nil
}
