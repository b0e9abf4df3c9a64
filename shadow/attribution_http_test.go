package shadow

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
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
	cfg := scriptedConfig(serve(t, prim), serve(t, cand))
	cfg.Ledger.Settle = time.Second // swept every 250 ms; remembered for a second after
	p, url, _ := startProxy(t, cfg)
	s := subscribe(t, url+"/sub/x?user=7", nil)
	waitLive(t, p, 1)
	time.Sleep(150 * time.Millisecond) // past the start guard (100 ms)

	for i := 1; i <= 12; i++ {
		prim.frames <- postFrame(i)
	}
	// Drops 4, duplicates 5, swaps 6 and 7, holds 10 back past the settle
	// window (1 s; settled by 1.25 s, remembered until 2.25 s at least).
	for _, i := range []int{1, 2, 3, 5, 5, 7, 6, 8, 9, 11, 12} {
		cand.frames <- postFrame(i)
	}
	for range 12 {
		s.next(5 * time.Second)
	}
	time.Sleep(1600 * time.Millisecond)
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

// TestResumeIndependentCandidate: a user resumes with Last-Event-ID, an
// id of the primary's. With identity data the candidate has ids of its
// own, so the mirror does not send it (header or query): the candidate
// streams live, and what the primary replays is at the start edge.
func TestResumeIndependentCandidate(t *testing.T) {
	t.Parallel()
	prim, cand := newScripted(0), newScripted(0)
	cfg := scriptedConfig(serve(t, prim), serve(t, cand))
	cfg.Ledger = LedgerConfig{Settle: time.Second, Late: 300 * time.Millisecond} // the replay lands within 300 ms of the open
	p, url, _ := startProxy(t, cfg)
	s := subscribe(t, url+"/sub/x?user=7&last_event_id=41", map[string]string{"Last-Event-ID": "41"})
	waitLive(t, p, 1)
	for i := 42; i <= 44; i++ { // the replay, after the mirror went live
		prim.frames <- postFrame(i)
	}
	for i := 45; i <= 50; i++ {
		prim.frames <- postFrame(i)
		cand.frames <- postFrame(i)
	}
	for range 9 {
		s.next(5 * time.Second)
	}
	got := withoutDelays(settledTotals(t, p, func(c Counts) bool { return c.Missing == 3 && c.Matched == 6 }))
	want := Counts{Primary: 9, Candidate: 6, Balance: 3, Matched: 6, Missing: 3, EdgeMissing: 3}
	if got != want {
		t.Fatalf("totals\n got %+v\nwant %+v", got, want)
	}
	if st := targetOf(p.Report(), "candidate").Streams; st.Resumed != 1 {
		t.Errorf("streams %+v, want 1 resumed", st)
	}
	reqs := cand.requests()
	if len(reqs) != 1 {
		t.Fatalf("candidate got %d requests", len(reqs))
	}
	if id, q := reqs[0].Get("Last-Event-ID"), reqs[0].Get("Query"); id != "" || q != "user=7" {
		t.Errorf("the candidate was asked to resume: Last-Event-ID %q, query %q", id, q)
	}
	if id, q := prim.requests()[0].Get("Last-Event-ID"), prim.requests()[0].Get("Query"); id != "41" || !strings.Contains(q, "last_event_id=41") {
		t.Errorf("the primary lost the resume point: Last-Event-ID %q, query %q", id, q)
	}
}

// TestResumeAgainstReferenceServers is the same against two independent
// reference servers whose histories hold the same events under ids of
// their own: unexplained stays 0 through a resume.
func TestResumeAgainstReferenceServers(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	cand := newRecorder(t, candidate.url)
	cfg := mirrorConfig(primary.url, cand.url)
	p, url, _ := startProxy(t, cfg)

	first := subscribe(t, url+"/sub/r", userCookie(1))
	waitLive(t, p, 1)
	var lastID string
	for i := range 5 {
		publish(t, url, "r", fmt.Sprint("before ", i))
		lastID = first.next(5 * time.Second).ID
	}
	first.close()
	waitFor(t, 10*time.Second, "mirror to close", func() bool { return p.nstreams.Load() == 0 })
	for i := range 3 { // missed while away
		publish(t, url, "r", fmt.Sprint("missed ", i))
	}
	s := subscribe(t, url+"/sub/r", map[string]string{"Cookie": "uid=u1", "Last-Event-ID": lastID})
	waitLive(t, p, 1)
	for i := range 5 {
		publish(t, url, "r", fmt.Sprint("live ", i))
	}
	for i := range 8 {
		ev := s.next(5 * time.Second)
		if want := map[bool]string{true: "missed ", false: "live "}[i < 3]; !strings.HasPrefix(string(ev.Data), want) {
			t.Fatalf("event %d: %q", i, ev.Data)
		}
	}
	s.close()
	waitFor(t, 10*time.Second, "mirror to close", func() bool { return p.nstreams.Load() == 0 })
	tr := targetOf(p.Report(), "candidate")
	if tot := tr.Totals; tot.UnexplainedMissing != 0 || tot.UnexplainedExtra != 0 || tot.Matched != 10 || tr.Streams.Resumed != 1 {
		t.Fatalf("%+v %+v", tr.Streams, tot)
	}
	for _, h := range cand.requests() {
		if h.Get("Last-Event-ID") != "" {
			t.Errorf("the candidate got Last-Event-ID %q", h.Get("Last-Event-ID"))
		}
	}
}

