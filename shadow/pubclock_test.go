package shadow

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/shadow/ledgerfile"
)

// clockScanned is one event as the proxy's scanner identifies it.
type clockScanned struct {
	typ string
	id  uint64
}

// scanStream subscribes to url and sends every event the scanner sees on
// the raw bytes, control events (darktime.*) left out.
func scanStream(t *testing.T, url string) <-chan clockScanned {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe %s: status %d", url, resp.StatusCode)
	}
	out := make(chan clockScanned, 100)
	sc := newScanner(false, func(typ []byte, id uint64) {
		if !strings.HasPrefix(string(typ), "darktime.") {
			out <- clockScanned{string(typ), id}
		}
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			_, _ = sc.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return out
}

// TestPublishIdentityMatchesServer: the identity the publish clock gives
// a single-event publish is the one the scanner computes for the event a
// real reference server makes of it — its type from ?event=, else
// X-EventSource-Event, else "message" (the server writes
// "event: message"; the decoder gives "message" for no event line too),
// its data the body with CRLF and CR as LF, a trailing line break kept.
func TestPublishIdentityMatchesServer(t *testing.T) {
	ref := startRef(t)
	events := scanStream(t, ref.url+"/sub/idc")
	cases := []struct {
		name, query, header, body string
	}{
		{"plain", "", "", `{"seq":1,"ts":17}`},
		{"LF", "", "", "line one\nline two"},
		{"CRLF", "", "", "line one\r\nline two"},
		{"CR", "", "", "line one\rline two"},
		{"trailing LF", "", "", "ends\n"},
		{"trailing CRLF", "", "", "ends\r\n"},
		{"blank lines", "", "", "a\n\nb\r\n\r\nc"},
		{"leading space", "", "", "  spaced"},
		{"looks like a field", "", "", "data: x\nevent: y\nid: 3"},
		{"unicode", "", "", "héllo — ✓"},
		{"empty", "", "", ""},
		{"event query", "&event=custom", "", "typed"},
		{"event header", "", "hdr.type", "typed"},
		{"query over header", "&event=q.type", "hdr.type", "typed"},
		{"escaped query", "&event=a%2Eb", "", "typed"},
		{"explicit message", "&event=message", "", "plain"},
	}
	for _, c := range cases {
		q := "id=idc" + c.query
		req, err := http.NewRequest(http.MethodPost, ref.url+"/pub?"+q, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		if c.header != "" {
			req.Header.Set("X-EventSource-Event", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: publish status %d", c.name, resp.StatusCode)
		}
		var got clockScanned
		select {
		case got = <-events:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event", c.name)
		}
		if want := publishIdentity(q, req.Header, []byte(c.body)); got.id != want {
			t.Errorf("%s: the scanner's identity %x (type %q), the publish clock's %x", c.name, got.id, got.typ, want)
		}
	}
}

func TestClockedPublish(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		identity, method, ct string
		want                 bool
	}{
		{IdentityData, "POST", "text/plain", true},
		{IdentityData, "POST", "", true},
		{IdentityData, "PUT", "text/plain", true},
		{IdentityData, "POST", "application/json", false},
		{IdentityData, "POST", "Application/JSON; charset=utf-8", false},
		{IdentityData, "DELETE", "text/plain", false},
		{IdentityID, "POST", "text/plain", false},
	} {
		r, _ := http.NewRequest(c.method, "http://x/pub?id=a", nil)
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		if got := clockedPublish(c.identity, r); got != c.want {
			t.Errorf("%s %s %q: %v, want %v", c.identity, c.method, c.ct, got, c.want)
		}
	}
}

// TestPublishClockBounds: a send of an identity sent again in the window
// has no time (which one made the event is unknown), a full world counts
// and keeps nothing more, and a pruned world is empty.
func TestPublishClockBounds(t *testing.T) {
	t.Parallel()
	full := 0
	c := publishClock{full: func() { full++ }}
	c.sent(cohortCandidate, 1, 100)
	if at, ok := c.sendTime(cohortCandidate, 1); !ok || at != 100 {
		t.Fatalf("send time %d %v", at, ok)
	}
	if _, ok := c.sendTime(cohortPrimary, 1); ok {
		t.Fatal("the primary has the candidate's send")
	}
	c.sent(cohortCandidate, 1, 200)
	if _, ok := c.sendTime(cohortCandidate, 1); ok {
		t.Fatal("an identity sent twice has a send time")
	}
	for i := range maxSends + 10 {
		c.sent(cohortPrimary, uint64(i+10), 300)
	}
	if full != 10 { // the 10 past the bound
		t.Errorf("%d sends counted as full, want 10", full)
	}
	c.prune(300+1000, 1000)
	if n := len(c.worlds[cohortPrimary].at); n != maxSends {
		t.Errorf("%d sends left within the window, want %d", n, maxSends)
	}
	c.prune(300+1001, 1000)
	for w := range c.worlds {
		if n, o := len(c.worlds[w].at), len(c.worlds[w].order); n != 0 || o != 0 {
			t.Errorf("world %d: %d sends, %d in order after the window", w, n, o)
		}
	}
}

// slowAnswers delays a server's answers to publishes (after it has
// published): the primary's order makes the candidate's lane hold each
// publish until the answer to the one before came, up to orderWait.
func slowAnswers(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Method == http.MethodPost {
			time.Sleep(d)
		}
	})
}

