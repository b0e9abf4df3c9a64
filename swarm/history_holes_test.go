package swarm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// batchingServer is an SSE server that, as an overloaded one does, takes
// publishes in batches: every window it numbers what arrived in reverse
// order (so publishes in flight together are delivered out of their seq
// order), delivers the batch, and only then answers it. It keeps the
// newest keep events per channel; a resume from an id it no longer has
// gets a darktime.missed notice and what it kept — whose seqs have holes
// where the trim cut a batch. dropAfter, when set, silently drops the
// first live event of the first resumed stream that long after it began
// (long past any publish in flight with what history replayed).
type batchingServer struct {
	keep      int
	dropAfter time.Duration

	mu      sync.Mutex
	n       int // last id
	pending []*pendingPub
	hist    map[string][]histEvent
	trimmed map[string]histEvent // per channel, the newest event trimmed
	subs    map[string][]*batchSub
	cutMid  int // resumes whose kept history began inside a batch
	dropped int
	armed   bool // the next resumed stream drops one event
}

type pendingPub struct {
	ch, body string
	done     chan struct{}
}

type histEvent struct {
	id    int
	batch int
	wire  []byte
}

type batchSub struct {
	c      chan []byte
	dropAt time.Time // drop the first live event from then on (zero: none)
}

func newBatchingServer(keep int, dropAfter time.Duration) *batchingServer {
	s := &batchingServer{keep: keep, dropAfter: dropAfter, hist: map[string][]histEvent{}, trimmed: map[string]histEvent{}, subs: map[string][]*batchSub{}, armed: dropAfter > 0}
	return s
}

// run numbers and delivers a batch every window until ctx ends.
func (s *batchingServer) run(ctx context.Context, window time.Duration) {
	tick := time.NewTicker(window)
	defer tick.Stop()
	for batch := 0; ; batch++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		p := s.pending
		s.pending = nil
		slices.Reverse(p)
		for _, pub := range p {
			s.n++
			wire := []byte(fmt.Sprintf("id: %d\ndata: %s\n\n", s.n, pub.body))
			h := append(s.hist[pub.ch], histEvent{id: s.n, batch: batch, wire: wire})
			if len(h) > s.keep {
				s.trimmed[pub.ch] = h[len(h)-s.keep-1]
				h = h[len(h)-s.keep:]
			}
			s.hist[pub.ch] = h
			for _, sub := range s.subs[pub.ch] {
				if !sub.dropAt.IsZero() && time.Now().After(sub.dropAt) {
					sub.dropAt = time.Time{}
					s.dropped++
					continue
				}
				select {
				case sub.c <- wire:
				default: // a subscriber this far behind is gone
				}
			}
		}
		s.mu.Unlock()
		for _, pub := range p {
			close(pub.done)
		}
	}
}

func (s *batchingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/pub":
		body, _ := io.ReadAll(r.Body)
		pub := &pendingPub{ch: r.URL.Query().Get("id"), body: string(body), done: make(chan struct{})}
		s.mu.Lock()
		s.pending = append(s.pending, pub)
		s.mu.Unlock()
		select {
		case <-pub.done:
			w.WriteHeader(http.StatusCreated)
		case <-r.Context().Done():
		}
	case len(r.URL.Path) > 5 && r.URL.Path[:5] == "/sub/":
		ch := r.URL.Path[5:]
		sub := &batchSub{c: make(chan []byte, 1<<14)}
		s.mu.Lock()
		out := []byte("retry: 200\n\n")
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			after, _ := strconv.Atoi(v)
			h := s.hist[ch]
			if tr, ok := s.trimmed[ch]; ok && after < tr.id {
				out = fmt.Appendf(out, "event: darktime.missed\ndata: {\"channel\":%q,\"last_event_id\":%q,\"reason\":\"history_trimmed\"}\n\n", ch, v)
				if len(h) > 0 && h[0].batch == tr.batch {
					s.cutMid++
				}
			}
			for _, e := range h {
				if e.id > after {
					out = append(out, e.wire...)
				}
			}
			if s.armed {
				s.armed = false
				sub.dropAt = time.Now().Add(s.dropAfter)
			}
		}
		s.subs[ch] = append(s.subs[ch], sub)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.subs[ch] = slices.DeleteFunc(s.subs[ch], func(x *batchSub) bool { return x == sub })
			s.mu.Unlock()
		}()
		serveEvents(w, r, out, sub.c)
	default:
		http.NotFound(w, r)
	}
}

// TestHolesInHistoryAfterANotice: after a darktime.missed notice, the
// history a server replays may lack seqs that were published together
// with the kept ones (a batch the trim cut in two): those were announced,
// not silently lost. A live event the server drops later on the same
// stream still counts as a silent gap.
func TestHolesInHistoryAfterANotice(t *testing.T) {
	tstest.Long(t, "two swarm runs (~4 s each)")
	t.Parallel()
	for _, dropAfter := range []time.Duration{0, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("drop=%v", dropAfter), func(t *testing.T) {
			t.Parallel()
			srv := newBatchingServer(7, dropAfter)
			ctx, cancel := context.WithCancel(context.Background())
			go srv.run(ctx, 30*time.Millisecond)
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			t.Cleanup(ts.CloseClientConnections)
			t.Cleanup(cancel)
			cfg := quickConfig(t, ts.URL)
			cfg.Clients, cfg.Channels, cfg.Rate, cfg.Duration = 20, 2, 400, 3*time.Second
			cfg.Storms = []time.Duration{time.Second, 2 * time.Second}
			cfg.DefaultRetry = 300 * time.Millisecond
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			cutMid, dropped := srv.cutMid, srv.dropped
			srv.mu.Unlock()
			a := res.Attribution
			tot := res.Ledger.Totals()
			t.Logf("resumes cut inside a batch: %d; dropped live: %d; lost by cause %v; resumes %+v", cutMid, dropped, a.Lost, a.Resumes)
			if cutMid == 0 || res.Events.Notices == 0 || a.Lost["announced"] == 0 {
				t.Fatalf("the run proves nothing: %d resumes began inside a batch, %d notices, %d announced", cutMid, res.Events.Notices, a.Lost["announced"])
			}
			if a.Lost["silent_gap"] != int64(dropped) || tot.Lost != a.Lost["announced"]+int64(dropped) {
				t.Errorf("silent gaps %d (want the %d the server dropped live), lost %d by cause %v: the holes in the replayed history were announced",
					a.Lost["silent_gap"], dropped, tot.Lost, a.Lost)
			}
			if dropAfter > 0 && dropped != 1 {
				t.Errorf("the server dropped %d live events, want 1", dropped)
			}
			if a.Residual != 0 || tot.Duplicated != 0 {
				t.Errorf("residual %d duplicated %d", a.Residual, tot.Duplicated)
			}
		})
	}
}
