package swarm

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// TestRunOvertakenPublishesNotReordered: two nodes on one Redis, and one
// of them stalls every publish longer than a channel's publishes are apart
// (as a node busy with a reconnect storm does). A channel's publishes
// alternate nodes, so each one sent to the stalled node is overtaken by the
// next, sent to the other, and Redis orders them so on every node. Those
// publishes were in flight together: the server owed no order between
// them, and delivering them in its own order is not a reordering.
func TestRunOvertakenPublishesNotReordered(t *testing.T) {
	tstest.Long(t, "a swarm run (~3 s)")
	t.Parallel()
	rs := redistest.Start(t)
	const prefix = "swarmovertake:"
	stall := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/pub" {
				time.Sleep(250 * time.Millisecond) // a channel publishes every 100 ms
			}
			h.ServeHTTP(w, r)
		})
	}
	a := startNode(t, server.Config{RedisURL: rs.URL, RedisPrefix: prefix}, nodeOptions{wrap: stall})
	b := startNode(t, server.Config{RedisURL: rs.URL, RedisPrefix: prefix}, nodeOptions{})
	cfg := quickConfig(t, "")
	cfg.Targets = []string{a.url, b.url}
	cfg.ChannelPrefix = "overtake"
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if tot := res.Ledger.Totals(); tot.Reordered != 0 {
		t.Errorf("ledger %+v: %d reordered, want none: every event came in the server's order", tot, tot.Reordered)
	}

	// The stall did overtake publishes: Redis's order (the history, in id
	// order) is not the order of the seqs.
	rdb := rs.Client()
	seqField := regexp.MustCompile(`"seq":(\d+)`)
	overtaken := 0
	for ch := range cfg.Channels {
		key := prefix + "{" + cfg.ChannelPrefix + "_" + strconv.Itoa(ch) + "}:h"
		entries, err := rdb.XRange(context.Background(), key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		high := int64(-1)
		for _, e := range entries {
			m := seqField.FindStringSubmatch(e.Values["b"].(string))
			if m == nil {
				t.Fatalf("history entry %s of %s has no seq: %v", e.ID, key, e.Values)
			}
			seq, _ := strconv.ParseInt(m[1], 10, 64)
			if seq < high {
				overtaken++
			}
			high = max(high, seq)
		}
	}
	if overtaken == 0 {
		t.Error("no publish was overtaken: the test did not stall node a")
	}
	t.Logf("%d publishes overtaken, ledger %+v", overtaken, res.Ledger.Totals())
}
