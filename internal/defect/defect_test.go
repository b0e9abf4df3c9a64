package defect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/darktime/darktime/internal/sse"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want Config
		err  string
	}{
		{"", Config{}, ""},
		{"none", Config{}, ""},
		{"drop=0.1%", Config{Drop: 0.001}, ""},
		{"drop=0.001", Config{Drop: 0.001}, ""},
		{"delay=40ms", Config{Delay: 40 * time.Millisecond}, ""},
		{"tail=2%:30ms, salt=x", Config{TailFraction: 0.02, TailDelay: 30 * time.Millisecond, Salt: "x"}, ""},
		{"drop=1%,delay=5ms", Config{Drop: 0.01, Delay: 5 * time.Millisecond}, ""},
		{"drop", Config{}, `"drop": want drop=F, delay=D, jitter=D, tail=F:D or salt=S`},
		{"drop=2", Config{}, "drop=2: a fraction from 0 to 1"},
		{"drop=-1%", Config{}, "a fraction from 0 to 1"},
		{"drop=NaN", Config{}, "not a number"},
		{"delay=fast", Config{}, "delay=fast: not a duration"},
		{"delay=-1s", Config{}, "from 0 to 1h"},
		{"tail=2%", Config{}, "want tail=FRACTION:DELAY"},
		{"drop=1%,drop=2%", Config{}, "drop given twice"},
		{"jitter=5ms", Config{Jitter: 5 * time.Millisecond}, ""},
		{"wobble=5ms", Config{}, `unknown term "wobble"`},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) = %v; want an ErrInvalid with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"none", "drop=0.1%", "delay=40ms", "tail=2%:30ms,salt=a", "drop=1,delay=1h", "x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %+v, which Validate refuses: %v", s, c, err)
		}
		if strings.Contains(c.Salt, ",") || c.None() {
			return
		}
		back, err := Parse(c.String())
		if err != nil {
			t.Fatalf("Parse(String() = %q): %v", c.String(), err)
		}
		if back.None() != c.None() || back.Delay != c.Delay || back.TailDelay != c.TailDelay || back.Jitter != c.Jitter {
			t.Fatalf("round trip %q: %+v, then %+v", s, c, back)
		}
	})
}

func TestSplitter(t *testing.T) {
	t.Parallel()
	in := "retry: 100\n\nid: 1\ndata: a\n\n: keepalive\n\ndata: b\r\ndata: c\r\n\r\nid: 3\rdata: d\r\rdata: partial"
	var s splitter
	var got []frame
	for i := 0; i < len(in); i++ { // one byte at a time: every cut
		got = append(got, s.feed([]byte{in[i]})...)
	}
	want := []struct {
		raw, id, data string
		event         bool
	}{
		{"retry: 100\n\n", "", "", false},
		{"id: 1\ndata: a\n\n", "1", "a\n", true},
		{": keepalive\n\n", "", "", false},
		{"data: b\r\ndata: c\r\n\r\n", "", "b\nc\n", true},
		{"id: 3\rdata: d\r\r", "3", "d\n", true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if string(g.raw) != w.raw || string(g.id) != w.id || string(g.data) != w.data || g.event != w.event {
			t.Errorf("frame %d = %q id %q data %q event %v; want %+v", i, g.raw, g.id, g.data, g.event, w)
		}
	}
	if rest := s.rest(); string(rest) != "data: partial" {
		t.Errorf("rest = %q", rest)
	}
}

// FuzzSplitter: whatever the stream and however it is cut, the frames
// and the rest are the stream's bytes, in order, and the cut does not
// change the frames.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("id: 1\ndata: a\n\ndata: b\r\n\r\n: c\r\r"), uint8(3))
	f.Add([]byte("\r\n\r\n\n\r"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		var whole splitter
		all := whole.feed(data)
		var parts splitter
		var got []frame
		step := int(cut)%7 + 1
		for i := 0; i < len(data); i += step {
			got = append(got, parts.feed(data[i:min(i+step, len(data))])...)
		}
		var joined []byte
		for _, fr := range got {
			joined = append(joined, fr.raw...)
		}
		rest := parts.rest()
		joined = append(joined, rest...)
		if !bytes.Equal(joined, data) {
			t.Fatalf("frames + rest = %q; want %q", joined, data)
		}
		// A trailing CR may end a frame only once its next byte is seen.
		n := min(len(all), len(got))
		for i := range n {
			if !bytes.Equal(all[i].raw, got[i].raw) || all[i].event != got[i].event || !bytes.Equal(all[i].id, got[i].id) {
				t.Fatalf("frame %d: %q whole, %q cut", i, all[i].raw, got[i].raw)
			}
		}
	})
}

