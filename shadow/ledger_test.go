package shadow

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeSSE serves /sub/x as an event stream whose events the test writes.
type fakeSSE struct{ frames chan string }

func (f *fakeSSE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case frame, ok := <-f.frames:
			if !ok {
				return
			}
			_, _ = w.Write([]byte(frame))
			w.(http.Flusher).Flush()
		}
	}
}

// TestLedgerFindsDropsDuplicatesDelaysAndReorders drives a primary and a
// candidate that drops, duplicates, delays, reorders and invents events.
func TestLedgerFindsDropsDuplicatesDelaysAndReorders(t *testing.T) {
	t.Parallel()
	prim, cand := &fakeSSE{make(chan string, 100)}, &fakeSSE{make(chan string, 100)}
	cfg := Config{
		Primary: serve(t, prim), Candidate: serve(t, cand), Mode: ModeMirror, Percent: 100,
		Key:    KeyConfig{From: KeyQuery, Name: "user"},
		Routes: []Route{{Path: "/sub/"}},
		Ledger: LedgerConfig{Settle: 400 * time.Millisecond, Late: 100 * time.Millisecond},
	}
	p, url, admin := startProxy(t, cfg)
	s := subscribe(t, url+"/sub/x?user=7", nil)
	waitFor(t, 5*time.Second, "mirror", func() bool { return targetOf(p.Report(), "candidate").Streams.Active == 1 })
	time.Sleep(50 * time.Millisecond) // let the mirror go live

	frame := func(i int) string { return fmt.Sprintf("id: %d\nevent: post\ndata: event %d\n\n", i, i) }
	// The primary sends 1..10 plus a control event the ledger ignores.
	for i := 1; i <= 10; i++ {
		prim.frames <- frame(i)
	}
	prim.frames <- "event: darktime.reconnect\ndata: {}\n\n"
	// The candidate: drops 3, duplicates 5, swaps 8 and 9, delays 10,
	// invents 99, and sends its own control event.
	for _, i := range []int{1, 2, 4, 5, 5, 6, 7, 9, 8, 99} {
		cand.frames <- frame(i)
	}
	cand.frames <- "event: darktime.missed\ndata: {}\n\n"
	time.Sleep(250 * time.Millisecond)
	cand.frames <- frame(10)
	for range 10 {
		s.next(5 * time.Second)
	}
	waitFor(t, 5*time.Second, "settled", func() bool {
		tot := targetOf(p.Report(), "candidate").Totals
		return tot.PendingPrimary == 0 && tot.PendingCandidate == 0 && tot.Candidate == 11
	})
	tr := targetOf(getReport(t, admin), "candidate")
	want := Counts{Primary: 10, Candidate: 11, Balance: -1, Matched: 9, Missing: 1, Extra: 1, Duplicated: 1, Late: 1, Reordered: 1,
		UnexplainedMissing: 1, UnexplainedExtra: 1}
	got := tr.Totals
	got.DelayMeanMS, got.DelayMaxMS = 0, 0
	if got != want {
		t.Fatalf("totals\n got %+v\nwant %+v", got, want)
	}
	if tr.Totals.DelayMaxMS < 200 {
		t.Errorf("delay max %vms, want about 250", tr.Totals.DelayMaxMS)
	}
	if c := tr.Channels["x"]; c.Missing != 1 || c.Extra != 1 {
		t.Errorf("channel x %+v", c)
	}
	if b := tr.Buckets[fmt.Sprint(Bucket("", "7"))]; b.Missing != 1 || b.Matched != 9 {
		t.Errorf("bucket of user 7 %+v (buckets %v)", b, tr.Buckets)
	}
	if len(tr.Buckets) != 1 {
		t.Errorf("buckets %v", tr.Buckets)
	}
	if !strings.Contains(metricsText(t, p), `darktime_shadow_ledger_events_total{account="missing",target="candidate"} 1`) {
		t.Error("ledger metrics missing")
	}
}

// TestReconcilerFakeClock checks the accounts step by step.
func TestReconcilerFakeClock(t *testing.T) {
	t.Parallel()
	ms := func(n int) int64 { return int64(n) * int64(time.Millisecond) }
	r := newReconciler(time.Second, 100*time.Millisecond, 100*time.Millisecond, 10)
	r.candidate(1, ms(0)) // the candidate first: matched when the primary comes
	r.primary(1, ms(5))
	r.primary(2, ms(10))
	r.candidate(2, ms(300))                     // late
	r.candidate(2, ms(310))                     // duplicate
	r.primary(3, ms(20))                        // never on the candidate
	r.candidate(4, ms(30))                      // never on the primary
	r.settleUntil(ms(500) - int64(time.Second)) // nothing is a second old yet
	if got, _ := r.take(); got.Missing != 0 || got.Matched != 2 || got.Late != 1 || got.Duplicated != 0 {
		t.Fatalf("before settling: %+v", got)
	}
	r.settleUntil(ms(1100) - int64(time.Second))
	got, _ := r.take()
	if got.Missing != 1 || got.Extra != 1 || got.Duplicated != 1 || got.Primary != 0 {
		t.Fatalf("after settling: %+v", got)
	}
	if r.owed() || len(r.events) != 0 {
		t.Fatalf("entries left: %v", r.events)
	}
	for i := range 11 {
		r.primary(uint64(100+i), ms(2000))
	}
	if _, overflow := r.take(); !overflow {
		t.Fatal("no overflow past MaxPending")
	}
}
