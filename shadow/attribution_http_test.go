package shadow

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedSSE serves an event stream whose frames the test writes, after
// an optional delay before the response headers; it records the
// Last-Event-ID and query of every request.
type scriptedSSE struct {
	delay  time.Duration
	frames chan string
	mu     sync.Mutex
	seen   []http.Header // request headers, plus the raw query as "Query"
}

func newScripted(delay time.Duration) *scriptedSSE {
	return &scriptedSSE{delay: delay, frames: make(chan string, 100)}
}

func (f *scriptedSSE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("Query", r.URL.RawQuery)
	f.mu.Lock()
	f.seen = append(f.seen, h)
	f.mu.Unlock()
	select {
	case <-time.After(f.delay):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case frame := <-f.frames:
			_, _ = w.Write([]byte(frame))
			w.(http.Flusher).Flush()
		}
	}
}

func (f *scriptedSSE) requests() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]http.Header(nil), f.seen...)
}

func postFrame(i int) string { return fmt.Sprintf("id: %d\nevent: post\ndata: event %d\n\n", i, i) }

// waitLive waits until n mirror legs are live (their target answered),
// then a moment more, so that what the test sends next is counted.
func waitLive(t *testing.T, p *Proxy, n int) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("%d live mirrors", n), func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		live := 0
		for s := range p.streams {
			for _, l := range s.legs {
				if l.live.Load() {
					live++
				}
			}
		}
		return live == n
	})
}

func scriptedConfig(primary, candidate string) Config {
	return Config{
		Primary: primary, Candidate: candidate, Mode: ModeMirror, Percent: 100,
		Key:    KeyConfig{From: KeyQuery, Name: "user"},
		Routes: []Route{{Path: "/sub/"}},
		Ledger: LedgerConfig{Settle: 400 * time.Millisecond, Late: 100 * time.Millisecond},
	}
}

// settledTotals waits until nothing is pending and cond holds.
func settledTotals(t *testing.T, p *Proxy, cond func(Counts) bool) Counts {
	t.Helper()
	var tot Counts
	waitFor(t, 10*time.Second, "the ledger to settle", func() bool {
		tot = targetOf(p.Report(), "candidate").Totals
		return tot.PendingPrimary == 0 && tot.PendingCandidate == 0 && cond(tot)
	})
	return tot
}

func withoutDelays(c Counts) Counts {
	c.DelayMeanMS, c.DelayMaxMS = 0, 0
	return c
}

// TestLedgerSensitivity: a faulty candidate that drops an event in the
// middle of a stream, duplicates one, delivers one after the settle
// window and swaps two shows exactly that — one unexplained missing, one
// duplicated, one late_settled pair, one reordered — and nothing is
// absorbed into the edges.
func TestLedgerSensitivity(t *testing.T) {
	t.Parallel()
	prim, cand := newScripted(0), newScripted(0)
	p, url, _ := startProxy(t, scriptedConfig(serve(t, prim), serve(t, cand)))
	s := subscribe(t, url+"/sub/x?user=7", nil)
	waitLive(t, p, 1)
	time.Sleep(150 * time.Millisecond) // past the start guard (100 ms)

	for i := 1; i <= 12; i++ {
		prim.frames <- postFrame(i)
	}
	// Drops 4, duplicates 5, swaps 6 and 7, holds 10 back past the settle
	// window (400 ms).
	for _, i := range []int{1, 2, 3, 5, 5, 7, 6, 8, 9, 11, 12} {
		cand.frames <- postFrame(i)
	}
	for range 12 {
		s.next(5 * time.Second)
	}
	time.Sleep(650 * time.Millisecond)
	cand.frames <- postFrame(10)
	got := withoutDelays(settledTotals(t, p, func(c Counts) bool { return c.Candidate == 12 && c.Extra == 1 }))
	want := Counts{Primary: 12, Candidate: 12, Balance: 0, Matched: 10, Missing: 2, Extra: 1, Duplicated: 1, Reordered: 1,
		LateSettled: 1, UnexplainedMissing: 1}
	if got != want {
		t.Fatalf("totals\n got %+v\nwant %+v", got, want)
	}
	if m := metricsText(t, p); !strings.Contains(m, `darktime_shadow_ledger_events_total{account="late_settled",target="candidate"} 1`) {
		t.Errorf("no late_settled metric:\n%s", m)
	}
}

// TestLedgerDropAfterLateOpen: the candidate answers 600 ms after the
// primary and drops the first event published once it is open (after the
// start guard): a plain loss, not an edge.
func TestLedgerDropAfterLateOpen(t *testing.T) {
	t.Parallel()
	prim, cand := newScripted(0), newScripted(600*time.Millisecond)
	p, url, _ := startProxy(t, scriptedConfig(serve(t, prim), serve(t, cand)))
	s := subscribe(t, url+"/sub/x?user=7", nil)
	prim.frames <- postFrame(0) // before the candidate is open: not counted
	s.next(5 * time.Second)
	waitLive(t, p, 1)
	time.Sleep(200 * time.Millisecond)
	for i := 1; i <= 5; i++ {
		prim.frames <- postFrame(i)
	}
	for i := 2; i <= 5; i++ {
		cand.frames <- postFrame(i)
	}
	got := withoutDelays(settledTotals(t, p, func(c Counts) bool { return c.Missing == 1 }))
	want := Counts{Primary: 5, Candidate: 4, Balance: 1, Matched: 4, Missing: 1, UnexplainedMissing: 1}
	if got != want {
		t.Fatalf("totals\n got %+v\nwant %+v", got, want)
	}
}

// TestLedgerEdgesUnderChurn: users connect and leave while events are
// published, on independent primary and candidate servers: differences
// appear at the stream edges, and every one of them is explained.
func TestLedgerEdgesUnderChurn(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	cfg := mirrorConfig(primary.url, candidate.url)
	cfg.Ledger = LedgerConfig{Settle: 2 * time.Second, Late: 250 * time.Millisecond}
	p, url, _ := startProxy(t, cfg)

	rng := rand.New(rand.NewPCG(1, 2))
	const users = 8
	open := make([]*stream, users)
	var sessions int
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		publish(t, url, fmt.Sprint("churn", i%2), fmt.Sprintf("event %d", i))
		if u := rng.IntN(users * 4); u < users { // about one join or leave per 4 publishes
			if open[u] == nil {
				open[u] = subscribe(t, url+fmt.Sprintf("/sub/churn%d", u%2), userCookie(u))
				sessions++
			} else {
				open[u].close()
				open[u] = nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, s := range open {
		if s != nil {
			s.close()
		}
	}
	waitFor(t, 10*time.Second, "mirrors to close", func() bool { return p.nstreams.Load() == 0 })
	tr := targetOf(p.Report(), "candidate")
	tot := tr.Totals
	t.Logf("%d sessions: %+v", sessions, tot)
	if tot.Matched == 0 || tot.EdgeMissing+tot.EdgeExtra == 0 {
		t.Fatalf("the test saw no edges: %+v", tot)
	}
	if tot.UnexplainedMissing != 0 || tot.UnexplainedExtra != 0 || tot.Duplicated != 0 || tot.Reordered != 0 ||
		tot.Missing != tot.EdgeMissing || tot.Extra != tot.EdgeExtra {
		t.Fatalf("unexplained differences: %+v", tot)
	}
	for scope, c := range tr.Buckets {
		if c.UnexplainedMissing != 0 || c.UnexplainedExtra != 0 {
			t.Errorf("bucket %s: %+v", scope, c)
		}
	}
}