func TestChosenIsAFraction(t *testing.T) {
	t.Parallel()
	c := Config{Salt: "s"}
	for _, f := range []float64{0.001, 0.02, 0.5} {
		n, hits := 200_000, 0
		for i := range n {
			if c.chosen("drop", []byte(strconv.Itoa(i)), f) {
				hits++
			}
		}
		got := float64(hits) / float64(n)
		if d := got - f; d > 4*sqrt(f/float64(n))+1e-4 || d < -4*sqrt(f/float64(n))-1e-4 {
			t.Errorf("fraction %v: chose %v", f, got)
		}
		if !slices.Equal([]bool{c.chosen("drop", []byte("7"), f)}, []bool{c.chosen("drop", []byte("7"), f)}) {
			t.Errorf("not deterministic")
		}
	}
}

func sqrt(x float64) float64 {
	z := x
	for range 50 {
		z = (z + x/z) / 2
	}
	return z
}

// emitter is an SSE upstream: n events, one every gap, each with its id
// and the time it was written (unix ns) as data.
func emitter(n int, gap time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = w.Write([]byte("published"))
			return
		}
		w.Header().Set("Content-Type", sse.ContentType)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_, _ = w.Write([]byte("retry: 1000\n\n"))
		next := time.Now()
		for i := range n {
			next = next.Add(gap)
			time.Sleep(time.Until(next))
			fmt.Fprintf(w, "id: %d\ndata: %d\n\n", i, time.Now().UnixNano())
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
}

