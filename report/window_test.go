package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/swarm/resultfile"
)

func TestParseWindowedGate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Gate
	}{
		{"p99_delivery_ms[10s] < 50", Gate{Expr: "p99_delivery_ms[10s] < 50", Metric: "p99_delivery_ms", Op: "<", Threshold: 50, WindowSeconds: 10}},
		{" error_rate [ 1m ] <= 0.01 ", Gate{Expr: "error_rate[1m] <= 0.01", Metric: "error_rate", Op: "<=", Threshold: 0.01, WindowSeconds: 60}},
		{"phase.steady.p99_delivery_ms[90s]<50", Gate{Expr: "phase.steady.p99_delivery_ms[90s] < 50", Metric: "phase.steady.p99_delivery_ms", Op: "<", Threshold: 50, WindowSeconds: 90}},
		{"max_connect_ms[1m30s] < 500", Gate{Expr: "max_connect_ms[90s] < 500", Metric: "max_connect_ms", Op: "<", Threshold: 500, WindowSeconds: 90}},
		{"deliveries_per_s[2m0s] >= 100", Gate{Expr: "deliveries_per_s[2m] >= 100", Metric: "deliveries_per_s", Op: ">=", Threshold: 100, WindowSeconds: 120}},
		{"p50_publish_ms[1h] > 0", Gate{Expr: "p50_publish_ms[1h] > 0", Metric: "p50_publish_ms", Op: ">", Threshold: 0, WindowSeconds: 3600}},
		{"phase.spike.publish_error_rate[5s] < 0.1", Gate{Expr: "phase.spike.publish_error_rate[5s] < 0.1", Metric: "phase.spike.publish_error_rate", Op: "<", Threshold: 0.1, WindowSeconds: 5}},
	} {
		g, err := ParseGate(tc.in)
		if err != nil || g != tc.want {
			t.Errorf("ParseGate(%q) = %+v, %v; want %+v", tc.in, g, err, tc.want)
		}
	}
}

// TestWindowedGateErrors holds the errors of bad windowed gates to
// testdata/gate-errors.golden: each says what is wrong and what would do.
func TestWindowedGateErrors(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	for _, expr := range []string{
		"lost[10s] == 0",
		"expected[10s] > 0",
		"unexplained[5s] < 1",
		"phase.steady.lost[10s] < 1",
		"p99_first_event_ms[10s] < 5",
		"p99_delivery_ms[10s] == 0",
		"error_rate[10s] != 0",
		"p99_delivery_ms[500ms] < 5",
		"p99_delivery_ms[0s] < 5",
		"p99_delivery_ms[1.5s] < 5",
		"p99_delivery_ms[25h] < 5",
		"p99_delivery_ms[10] < 5",
		"p99_delivery_ms[] < 5",
		"p99_delivery_ms[10s < 5",
		"p99_delivery_ms[10s]x < 5",
		"p99_delivery_ms[[10s]] < 5",
		"p99_latency_ms[10s] < 5",
		"phase.steady.p99[10s] < 5",
		"phase..p99_delivery_ms[10s] < 5",
	} {
		_, err := ParseGate(expr)
		if !errors.Is(err, ErrInput) {
			t.Errorf("ParseGate(%q) = %v, want an error wrapping ErrInput", expr, err)
			continue
		}
		fmt.Fprintf(&b, "%s\n\t%s\n", expr, strings.TrimPrefix(unwrapInput(err), "gate "+fmt.Sprintf("%q", expr)+": "))
	}
	golden(t, "gate-errors.golden", b.Bytes())
}

// unwrapInput is an error's message without the ErrInput sentinel.
func unwrapInput(err error) string {
	return strings.Replace(err.Error(), ErrInput.Error()+": ", "", 1)
}

