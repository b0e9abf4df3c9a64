package swarm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// paced runs a pacer on a virtual clock that is never late, as vegeta
// would on an idle machine, and returns each hit's release time.
func paced(t *testing.T, p interface {
	Pace(time.Duration, uint64) (time.Duration, bool)
}, limit int) []time.Duration {
	t.Helper()
	var at []time.Duration
	var now time.Duration
	for hits := uint64(0); ; hits++ {
		wait, stop := p.Pace(now, hits)
		if stop {
			return at
		}
		now += max(wait, 0)
		at = append(at, now)
		if len(at) > limit {
			t.Fatalf("more than %d hits", limit)
		}
	}
}

func TestPhasedPacer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		share  float64
		owner  bool
		counts []int // hits per phase
		hot    []int // hot hits per phase
	}{
		{
			name:   "constant phases start fresh",
			cfg:    Config{Rate: 40, Phases: []Phase{{Duration: time.Second, Rate: 20}, {Duration: 2 * time.Second, Rate: 100}, {Duration: 500 * time.Millisecond, Rate: 10}}},
			share:  1,
			counts: []int{20, 200, 5},
			hot:    []int{0, 0, 0},
		},
		{
			name:   "a part's share",
			cfg:    Config{Rate: 40, Phases: []Phase{{Duration: time.Second, Rate: 20}, {Duration: 2 * time.Second, Rate: 100}}},
			share:  0.5,
			counts: []int{10, 100},
			hot:    []int{0, 0},
		},
		{
			name:   "hot phase on the owner",
			cfg:    Config{Rate: 40, Phases: []Phase{{Duration: time.Second, Rate: 40}, {Duration: 1500 * time.Millisecond, Rate: 60, Hot: true, HotChannel: 1}}},
			share:  0.5,
			owner:  true,
			counts: []int{20, 120}, // 20/s, then 20/s + 60/s
			hot:    []int{0, 90},
		},
		{
			name:   "hot phase elsewhere",
			cfg:    Config{Rate: 40, Phases: []Phase{{Duration: time.Second, Rate: 40}, {Duration: 1500 * time.Millisecond, Rate: 60, Hot: true, HotChannel: 1}}},
			share:  0.5,
			counts: []int{20, 30},
			hot:    []int{0, 0},
		},
		{
			name: "linear starts at each phase's rate",
			cfg: Config{Rate: 10, Pacing: Pacing{Kind: PaceLinear, Slope: 10},
				Phases: []Phase{{Duration: 2 * time.Second, Rate: 10}, {Duration: 2 * time.Second, Rate: 100}}},
			share:  1,
			counts: []int{40, 220}, // r*d + slope*d²/2
			hot:    []int{0, 0},
		},
		{
			name: "sine around each phase's rate",
			cfg: Config{Rate: 50, Pacing: Pacing{Kind: PaceSine, Period: time.Second, Amplitude: 10},
				Phases: []Phase{{Duration: 2 * time.Second, Rate: 50}, {Duration: 3 * time.Second, Rate: 200}}},
			share:  1,
			counts: []int{100, 600}, // whole periods: the mean
			hot:    []int{0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg.withDefaults()
			p := cfg.phasedPacer(tt.share, func(int) bool { return tt.owner })
			at := paced(t, p, 10_000)
			var start time.Duration
			next := 0
			for i, ph := range cfg.Phases {
				end := start + ph.Duration
				n, hot := 0, 0
				// A hit may leave a few µs late: the pacers' float arithmetic.
				for ; next < len(at) && at[next] <= end+time.Millisecond; next++ {
					if at[next] < start {
						t.Fatalf("hit %d at %v before phase %d starts at %v", next, at[next], i, start)
					}
					if _, h := p.hot(uint64(next)); h {
						hot++
					}
					n++
				}
				if math.Abs(float64(n-tt.counts[i])) > 1 {
					t.Errorf("phase %d: %d hits, want %d", i, n, tt.counts[i])
				}
				if hot != tt.hot[i] {
					t.Errorf("phase %d: %d hot hits, want %d", i, hot, tt.hot[i])
				}
				start = end
			}
			if next != len(at) {
				t.Errorf("%d hits after the last phase (at %v)", len(at)-next, at[next:])
			}
			// The counts agree with vegeta's pacers: the last hit of each
			// phase is due at its end, the next one is not.
			for i, ph := range p.phases {
				d := ph.end - ph.start
				if w, _ := ph.pacer.Pace(d, ph.hits-1); ph.hits > 0 && w > 0 {
					t.Errorf("phase %d: hit %d not due at its end (wait %v)", i, ph.hits-1, w)
				}
				if w, _ := ph.pacer.Pace(d, ph.hits); w <= 0 {
					t.Errorf("phase %d: hit %d due within it (wait %v)", i, ph.hits, w)
				}
			}
		})
	}
}

