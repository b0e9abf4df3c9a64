package swarm

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// observer is a plain SSE client that shares nothing with the swarm's
// connection code: net/http and internal/sse's Reader. It counts the
// distinct event ids it received on its channel.
type observer struct {
	mu    sync.Mutex
	ids   map[string]bool
	dups  int
	err   error
	ready chan struct{}
	done  chan struct{}
}

func observe(ctx context.Context, t *testing.T, url string) *observer {
	t.Helper()
	o := &observer{ids: map[string]bool{}, ready: make(chan struct{}), done: make(chan struct{})}
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	go func() {
		defer close(o.done)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			o.err = err
			close(o.ready)
			return
		}
		defer resp.Body.Close()
		close(o.ready)
		rd := sse.NewReader(resp.Body, 0)
		for {
			ev, err := rd.Next()
			if err != nil {
				return // the test's end cancels the request
			}
			if ev.Event != "message" {
				continue
			}
			o.mu.Lock()
			if o.ids[ev.ID] {
				o.dups++
			}
			o.ids[ev.ID] = true
			o.mu.Unlock()
		}
	}()
	return o
}

// TestIndependentObserverAgrees: beside a swarm run with a reconnect
// storm, plain SSE clients subscribe to a few of its channels. Their count
// of distinct events per channel equals what the swarm says each
// channel's successful publishes owed and what it received, and what the
// server's counters say reached the channel.
func TestIndependentObserverAgrees(t *testing.T) {
	tstest.Long(t, "a swarm run with a storm and observers (~4 s)")
	t.Parallel()
	n := startNode(t, server.Config{}, nodeOptions{})
	cfg := quickConfig(t, n.url)
	// One swarm client per channel: each channel's ledger credit is its
	// number of successful publishes.
	cfg.Clients, cfg.Distribution = 12, Distribution{Kind: DistOne}
	cfg.ChannelPrefix = "obs"
	cfg.Rate, cfg.Duration = 120, 3*time.Second
	cfg.Storms = []time.Duration{1500 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := []int{0, 5, 11}
	obs := map[string]*observer{}
	for _, i := range watched {
		ch := fmt.Sprintf("obs_%d", i)
		obs[ch] = observe(ctx, t, n.url+"/sub/"+ch)
		<-obs[ch].ready
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients.StormCuts == 0 {
		t.Fatalf("no storm cut: %+v", res.Clients)
	}
	byScope := res.Ledger.ByScope()
	// The observers have everything once the swarm's drain passed; the
	// server's count of the channel's events proves it.
	st := n.srv.Stats()
	for ch, o := range obs {
		received := int(st.Channels[ch].Received)
		deadline := time.Now().Add(5 * time.Second)
		for {
			o.mu.Lock()
			got := len(o.ids)
			o.mu.Unlock()
			if got >= received || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		o.mu.Lock()
		distinct, dups, oerr := len(o.ids), o.dups, o.err
		o.mu.Unlock()
		c := byScope[ch]
		if oerr != nil || dups != 0 {
			t.Errorf("%s: observer error %v, %d duplicates", ch, oerr, dups)
		}
		if distinct == 0 || int64(distinct) != c.Credit || int64(distinct) != c.Debit-c.Duplicated || distinct != received {
			t.Errorf("%s: observer saw %d distinct events; swarm owed %d and received %d (dup %d); server received %d",
				ch, distinct, c.Credit, c.Debit-c.Duplicated, c.Duplicated, received)
		}
	}
}