// TestDelaysFromSend: publishes relayed by the proxy's mirror to real
// servers (separate brokers, as darktime run's shadow setups have them)
// give every cohort its delays from the proxy's send to its own world. A
// candidate whose publish answers are slow makes its lane hold each
// publish (the order hold, ≤ 20 ms): by the first reference sighting it
// looks that much slower, by its send it does not.
func TestDelaysFromSend(t *testing.T) {
	prim, cand, base := startRef(t), startRef(t), startRef(t)
	candURL := serve(t, slowAnswers(cand.srv.Handler(), 15*time.Millisecond))
	cfg := Config{
		Primary: prim.url, Candidate: candURL, Baseline: base.url, Mode: ModeMirror, Percent: 100,
		Key: KeyConfig{From: KeyQuery, Name: "user", Salt: "clock"},
		Routes: []Route{
			{Path: "/sub/"},
			{Path: "/pub", MirrorUnsafe: true},
		},
		// A settle window long enough that a loaded machine (make check runs
		// packages in parallel) delivers within it: sends older are forgotten,
		// and an event seen after that has no delay from its send.
		Ledger: LedgerConfig{Settle: 3 * time.Second, Late: 200 * time.Millisecond, Edge: 100 * time.Millisecond},
	}
	p, purl, admin := startProxy(t, cfg)
	const users, events = 4, 200
	var streams []*stream
	for u := range users {
		streams = append(streams, subscribe(t, fmt.Sprintf("%s/sub/ch?user=%d", purl, u), nil))
	}
	waitFor(t, 5*time.Second, "mirrored streams open", func() bool { return p.nstreams.Load() == 2*users })
	for i := range events {
		publishTo(t, purl, "ch", fmt.Sprintf("event %d\r\nline 2", i))
	}
	for _, s := range streams {
		for range events {
			s.next(10 * time.Second)
		}
	}
	var c ledgerfile.Cohorts
	waitFor(t, 10*time.Second, "every cohort's delays", func() bool {
		c = cohortsOf(t, admin, "")
		return c.Baseline != nil && c.Candidate.DelayFromSend == users*events && c.Baseline.DelayFromSend == users*events
	})
	if c.DelayRule != ledgerfile.DelayFromSend {
		t.Fatalf("delay rule %q, want %q", c.DelayRule, ledgerfile.DelayFromSend)
	}
	for name, s := range map[string]ledgerfile.CohortStats{"primary": c.Primary, "candidate": c.Candidate, "baseline": *c.Baseline} {
		if s.DelayFromSend != users*events || s.DelaySamples != s.DelayFromSend {
			t.Errorf("%s: %d delays from the send, %d samples, want %d", name, s.DelayFromSend, s.DelaySamples, users*events)
		}
	}
	// The same candidate by the first sighting: the lane's hold is in it.
	acc := p.epoch.Load().cohort(cohortCandidate)
	acc.mu.Lock()
	bySighting := median(slices.Clone(acc.delay.s))
	acc.mu.Unlock()
	fromSend, primary := median(c.Candidate.DelayMS), median(c.Primary.DelayMS)
	t.Logf("median delays: primary %.2f ms from its send, candidate %.2f ms from its send, %.2f ms from the first sighting", primary, fromSend, bySighting)
	if bySighting < 8 {
		t.Errorf("the candidate's median by the sighting %.2f ms: the lane did not hold the publishes (the test shows nothing)", bySighting)
	}
	if fromSend > primary+5 || fromSend > bySighting/2 {
		t.Errorf("the candidate's median from its send %.2f ms (primary %.2f, by sighting %.2f): the mirror's lag is in it", fromSend, primary, bySighting)
	}
}