// windowRun is ten seconds from t0: ten deliveries of 1 ms a second but
// second 5 (2 ms each) and second 8 (two only), ten good publishes a
// second and five failed ones in second 7; phases a (seconds 0-4) and b
// (5-9).
func windowRun(t *testing.T) *Report {
	t.Helper()
	var secs []sec
	for i := range 10 {
		s := sec{lat: repeat(10, 1000), pubOK: 10}
		switch i {
		case 5:
			s.lat = repeat(10, 2000)
		case 7:
			s.pubFailed = 5
		case 8:
			s.lat = repeat(2, 1000)
		}
		secs = append(secs, s)
	}
	r, err := Build(Inputs{Results: []*resultfile.Result{secondsRun(t, secs, 0, 1)}, Scenario: &Scenario{Name: "windows", Phases: []Phase{
		{Name: "a", Start: at(0), Duration: 5 * time.Second}, {Name: "b", Start: at(5), Duration: 5 * time.Second},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWindowedGates(t *testing.T) {
	t.Parallel()
	r := windowRun(t)
	for _, tc := range []struct {
		expr     string
		value    float64
		pass     bool
		from, to float64 // the worst window's offsets
		seconds  int
		windows  int
		note     string
	}{
		// The spike of second 5 is in three 3-second windows; the earliest is the worst.
		{expr: "p99_delivery_ms[3s] < 1.5", value: 2, from: 3, to: 6, seconds: 3, windows: 8},
		{expr: "p99_delivery_ms[1s] <= 2", value: 2, pass: true, from: 5, to: 6, seconds: 1, windows: 10},
		// Lower is worse for >: the lowest p50 of a 2-second window.
		{expr: "p50_delivery_ms[2s] > 0.5", value: 1, pass: true, from: 0, to: 2, seconds: 2, windows: 9},
		{expr: "max_delivery_ms[4s] < 3", value: 2, pass: true, from: 2, to: 6, seconds: 4, windows: 7},
		// A rate is the ratio of the window's sums.
		{expr: "publish_error_rate[2s] < 0.1", value: 0.2, from: 6, to: 8, seconds: 2, windows: 9},
		{expr: "error_rate[5s] < 0.1", value: 5.0 / 55, pass: true, from: 3, to: 8, seconds: 5, windows: 6},
		{expr: "deliveries_per_s[3s] >= 8", value: 7.333, from: 6, to: 9, seconds: 3, windows: 8},
		// Per phase: windows within the phase's seconds.
		{expr: "phase.a.p99_delivery_ms[3s] < 1.5", value: 1, pass: true, from: 0, to: 3, seconds: 3, windows: 3},
		{expr: "phase.b.p99_delivery_ms[3s] < 1.5", value: 2, from: 5, to: 8, seconds: 3, windows: 3},
		// A window longer than the span: one window over all of it.
		{expr: "p99_delivery_ms[1m] < 5", value: 2, pass: true, from: 0, to: 10, seconds: 10, windows: 1},
		{expr: "phase.b.deliveries_per_s[10s] > 1", value: 8.4, pass: true, from: 5, to: 10, seconds: 5, windows: 1},
		// Nothing to measure in any window: it fails.
		{expr: "p99_publish_ms[2s] < 5", note: "no window had anything to measure"},
	} {
		g, err := ParseGate(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Evaluate([]Gate{g})
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		got := res[0]
		if tc.note != "" {
			if got.Pass || !strings.Contains(got.Note, tc.note) || got.Window != nil {
				t.Errorf("%s: %+v, want a failure noting %q", tc.expr, got, tc.note)
			}
			continue
		}
		w := got.Window
		if got.Pass != tc.pass || got.Value != tc.value || w == nil || w.StartOffsetSeconds != tc.from || w.EndOffsetSeconds != tc.to ||
			w.Seconds != tc.seconds || w.Windows != tc.windows {
			t.Errorf("%s: %+v, window %+v; want value %v, pass %v, window +%v..+%v of %d s, %d windows", tc.expr, got, w, tc.value, tc.pass, tc.from, tc.to, tc.seconds, tc.windows)
		}
		if w != nil && !w.Start.Equal(at(tc.from)) {
			t.Errorf("%s: window starts %v, want %v", tc.expr, w.Start, at(tc.from))
		}
	}
}

func TestWindowedGateInputErrors(t *testing.T) {
	t.Parallel()
	r := windowRun(t)
	plain := faultyReport(t)
	var back Report
	data, err := json.Marshal(r)
	if err != nil || json.Unmarshal(data, &back) != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		expr string
		r    *Report
		bad  string
	}{
		{"phase.c.p99_delivery_ms[3s] < 5", r, `no phase "c" (its phases: a, b)`},
		{"phase.a.p99_delivery_ms[3s] < 5", plain, "needs a scenario run"},
		{"p99_delivery_ms[3s] < 5", &back, "build the report from the swarm result files"},
	} {
		g, err := ParseGate(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tc.r.Evaluate([]Gate{g}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("%s: %v, want an error with %q", tc.expr, err, tc.bad)
		}
	}
	late, err := Build(Inputs{Results: []*resultfile.Result{secondsRun(t, []sec{{lat: repeat(3, 1000)}}, 0, 1)},
		Scenario: &Scenario{Name: "x", Phases: []Phase{{Name: "later", Start: at(60), Duration: time.Second}}}})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := ParseGate("phase.later.p99_delivery_ms[1s] < 5")
	if _, err := late.Evaluate([]Gate{g}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "no second") {
		t.Errorf("windowed gate on a phase with no second: %v", err)
	}
}

// TestWindowedGateOutputs: the worst window is named in the text line,
// the JSON and JUnit.
func TestWindowedGateOutputs(t *testing.T) {
	t.Parallel()
	r := windowRun(t)
	gates, err := ParseGates([]string{"p99_delivery_ms[3s] < 1.5"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Evaluate(gates); err != nil {
		t.Fatal(err)
	}
	want := "FAIL p99_delivery_ms[3s] < 1.5: measured 2 in the worst window, +3s to +6s"
	if s := r.Gates[0].String(); !strings.HasPrefix(s, want) {
		t.Errorf("gate line %q, want it to start %q", s, want)
	}
	var j, x bytes.Buffer
	if err := r.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJUnit(&x); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"window_seconds": 3`, `"worst_window": {`, `"start_offset_seconds": 3`, `"end_offset_seconds": 6`} {
		if !strings.Contains(j.String(), w) {
			t.Errorf("JSON lacks %s", w)
		}
	}
	if !strings.Contains(x.String(), "worst window +3s to +6s") {
		t.Errorf("JUnit does not name the worst window:\n%s", x.String())
	}
}

// BenchmarkWindowedGate: ten minutes of seconds, a 10 s window (each
// second's histogram is decoded once, then merged per window).
func BenchmarkWindowedGate(b *testing.B) {
	var secs []sec
	for i := range 600 {
		secs = append(secs, sec{lat: repeat(50, int64(1000+i%7*100)), pubOK: 10})
	}
	r, err := Build(Inputs{Results: []*resultfile.Result{secondsRun(b, secs, 0, 1)}})
	if err != nil {
		b.Fatal(err)
	}
	g, _ := ParseGate("p99_delivery_ms[10s] < 5")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Evaluate([]Gate{g}); err != nil {
			b.Fatal(err)
		}
	}
}