// TestStampingAcrossPhases: a hit released late is stamped with the time
// it was due, in whichever phase that was.
func TestStampingAcrossPhases(t *testing.T) {
	t.Parallel()
	cfg := Config{Rate: 40, Phases: []Phase{{Duration: time.Second, Rate: 20}, {Duration: time.Second, Rate: 100}}}.withDefaults()
	began := time.Unix(1_800_000_000, 0)
	p := &stampingPacer{phased: cfg.phasedPacer(1, func(int) bool { return true }), began: began, stamps: make(chan stamp, 1)}
	p.inner = p.phased
	for _, tt := range []struct {
		hits    uint64
		elapsed time.Duration
		due     time.Duration
	}{
		{hits: 3, elapsed: 1900 * time.Millisecond, due: 200 * time.Millisecond},                 // phase 0: every 50 ms
		{hits: 20 + 4, elapsed: 1900 * time.Millisecond, due: time.Second + 50*time.Millisecond}, // phase 1: every 10 ms
	} {
		if wait, stop := p.Pace(tt.elapsed, tt.hits); wait > 0 || stop {
			t.Fatalf("hit %d at %v: wait %v stop %v, want it due", tt.hits, tt.elapsed, wait, stop)
		}
		got := time.Duration((<-p.stamps).at - began.UnixNano())
		if d := got - tt.due; d < -2*time.Microsecond || d > 2*time.Microsecond {
			t.Errorf("hit %d stamped at %v, due at %v", tt.hits, got, tt.due)
		}
	}
}

// TestRunPhases publishes at a low then a high rate: each phase sends its
// count, and the per-second series shows the rates.
func TestRunPhases(t *testing.T) {
	tstest.Long(t, "a swarm run of several phases (~6 s)")
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Clients, cfg.Duration = 20, time.Hour // the phases' sum replaces it
	cfg.Drain = 1500 * time.Millisecond
	cfg.Phases = []Phase{{Name: "low", Duration: 2 * time.Second, Rate: 20}, {Name: "high", Duration: 2 * time.Second, Rate: 100}}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if got := res.Publish.Attempted; got < 237 || got > 240 {
		t.Errorf("attempted %d publishes, want 20*2 + 100*2 = 240", got)
	}
	if res.Config.DurationSeconds != 4 || len(res.Config.Phases) != 2 {
		t.Fatalf("config echo %+v", res.Config)
	}
	wantEcho := []PhaseEcho{{Name: "low", StartSeconds: 0, DurationSeconds: 2, RateEventsPerS: 20}, {Name: "high", StartSeconds: 2, DurationSeconds: 2, RateEventsPerS: 100}}
	for i, e := range res.Config.Phases {
		if e != wantEcho[i] {
			t.Errorf("phase echo %d: %+v, want %+v", i, e, wantEcho[i])
		}
	}
	if res.PublishStarted.Before(res.Started) || res.PublishStarted.After(res.Ended) {
		t.Fatalf("publish started %v, run %v to %v", res.PublishStarted, res.Started, res.Ended)
	}
	// Seconds wholly inside a phase publish at its rate (give or take the
	// ticker's and the responses' jitter).
	start := res.PublishStarted
	for i, ph := range cfg.Phases {
		from, to := start.Add(time.Duration(i)*2*time.Second), start.Add(time.Duration(i+1)*2*time.Second)
		seen := 0
		for _, s := range res.Series {
			if sec := time.Unix(s.T, 0); sec.Before(from) || sec.Add(time.Second).After(to) {
				continue
			}
			seen++
			if got := float64(s.PublishesOK); math.Abs(got-ph.Rate) > 0.3*ph.Rate {
				t.Errorf("phase %s, second %d: %v publishes, want about %v", ph.Name, s.T, got, ph.Rate)
			}
		}
		if seen == 0 {
			t.Errorf("no whole second inside phase %s", ph.Name)
		}
	}
}

