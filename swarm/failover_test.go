package swarm

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// TestRunClientPlaceholder: {client} is the client's index in the whole
// run, the same across its reconnects and whatever the part split.
func TestRunClientPlaceholder(t *testing.T) {
	tstest.Long(t, "a swarm run (~4 s)")
	t.Parallel()
	var mu sync.Mutex
	var subs [][2]string // uid, channels, in order
	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/sub/") {
				mu.Lock()
				subs = append(subs, [2]string{r.URL.Query().Get("uid"), r.URL.Path})
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}
	n := startNode(t, server.Config{}, nodeOptions{wrap: record})
	cfg := quickConfig(t, n.url)
	cfg.Clients, cfg.ChannelPrefix, cfg.Duration = 12, "uid", time.Second
	cfg.Profile = builtinProfiles["darktime"]
	cfg.Profile.Subscribe += "?uid={client}"
	cfg.Storms = []time.Duration{300 * time.Millisecond}
	take := func() map[string][]string {
		mu.Lock()
		defer mu.Unlock()
		byUID := map[string][]string{}
		for _, s := range subs {
			byUID[s[0]] = append(byUID[s[0]], s[1])
		}
		subs = nil
		return byUID
	}

	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	whole := take()
	if len(whole) != cfg.Clients {
		t.Fatalf("%d distinct uids, want %d: %v", len(whole), cfg.Clients, whole)
	}
	for i := range cfg.Clients {
		paths := whole[strconv.Itoa(i)]
		if len(paths) < 2 {
			t.Errorf("uid %d subscribed %d times, want a reconnect after the storm", i, len(paths))
		}
		for _, p := range paths {
			if p != paths[0] {
				t.Errorf("uid %d subscribed to %v: one client, several channel sets", i, paths)
			}
		}
	}

	// The same run in two parts: every client keeps its index.
	cfg.Storms, cfg.Duration = nil, 300*time.Millisecond
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		part := cfg
		part.Part = Part{Index: i, Count: 2}
		wg.Go(func() { _, errs[i] = Run(context.Background(), part) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	split := take()
	if len(split) != cfg.Clients {
		t.Fatalf("split run: %d distinct uids, want %d", len(split), cfg.Clients)
	}
	for uid, paths := range split {
		if len(paths) != 1 || paths[0] != whole[uid][0] {
			t.Errorf("uid %s: split run subscribed %v, whole run %v", uid, paths, whole[uid][0])
		}
	}
}

// TestRunFailoverDeadTarget: with one of two targets refusing connections
// from the start, the clients that start there move to the other at once,
// and the publisher leaves the dead one alone.
func TestRunFailoverDeadTarget(t *testing.T) {
	tstest.Long(t, "a swarm run (~3 s)")
	t.Parallel()
	dead := "http://" + tstest.FreeAddr(t)
	live := startServer(t, server.Config{})
	cfg := quickConfig(t, "")
	cfg.Targets = []string{dead, live}
	cfg.Clients = 20
	cfg.DefaultRetry = time.Hour // a failover must not wait for it
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients.Connected != int64(cfg.Clients) || res.Clients.Failovers != int64(cfg.Clients/2) {
		t.Errorf("clients %+v: want every client connected, half of them after one failover", res.Clients)
	}
	tot := res.Ledger.Totals()
	if tot.Credit == 0 || tot.Credit != tot.Debit || tot.Lost != 0 {
		t.Errorf("ledger %+v: want every owed event received", tot)
	}
	// About one publish a second tries the dead target again.
	if f := res.Publish.Failed; f < 1 || f > 4 || res.Publish.OK < res.Publish.Attempted-4 {
		t.Errorf("publishes %+v: want the dead target tried about once a second", res.Publish)
	}
}

// TestRunFailoverNodeShutdown: two nodes on one Redis; one shuts down
// mid-run. Its clients are told to reconnect, find it gone, move to the
// other node and resume there with Last-Event-ID: nothing is lost.
func TestRunFailoverNodeShutdown(t *testing.T) {
	tstest.Long(t, "a swarm run across two nodes, one shut down (~4 s)")
	t.Parallel()
	rs := redistest.Start(t)
	a := startNode(t, server.Config{RedisURL: rs.URL, RedisPrefix: "swarmfailover:"}, nodeOptions{})
	b := startNode(t, server.Config{RedisURL: rs.URL, RedisPrefix: "swarmfailover:"}, nodeOptions{})
	cfg := quickConfig(t, "")
	cfg.Targets = []string{a.url, b.url}
	cfg.Clients, cfg.Duration, cfg.Drain = 20, 3*time.Second, time.Second
	var allOnB atomic.Bool
	var wg sync.WaitGroup
	cfg.OnPublish = func(start time.Time) {
		wg.Go(func() {
			time.Sleep(700 * time.Millisecond)
			a.stop()
			// Every client ends up on b before the publishing ends.
			for time.Since(start) < cfg.Duration {
				if b.srv.Stats().Totals.Subscribers == int64(cfg.Clients) {
					allOnB.Store(true)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	res, err := Run(context.Background(), cfg)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !allOnB.Load() {
		t.Errorf("the clients did not all move to the node left: clients %+v, errors %v", res.Clients, res.Errors)
	}
	if res.Clients.Failovers < int64(cfg.Clients/2) || res.Clients.Failed != 0 {
		t.Errorf("clients %+v: want the dead node's clients failed over, none given up", res.Clients)
	}
	tot := res.Ledger.Totals()
	if tot.Credit == 0 || tot.Lost != 0 || tot.Duplicated != 0 {
		t.Errorf("ledger %+v: want nothing lost in the failover; unbalanced %+v", tot, res.Ledger.Unbalanced())
	}
	t.Logf("clients %+v, publishes %+v, errors %v", res.Clients, res.Publish, res.Errors)
}
