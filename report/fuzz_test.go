package report

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/swarm/resultfile"
)

// FuzzParseGate: any input parses to a gate whose expression parses back
// to the same gate, or fails with ErrInput; never a panic. A windowed
// gate's window is 1 s to MaxWindow, on a metric that takes one, with an
// operator that names a worst window.
func FuzzParseGate(f *testing.F) {
	for _, s := range []string{"p99_delivery_ms < 50", "lost==0", "error_rate <= 1e-3", "deliveries_per_s >= 1000",
		"x < 1", "lost = 0", "lost < NaN", "< 5", "lost != -0.5", "lost < 1e309", "lost<<1", "lost < 1 2",
		"phase.spike.p99_delivery_ms < 500", "phase.warm-up.lost==0", "phase..lost < 1", "phase.a.b.c < 1",
		"p99_delivery_ms[10s] < 50", "error_rate [ 1m30s ]<=0.01", "phase.steady.deliveries_per_s[5s] > 10", "lost[10s] == 0",
		"p99_delivery_ms[500ms] < 1", "p99_delivery_ms[[1s]] < 1", "p99_delivery_ms[1s]] < 1", "p99_delivery_ms[-1s] < 1",
		"p99_delivery_ms[9223372036s] < 1", "max_publish_ms[24h] >= 0", "p99_delivery_ms[10s] == 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGate(s)
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("ParseGate(%q): %v does not wrap ErrInput", s, err)
			}
			return
		}
		again, err := ParseGate(g.Expr)
		if err != nil || again != g {
			t.Fatalf("ParseGate(%q) = %+v; its Expr parses to %+v, %v", s, g, again, err)
		}
		if g.WindowSeconds != 0 {
			if g.WindowSeconds < 1 || g.WindowSeconds > int(MaxWindow/time.Second) || windowable(g, s) != nil {
				t.Fatalf("ParseGate(%q) = %+v: a window it should refuse", s, g)
			}
		}
	})
}

// FuzzReadResult: whatever bytes a result file holds, reading it and
// building a report from it fails cleanly or works; never a panic.
func FuzzReadResult(f *testing.F) {
	for _, name := range []string{"clean.json", "run.part0.json", "ramp.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/3])
	}
	f.Add([]byte(`{"schema":"darktime.swarm/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := resultfile.ReadResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		rep, err := Build(Inputs{Results: []*resultfile.Result{r}})
		if err != nil {
			if !errors.Is(err, ErrInput) {
				t.Fatalf("Build: %v does not wrap ErrInput", err)
			}
			return
		}
		var b bytes.Buffer
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJUnit(&b); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReadInputs: stats snapshots and shadow ledgers are read without a
// panic; a failure wraps ErrInput.
func FuzzReadInputs(f *testing.F) {
	for _, name := range []string{"stats_before.json", "stats_after.json", "shadow.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ReadStats(bytes.NewReader(data)); err != nil && !errors.Is(err, ErrInput) {
			t.Fatalf("ReadStats: %v", err)
		}
		if _, err := ReadShadow(strings.NewReader(string(data))); err != nil && !errors.Is(err, ErrInput) {
			t.Fatalf("ReadShadow: %v", err)
		}
	})
}