// receive reads a stream to its end: the ids received and each event's
// delay from its write.
func receive(t *testing.T, url string) (ids []int, delays []time.Duration) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err) // not Fatal: TestDelay calls this from a goroutine
		return nil, nil
	}
	defer resp.Body.Close()
	r := sse.NewReader(bufio.NewReader(resp.Body), 0)
	for {
		ev, err := r.Next()
		if err != nil {
			return ids, delays
		}
		at := time.Now()
		sent, _ := strconv.ParseInt(string(ev.Data), 10, 64)
		id, _ := strconv.Atoi(ev.ID)
		ids = append(ids, id)
		delays = append(delays, at.Sub(time.Unix(0, sent)))
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func serveDefect(t *testing.T, up http.Handler, c Config) string {
	t.Helper()
	srv := httptest.NewServer(Middleware(up, c))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDrop(t *testing.T) {
	t.Parallel()
	const n = 3000
	c := Config{Drop: 0.01, Salt: "t"}
	ids, _ := receive(t, serveDefect(t, emitter(n, 0), c))
	want := 0
	for i := range n {
		if !c.chosen("drop", []byte(strconv.Itoa(i)), c.Drop) {
			want++
		}
	}
	if len(ids) != want || want == n {
		t.Fatalf("received %d of %d events; want %d (the ones the hash keeps)", len(ids), n, want)
	}
	if !slices.IsSorted(ids) {
		t.Fatal("events out of order")
	}
	again, _ := receive(t, serveDefect(t, emitter(n, 0), c))
	if !slices.Equal(ids, again) {
		t.Fatal("a second subscriber lost other events")
	}
}

// TestDelay holds every event back by at least the delay, and by not
// much more than the delay plus what an undelayed stream measured at the
// same time pays. The two streams run side by side so they share the
// machine's noise; the lower bound is exact, the upper one has slack.
func TestDelay(t *testing.T) {
	t.Parallel()
	const delay = 40 * time.Millisecond
	var base []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, base = receive(t, serveDefect(t, emitter(100, time.Millisecond), Config{}))
	}()
	_, late := receive(t, serveDefect(t, emitter(100, time.Millisecond), Config{Delay: delay}))
	<-done
	if len(late) != 100 || len(base) != 100 {
		t.Fatalf("%d and %d events, want 100 each", len(base), len(late))
	}
	if m := slices.Min(late); m < delay {
		t.Fatalf("an event was delayed by %v only, want at least %v", m, delay)
	}
	if d := quantile(late, 0.5) - quantile(base, 0.5); d > delay+20*time.Millisecond {
		t.Fatalf("median delay %v → %v: +%v, want about +%v", quantile(base, 0.5), quantile(late, 0.5), d, delay)
	}
}

// TestTailKeepsMedianDoublesP99 measures (c): the same median, the p99
// about doubled. The reference goes through the defect too, with a fixed
// 2 ms delay, so both pay the same hand-over and timer costs and their
// distributions sit at the millisecond scale timers keep to.
func TestTailKeepsMedianDoublesP99(t *testing.T) {
	if testing.Short() {
		t.Skip("measures 2 × 400 events over 8 s")
	}
	const n, gap = 400, 10 * time.Millisecond
	ref := Config{Delay: 2 * time.Millisecond}
	_, base := receive(t, serveDefect(t, emitter(n, gap), ref))
	p50, p99 := quantile(base, 0.5), quantile(base, 0.99)
	tail := DoubleP99(p50, p99)
	if p99+tail >= gap {
		t.Skipf("the machine is too noisy: p99 %v, a tail delay of %v would pass the events' gap %v", p99, tail, gap)
	}
	cand := ref
	cand.TailFraction, cand.TailDelay = 0.02, tail
	chosen := 0
	for i := range n {
		if cand.chosen("tail", []byte(strconv.Itoa(i)), cand.TailFraction) {
			chosen++
		}
	}
	if chosen < n*15/1000 { // the p99 must fall among them
		t.Fatalf("the hash chose %d of %d events for the tail", chosen, n)
	}
	_, got := receive(t, serveDefect(t, emitter(n, gap), cand))
	g50, g99 := quantile(got, 0.5), quantile(got, 0.99)
	t.Logf("reference p50 %v p99 %v; tail %v: p50 %v p99 %v (×%.2f)", p50, p99, tail, g50, g99, float64(g99)/float64(p99))
	if d := g50 - p50; d > 500*time.Microsecond || d < -500*time.Microsecond {
		t.Errorf("the median moved: %v → %v", p50, g50)
	}
	if r := float64(g99) / float64(p99); r < 1.6 || r > 2.6 {
		t.Errorf("p99 %v → %v: ×%.2f, want about ×2", p99, g99, r)
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	// Events further apart than the jitter, so that none waits for the
	// one before it: the delays are the hash's, uniform over 0-20 ms.
	const n, gap = 80, 25 * time.Millisecond
	_, base := receive(t, serveDefect(t, emitter(n, gap), Config{}))
	_, got := receive(t, serveDefect(t, emitter(n, gap), Config{Jitter: 20 * time.Millisecond}))
	d50 := quantile(got, 0.5) - quantile(base, 0.5)
	spread := quantile(got, 0.9) - quantile(got, 0.1)
	if d50 < 5*time.Millisecond || d50 > 15*time.Millisecond || spread < 10*time.Millisecond {
		t.Fatalf("jitter 20ms: p10 %v p50 %v p90 %v (reference p50 %v)", quantile(got, 0.1), quantile(got, 0.5), quantile(got, 0.9), quantile(base, 0.5))
	}
}

func TestPassesOtherResponses(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(emitter(3, 0))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	srv := httptest.NewServer(Proxy(u, Config{Drop: 1}))
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/pub", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if body.String() != "published" {
		t.Fatalf("publish through the defect: %q", body)
	}
	ids, _ := receive(t, srv.URL+"/sub")
	if len(ids) != 0 {
		t.Fatalf("drop=100%%: %d events came", len(ids))
	}
}

func TestMiddlewareNoneIsNext(t *testing.T) {
	t.Parallel()
	h := emitter(1, 0)
	if got := Middleware(h, Config{Salt: "x"}); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Fatal("a defect of none wraps the handler")
	}
}