// recorder is a reverse proxy in front of a server that records the
// requests' headers.
type recorder struct {
	url  string
	mu   sync.Mutex
	seen []http.Header
}

func newRecorder(t *testing.T, target string) *recorder {
	rec := &recorder{}
	rp := httputil.NewSingleHostReverseProxy(mustURL(t, target))
	rec.url = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/sub/") {
			rec.mu.Lock()
			rec.seen = append(rec.seen, r.Header.Clone())
			rec.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	return rec
}

func (r *recorder) requests() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.seen...)
}

// TestMirrorRequestResumePoint: the resume point goes to the target only
// when both sides share ids (identity id).
func TestMirrorRequestResumePoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		identity  string
		query     string
		wantQuery string
		wantID    string
	}{
		{IdentityData, "a=1&last_event_id=7-0&b=2", "a=1&b=2", ""},
		{IdentityData, "last_event_id=7-0", "", ""},
		{IdentityData, "a=%41&b", "a=%41&b", ""},
		{IdentityID, "a=1&last_event_id=7-0", "a=1&last_event_id=7-0", "9-1"},
	} {
		in := httptest.NewRequest("GET", "http://proxy/sub/x?"+tc.query, nil)
		in.Header.Set("Last-Event-ID", "9-1")
		cfg := Config{Mirror: MirrorConfig{Identity: tc.identity}}.withDefaults()
		d := &decision{st: &state{cfg: cfg}, rt: &route{Route: Route{Path: "/sub/"}}, in: in}
		req, err := newMirrorRequest(context.Background(), d, &target{name: "candidate", url: mustURL(t, "http://cand")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if req.URL.RawQuery != tc.wantQuery || req.Header.Get("Last-Event-ID") != tc.wantID {
			t.Errorf("%s %q: query %q, Last-Event-ID %q; want %q, %q", tc.identity, tc.query, req.URL.RawQuery, req.Header.Get("Last-Event-ID"), tc.wantQuery, tc.wantID)
		}
	}
}

// TestLedgerUnmirroredPublishes: the candidate's publish endpoint is slow,
// its mirror lane fills and the proxy drops the mirrored publishes: the
// events the candidate was never sent are missing, and explained as
// unmirrored, not blamed on the candidate.
func TestLedgerUnmirroredPublishes(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	rp := httputil.NewSingleHostReverseProxy(mustURL(t, candidate.url))
	slow := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			time.Sleep(300 * time.Millisecond)
		}
		rp.ServeHTTP(w, r)
	}))
	cfg := mirrorConfig(primary.url, slow)
	cfg.Mirror.MaxInflight = laneCount // one queued request per lane
	cfg.Ledger = LedgerConfig{Settle: 2 * time.Second, Late: time.Second}
	p, url, _ := startProxy(t, cfg)
	s := subscribe(t, url+"/sub/busy", userCookie(1))
	waitLive(t, p, 1)
	time.Sleep(300 * time.Millisecond) // past the start guard
	for i := range 6 {                 // a few in flight, one queued, the rest dropped
		publish(t, url, "busy", fmt.Sprint("event ", i))
	}
	for range 6 {
		s.next(5 * time.Second)
	}
	got := settledTotals(t, p, func(c Counts) bool { return c.Missing+c.Matched == 6 })
	tr := targetOf(p.Report(), "candidate")
	if got.Missing == 0 || got.Unmirrored != got.Missing || got.UnexplainedMissing != 0 || tr.UnmirroredPublishes != got.Missing {
		t.Fatalf("unmirrored publishes %d, totals %+v: want every missing event explained by an unmirrored publish, and some", tr.UnmirroredPublishes, got)
	}
	want := fmt.Sprintf(`darktime_shadow_mirror_skipped_total{reason="inflight_full",target="candidate"} %d`, got.Missing)
	if m := metricsText(t, p); !strings.Contains(m, want) {
		t.Errorf("want %s in the metrics:\n%s", want, m)
	}
}
