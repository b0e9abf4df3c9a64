package report

import (
	"strings"
	"testing"
	"time"
)

// watchRun feeds the seconds of windowRun's result to a watch of gates
// (publishing from t0, phases a and b) and returns the abort, if any, and
// the second at which it came.
func watchRun(t *testing.T, r *Report, begin bool, gates ...WatchGate) (*Abort, int) {
	t.Helper()
	w, err := NewWatch(gates)
	if err != nil {
		t.Fatal(err)
	}
	if begin {
		w.Begin(at(0), r.Scenario.Phases)
	}
	for i, s := range r.perSec.secs {
		a, err := w.Add(s)
		if err != nil {
			t.Fatal(err)
		}
		if a != nil {
			if again, _ := w.Add(s); again != nil || w.Aborted() != a {
				t.Errorf("the watch aborted twice, or forgot: %v, %v", again, w.Aborted())
			}
			return a, i
		}
	}
	return nil, -1
}

func TestWatch(t *testing.T) {
	t.Parallel()
	r := windowRun(t)
	for _, tc := range []struct {
		expr    string
		delay   time.Duration
		noBegin bool
		second  int // the second whose tick aborts; -1 none
		value   float64
		window  [2]float64 // offsets of the failing window, for a windowed gate
	}{
		// The 3 s window [3, 5] holding the 2 ms spike is complete at second 5.
		{expr: "p99_delivery_ms[3s] < 1.5", second: 5, value: 2, window: [2]float64{3, 6}},
		// Not judged before 8 s after the first publish: the window [5, 7] at second 7.
		{expr: "p99_delivery_ms[3s] < 1.5", delay: 8 * time.Second, second: 7, value: 2, window: [2]float64{5, 8}},
		{expr: "p99_delivery_ms[3s] < 1.5", delay: 20 * time.Second, second: -1},
		{expr: "p99_delivery_ms[3s] < 1.5", noBegin: true, second: -1},
		{expr: "p99_delivery_ms[3s] < 5", second: -1},
		{expr: "deliveries_per_s[3s] >= 8", second: 8, value: 7.333, window: [2]float64{6, 9}},
		{expr: "publish_error_rate[2s] < 0.1", second: 7, value: 0.2, window: [2]float64{6, 8}},
		{expr: "phase.b.p99_delivery_ms[10s] < 1.5", second: 9, value: 2, window: [2]float64{5, 10}},
		{expr: "phase.a.p99_delivery_ms[2s] < 1.5", second: -1},
		// Counts that only grow, and maxima, once over.
		{expr: "publish_errors <= 2", second: 7, value: 5},
		{expr: "phase.b.publishes_failed == 0", second: 7, value: 5},
		{expr: "phase.a.publishes_failed == 0", second: -1},
		{expr: "deliveries < 50", second: 4, value: 50},
		{expr: "max_delivery_ms < 1.5", second: 5, value: 2},
		{expr: "phase.a.max_delivery_ms < 1.5", second: -1},
	} {
		g, err := ParseGate(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		a, second := watchRun(t, r, !tc.noBegin, WatchGate{Gate: g, Delay: tc.delay})
		if second != tc.second || a != nil && a.Value != tc.value {
			t.Errorf("%s (delay %v): aborted %+v at second %d, want at %d with %v", tc.expr, tc.delay, a, second, tc.second, tc.value)
			continue
		}
		if a == nil {
			continue
		}
		if want := at(float64(second + 1)); !a.At.Equal(want) || a.Gate != g.Expr {
			t.Errorf("%s: abort %+v, want at %v", tc.expr, a, want)
		}
		if tc.window != [2]float64{} && (a.Window == nil || a.Window.StartOffsetSeconds != tc.window[0] || a.Window.EndOffsetSeconds != tc.window[1]) {
			t.Errorf("%s: window %+v, want +%v..+%v", tc.expr, a.Window, tc.window[0], tc.window[1])
		}
		// What aborted the run fails in the report of the same seconds.
		res, err := r.Evaluate([]Gate{g})
		if err != nil || res[0].Pass || worse(g.Op, a.Value, res[0].Value) {
			t.Errorf("%s aborted the run (measured %v) but the report says %+v, %v", tc.expr, a.Value, res, err)
		}
		r.SetAborted(a)
		if res, _ := r.Evaluate([]Gate{g}); !res[0].Aborted || r.Aborted.OffsetSeconds != float64(second+1) {
			t.Errorf("%s: the report does not mark the abort: %+v, %+v", tc.expr, res[0], r.Aborted)
		}
		r.SetAborted(nil)
	}
}

func TestWatchable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr, bad string
	}{
		{"p99_delivery_ms[10s] < 50", ""},
		{"deliveries_per_s[10s] > 100", ""},
		{"errors == 0", ""},
		{"connects <= 1000", ""},
		{"max_connect_ms < 500", ""},
		{"phase.spike.duplicated == 0", ""},
		{"phase.spike.max_delivery_ms <= 100", ""},
		{"lost == 0", "known only when the run is over"},
		{"unexplained == 0", "known only when the run is over"},
		{"p99_delivery_ms < 50", "known only when the run is over"},
		{"error_rate < 0.01", "known only when the run is over"},
		{"phase.spike.lost == 0", "known only when the run is over"},
		{"duplicated == 0", "known only when the run is over"},
		{"deliveries > 100", "deliveries only grows"},
		{"errors != 1", "errors only grows"},
		{"max_delivery_ms > 1", "takes it with < <=)"},
		{"max_delivery_ms == 1", "takes it with < <=)"},
	} {
		g, err := ParseGate(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		err = Watchable(g)
		if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("Watchable(%s) = %v, want %q", tc.expr, err, tc.bad)
		}
		if _, nerr := NewWatch([]WatchGate{{Gate: g}}); (nerr == nil) != (err == nil) {
			t.Errorf("NewWatch(%s) = %v, Watchable %v", tc.expr, nerr, err)
		}
	}
}