// publishTo publishes data to channel through base, as a publisher that
// waits for each answer.
func publishTo(t *testing.T, base, channel, data string) {
	t.Helper()
	resp, err := http.Post(base+"/pub?id="+url.QueryEscape(channel), "text/plain", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: status %d", resp.StatusCode)
	}
}

// TestDelayRule: one rule for every cohort the document shows — from the
// send only when every cohort with delays has some from its send, so a
// primary timed from its send is never set against a candidate timed
// from the sighting; a cohort without delays (a baseline with no streams)
// decides nothing.
func TestDelayRule(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name           string
		send, sighting [3]int // per cohort: primary, candidate, baseline
		withBase       bool
		want           string
	}{
		{"nothing yet", [3]int{}, [3]int{}, false, ledgerfile.DelayFromSighting},
		{"no publish through the proxy", [3]int{}, [3]int{50, 40, 0}, false, ledgerfile.DelayFromSighting},
		{"every cohort timed", [3]int{50, 40, 0}, [3]int{50, 40, 0}, false, ledgerfile.DelayFromSend},
		{"some of each cohort timed", [3]int{5, 4, 0}, [3]int{50, 40, 0}, false, ledgerfile.DelayFromSend},
		{"the primary timed, the candidate not", [3]int{50, 0, 0}, [3]int{50, 40, 0}, false, ledgerfile.DelayFromSighting},
		{"the candidate timed, the primary not", [3]int{0, 40, 0}, [3]int{50, 40, 0}, false, ledgerfile.DelayFromSighting},
		{"a baseline not timed", [3]int{50, 40, 0}, [3]int{50, 40, 30}, true, ledgerfile.DelayFromSighting},
		{"a baseline without delays", [3]int{50, 40, 0}, [3]int{50, 40, 0}, true, ledgerfile.DelayFromSend},
		{"a baseline not shown", [3]int{50, 40, 0}, [3]int{50, 40, 30}, false, ledgerfile.DelayFromSend},
	} {
		e := &epoch{}
		for i := range e.acc {
			e.acc[i] = newCohortAcc(uint64(i))
			for range c.send[i] {
				e.acc[i].addSendDelay(1e6)
			}
			for range c.sighting[i] {
				e.acc[i].addDelay(2e6)
			}
		}
		if got := e.delayRule(c.withBase); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if s := e.acc[cohortCandidate].stats(c.want); c.want == ledgerfile.DelayFromSend && s.DelaySamples != int64(c.send[1]) ||
			c.want == ledgerfile.DelayFromSighting && s.DelaySamples != int64(c.sighting[1]) {
			t.Errorf("%s: %d delay samples of rule %s", c.name, s.DelaySamples, c.want)
		}
	}
}