// TestRunHotPhase splits the run in two parts: only the part that owns
// the hot channel publishes the hot rate, on that channel alone.
func TestRunHotPhase(t *testing.T) {
	tstest.Long(t, "a swarm run of several phases (~5 s)")
	t.Parallel()
	var mu sync.Mutex
	published := map[string]int{}
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/pub" {
				mu.Lock()
				published[r.URL.Query().Get("id")]++
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}
	n := startNode(t, server.Config{}, nodeOptions{wrap: count})
	cfg := quickConfig(t, n.url)
	cfg.ChannelPrefix, cfg.RunID = "hot", "hot-run"
	cfg.Drain = 2 * time.Second // deliveries late on a loaded machine still count
	cfg.Phases = []Phase{{Name: "calm", Duration: time.Second}, {Name: "pope", Duration: 1500 * time.Millisecond, Rate: 60, Hot: true, HotChannel: 1}}
	var results [2]*Result
	var errs [2]error
	var wg sync.WaitGroup
	for i := range results {
		part := cfg
		part.Part = Part{Index: i, Count: 2}
		wg.Go(func() { results[i], errs[i] = Run(context.Background(), part) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	res, err := Merge(results[:]...)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	// Rate 40 over 4 channels: 10 per channel in the calm second, 15 in
	// the 1.5 s spike; and the hot 60/s for 1.5 s on channel 1. (A pacer
	// still behind when the time is up drops its last few hits.)
	mu.Lock()
	defer mu.Unlock()
	for ch, want := range map[string]int{"hot_0": 25, "hot_1": 25 + 90, "hot_2": 25, "hot_3": 25} {
		if got := published[ch]; got < want-3 || got > want {
			t.Errorf("channel %s: %d publishes, want %d (all: %v)", ch, got, want, published)
		}
	}
	if hot := published["hot_1"] - published["hot_3"]; hot < 87 || hot > 93 {
		t.Errorf("channel 1 got %d publishes more than channel 3 (the other channel of its part), want 90", hot)
	}
	if hc := res.Config.Phases[1].HotChannel; hc == nil || *hc != 1 || res.Config.Phases[0].HotChannel != nil {
		t.Errorf("phase echo %+v", res.Config.Phases)
	}
	if !res.PublishStarted.Equal(minTime(results[0].PublishStarted, results[1].PublishStarted)) {
		t.Errorf("merged publish start %v, parts %v and %v", res.PublishStarted, results[0].PublishStarted, results[1].PublishStarted)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// TestRunPublishAt holds the first publish until PublishAt and tells
// OnPublish; storms count from there.
func TestRunPublishAt(t *testing.T) {
	tstest.Long(t, "a swarm run that waits for a publish time (~4 s)")
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Clients, cfg.Duration = 10, time.Second
	cfg.PublishAt = time.Now().Add(1500 * time.Millisecond) // well after ramp and settle
	cfg.Storms = []time.Duration{500 * time.Millisecond}
	var called []time.Time
	cfg.OnPublish = func(start time.Time) { called = append(called, start) }
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if len(called) != 1 || !called[0].Equal(res.PublishStarted) {
		t.Fatalf("OnPublish called with %v, result says %v", called, res.PublishStarted)
	}
	if d := res.PublishStarted.Sub(cfg.PublishAt); d < 0 || d > 200*time.Millisecond {
		t.Errorf("publishing started %v after PublishAt", d)
	}
	for _, s := range res.Series {
		if s.PublishesOK > 0 && s.T < cfg.PublishAt.Unix() {
			t.Errorf("second %d published before PublishAt (%v)", s.T, cfg.PublishAt)
		}
	}
	if res.Clients.StormCuts != int64(cfg.Clients) {
		t.Errorf("storm cuts %d, want %d", res.Clients.StormCuts, cfg.Clients)
	}

	// A PublishAt already past is ignored.
	cfg.PublishAt, cfg.OnPublish, cfg.Storms, cfg.Duration = time.Now().Add(-time.Hour), nil, nil, 300*time.Millisecond
	res, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := res.PublishStarted.Sub(res.Started); d > 3*time.Second {
		t.Errorf("publishing started %v into the run with a past PublishAt", d)
	}
}

func TestPhaseAndSlowdownValidation(t *testing.T) {
	t.Parallel()
	ok := []Phase{{Name: "a", Duration: time.Second}}
	tests := []struct {
		name  string
		cfg   Config
		kind  error
		words string
	}{
		{"zero duration", Config{Phases: []Phase{{Name: "z"}}}, ErrPhase, `phase 0 ("z"): duration`},
		{"negative duration", Config{Phases: []Phase{{Duration: -time.Second}}}, ErrPhase, "duration"},
		{"negative rate", Config{Phases: []Phase{{Duration: time.Second, Rate: -1}}}, ErrPhase, "rate"},
		{"NaN rate", Config{Phases: []Phase{{Duration: time.Second, Rate: math.NaN()}}}, ErrPhase, "rate"},
		{"hot channel out of range", Config{Channels: 4, Phases: []Phase{{Duration: time.Second, Hot: true, HotChannel: 4}}}, ErrPhase, "hot channel 4"},
		{"negative hot channel", Config{Phases: []Phase{{Duration: time.Second, Hot: true, HotChannel: -1}}}, ErrPhase, "hot channel -1"},
		{"hot channel without hot", Config{Phases: []Phase{{Duration: time.Second, HotChannel: 2}}}, ErrPhase, "without hot"},
		{"sine above a phase's rate", Config{Rate: 50, Pacing: Pacing{Kind: PaceSine, Period: time.Second, Amplitude: 20}, Phases: []Phase{{Duration: time.Second, Rate: 10}}}, ErrPhase, "amplitude"},
		{"phases too long", Config{Phases: []Phase{{Duration: MaxDuration}, {Duration: MaxDuration}}}, ErrConfig, "duration must be between 0 and 24h"},
		{"too many publishes", Config{Phases: []Phase{{Duration: 20 * time.Hour, Rate: 1e6}}}, ErrConfig, "publishes planned"},
		{"slowdown without clients", Config{Slowdowns: []Slowdown{{ReadDelay: time.Second}}}, ErrSlowdown, "clients must be between 1"},
		{"slowdown of more clients than the run", Config{Clients: 10, Slowdowns: []Slowdown{{Clients: 11, ReadDelay: time.Second}}}, ErrSlowdown, "clients must be between 1 and 10"},
		{"slowdown before the publishing", Config{Slowdowns: []Slowdown{{At: -time.Second, Clients: 1, ReadDelay: time.Second}}}, ErrSlowdown, "outside the publish window"},
		{"slowdown after the phases", Config{Phases: ok, Slowdowns: []Slowdown{{At: 2 * time.Second, Clients: 1, ReadDelay: time.Second}}}, ErrSlowdown, "outside the publish window (0 to 1s)"},
		{"slowdown without delay", Config{Slowdowns: []Slowdown{{Clients: 1}}}, ErrSlowdown, "read delay"},
		{"slowdown too slow", Config{Slowdowns: []Slowdown{{Clients: 1, ReadDelay: time.Hour}}}, ErrSlowdown, "read delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Check(tt.cfg)
			if !errors.Is(err, tt.kind) || !errors.Is(err, ErrConfig) || !strings.Contains(fmt.Sprint(err), tt.words) {
				t.Errorf("Check = %v, want %v mentioning %q", err, tt.kind, tt.words)
			}
		})
	}
	good := Config{Channels: 4, Phases: []Phase{{Name: "a", Duration: time.Second}, {Name: "b", Duration: time.Second, Rate: 5, Hot: true, HotChannel: 3}},
		Slowdowns: []Slowdown{{At: 2 * time.Second, Clients: 1000, ReadDelay: time.Millisecond}}}
	if err := Check(good); err != nil {
		t.Errorf("Check(%+v) = %v", good, err)
	}
}

func TestParsePhaseAndSlowdown(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]Phase{
		"warm:10s":           {Name: "warm", Duration: 10 * time.Second},
		"peak:20s:500":       {Name: "peak", Duration: 20 * time.Second, Rate: 500},
		"pope:30s:800:hot=0": {Name: "pope", Duration: 30 * time.Second, Rate: 800, Hot: true},
		"pope:30s:hot=7":     {Name: "pope", Duration: 30 * time.Second, Hot: true, HotChannel: 7},
	} {
		if got, err := ParsePhase(s); err != nil || got != want {
			t.Errorf("ParsePhase(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "warm", ":10s", "warm:ten", "warm:1s:x", "warm:1s:5:hot", "warm:1s:5:hot=x", "warm:1s:5:hot=1:x"} {
		if _, err := ParsePhase(s); !errors.Is(err, ErrPhase) {
			t.Errorf("ParsePhase(%q) = %v, want ErrPhase", s, err)
		}
	}
	if got, err := ParseSlowdown("10s:50:200ms"); err != nil || got != (Slowdown{At: 10 * time.Second, Clients: 50, ReadDelay: 200 * time.Millisecond}) {
		t.Errorf("ParseSlowdown = %+v, %v", got, err)
	}
	for _, s := range []string{"", "10s:50", "x:50:1s", "10s:x:1s", "10s:50:x", "1s:1:1s:1"} {
		if _, err := ParseSlowdown(s); !errors.Is(err, ErrSlowdown) {
			t.Errorf("ParseSlowdown(%q) = %v, want ErrSlowdown", s, err)
		}
	}
}
