package swarm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// faultyServer is an SSE server that loses, duplicates and reorders
// events on purpose, and counts the copies it mistreated.
type faultyServer struct {
	mu       sync.Mutex
	subs     map[string][]chan []byte
	n        map[string]int // publishes per channel
	held     map[string][]byte
	high     map[string]int64 // per channel: the highest seq sent
	lost     int64            // copies never sent
	dup      int64            // extra copies sent
	reorders int64            // copies sent after their successor
}

func (s *faultyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/sub/"):
		ch := strings.TrimPrefix(r.URL.Path, "/sub/")
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		c := make(chan []byte, 1024)
		s.mu.Lock()
		s.subs[ch] = append(s.subs[ch], c)
		s.mu.Unlock()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-c:
				fmt.Fprintf(w, "data: %s\n\n", ev)
				w.(http.Flusher).Flush()
			}
		}
	case r.URL.Path == "/pub":
		ch := r.URL.Query().Get("id")
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		subs := int64(len(s.subs[ch]))
		// send counts a copy sent after a later event of its channel as
		// reordered: the held ones (the test publishes one at a time, so
		// no publish overtakes another on its own).
		send := func(ev []byte) {
			if seq, ok := seqOf(ev); ok {
				if seq < s.high[ch] {
					s.reorders += subs
				}
				s.high[ch] = max(s.high[ch], seq)
			}
			for _, c := range s.subs[ch] {
				c <- ev
			}
		}
		n := s.n[ch]
		s.n[ch]++
		switch {
		case n%5 == 4:
			s.lost += subs
		case n%7 == 3:
			send(body)
			send(body)
			s.dup += subs
		case n%11 == 5 && s.held[ch] == nil:
			s.held[ch] = body
			w.WriteHeader(http.StatusCreated)
			return
		default:
			send(body)
		}
		if h := s.held[ch]; h != nil && n%11 != 5 {
			send(h)
			delete(s.held, ch)
		}
		w.WriteHeader(http.StatusCreated)
	default:
		http.NotFound(w, r)
	}
}

func TestRunDetectsLossDuplicatesReordering(t *testing.T) {
	t.Parallel()
	fs := &faultyServer{subs: map[string][]chan []byte{}, n: map[string]int{}, held: map[string][]byte{}, high: map[string]int64{}}
	ts := httptest.NewServer(fs)
	t.Cleanup(ts.CloseClientConnections)
	t.Cleanup(ts.Close)
	cfg := quickConfig(t, ts.URL)
	cfg.Profile, _ = LookupProfile("nchan")
	cfg.Clients, cfg.Channels = 12, 3
	// One publish at a time: each held event's publish was answered before
	// the next was sent, so its late delivery is a reordering for sure
	// (publishes in flight together have no order to break).
	cfg.Publishers = 1
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	for ch, h := range fs.held {
		if h != nil {
			fs.lost += int64(len(fs.subs[ch]))
		}
	}
	lost, dup, reorders := fs.lost, fs.dup, fs.reorders
	fs.mu.Unlock()
	tot := res.Ledger.Totals()
	if tot.Lost != lost || tot.Duplicated != dup || tot.Reordered != reorders {
		t.Errorf("ledger lost %d duplicated %d reordered %d; server mistreated lost %d duplicated %d reordered %d",
			tot.Lost, tot.Duplicated, tot.Reordered, lost, dup, reorders)
	}
	if lost == 0 || dup == 0 || reorders == 0 {
		t.Errorf("the faulty server did not misbehave enough: lost %d dup %d reorders %d", lost, dup, reorders)
	}
	// Every loss is a silent one: no notice, no reconnect explains it (one
	// held at the very end counts as the tail of its sessions).
	if a := res.Attribution; a.Lost["silent_gap"]+a.Lost["tail"] != lost || a.LostTotal() != lost || a.Residual != 0 {
		t.Errorf("attribution %+v: want all %d losses silent (gaps or tail), residual 0", a, lost)
	}
	if tot.Balance() != lost-dup {
		t.Errorf("balance %d, want lost - duplicated = %d", tot.Balance(), lost-dup)
	}
	// Every loss is placed on its channel and second.
	var placed int64
	for _, e := range res.Ledger.Unbalanced() {
		placed += e.Lost
		if e.Window == 0 || !strings.HasPrefix(e.Scope, cfg.ChannelPrefix) && cfg.ChannelPrefix != "" {
			t.Errorf("unplaced account %+v", e)
		}
	}
	if placed != lost {
		t.Errorf("losses placed in accounts: %d, want %d", placed, lost)
	}
}

// seqOf finds the seq in a published body ({"seq":N,...}).
func seqOf(body []byte) (int64, bool) {
	_, rest, ok := strings.Cut(string(body), `"seq":`)
	if !ok {
		return 0, false
	}
	end := strings.IndexAny(rest, ",}")
	if end < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:end], 10, 64)
	return n, err == nil
}
