package main

import (
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// TestRunExitStatus runs small scenarios through the real binary, one
// per exit status of `darktime run`: 0 every gate passed (with windowed
// gates, the Markdown summary written and appended to
// GITHUB_STEP_SUMMARY), 1 a gate failed (JUnit names it), 2 a file that
// does not check, 3 a target nothing listens on. (3 for an interrupted
// run: TestRunInterrupted.)
func TestRunExitStatus(t *testing.T) {
	tstest.Long(t, "whole darktime runs of a few seconds")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tmp := t.TempDir()
	unreachable := filepath.Join(tmp, "unreachable.yaml")
	if err := os.WriteFile(unreachable, []byte(`version: 1
name: unreachable
target: {url: `+closed+`}
clients: {count: 5, channels: 1}
publishers: {rate: 5}
phases:
  - {name: steady, duration: 1s}
thresholds:
  - p99_delivery_ms[1s] < 100
outputs: {junit: junit.xml}
limits: {max_duration: 30s}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	step := filepath.Join(tmp, "step-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", step)
	for _, tc := range []struct {
		name, file string
		code       int
		says       []string // in the output
		summary    []string // in --summary-md
	}{
		{"pass", "testdata/gates-small.yaml", 0, []string{"PASS p99_delivery_ms[1s] < 2000: measured", "PASS: 8 gate(s) passed, 0 failed"},
			[]string{"## darktime run gates-small (primary): PASS", "| `phase.steady.deliveries_per_s[1s] > 0` |", "### Ledgers", "| delivery |", "report.html`"}},
		{"gate failed", "testdata/gates-fail.yaml", 1, []string{"gate failed: FAIL deliveries < 1: measured"},
			[]string{"## darktime run gates-fail (primary): FAIL", "| `deliveries < 1` |"}},
		{"bad input", "../../scenario/testdata/abort-on-fail.yaml", 2, []string{"abort_on_fail cannot watch \"lost == 0\""},
			[]string{": BAD INPUT", "abort_on_fail cannot watch"}},
		{"unreachable", unreachable, 3, []string{"target unreachable: no client could subscribe to " + closed},
			[]string{"## darktime run unreachable (primary): UNREACHABLE", "no client could subscribe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(tmp, tc.name)
			md := filepath.Join(tmp, tc.name+".md")
			before, _ := os.ReadFile(step)
			start := time.Now()
			code, out := darktime(t, t.Context(), "run", "--quiet", "--out", dir, "--summary-md", md, tc.file)
			t.Logf("%s: exit %d in %v", tc.name, code, time.Since(start).Round(time.Millisecond))
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, want := range tc.says {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			got, err := os.ReadFile(md)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.summary {
				if !strings.Contains(string(got), want) {
					t.Errorf("summary lacks %q:\n%s", want, got)
				}
			}
			after, _ := os.ReadFile(step)
			if sep := map[bool]string{true: "\n"}[len(before) > 0]; string(after) != string(before)+sep+string(got) {
				t.Errorf("GITHUB_STEP_SUMMARY is not what it was plus the summary:\n%s", after)
			}
		})
	}
	// The failed gate is named in JUnit.
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Type string `xml:"type,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	data, err := os.ReadFile(filepath.Join(tmp, "gate failed", "junit.xml"))
	if err != nil || xml.Unmarshal(data, &suites) != nil || len(suites.Suites) != 1 {
		t.Fatalf("junit.xml (%v):\n%s", err, data)
	}
	if c := suites.Suites[0].Cases[0]; c.Name != "deliveries < 1" || c.Failure == nil || c.Failure.Type != "threshold" {
		t.Errorf("first test case %+v: want the failed gate deliveries < 1", c)
	}
}

// TestRunAbortOnFail runs a scenario of 30 s whose abort_on_fail gate
// (p99 under 1 µs per 2 s window of the phase, watched from 1 s after the
// first publish) can never pass: the runner stops it at the first full
// window after the delay, writes every output marked aborted with the
// gate that aborted it, and exits 1.
func TestRunAbortOnFail(t *testing.T) {
	tstest.Long(t, "a darktime run of a few seconds")
	dir := t.TempDir()
	md := filepath.Join(dir, "summary.md")
	start := time.Now()
	code, out := darktime(t, t.Context(), "run", "--out", dir, "--summary-md", md, "testdata/abort-small.yaml")
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if took > 20*time.Second {
		t.Errorf("the run took %v: the abort did not stop its 30 s phase", took)
	}
	const gate = "phase.steady.p99_delivery_ms[2s] < 0.001"
	if !strings.Contains(out, "abort_on_fail: gate "+gate+" can no longer pass") {
		t.Errorf("no abort line in the progress:\n%s", out)
	}
	r := readReport(t, filepath.Join(dir, "report.json"))
	a := r.Aborted
	if a == nil || a.Gate != gate || a.Window == nil || a.Window.Seconds != 2 || a.Value <= 0.001 || !r.Interrupted {
		t.Fatalf("report: aborted %+v, interrupted %v", a, r.Interrupted)
	}
	var aborting int
	for _, g := range r.Gates {
		if g.Aborted {
			aborting++
			if g.Expr != gate || g.Pass || g.Window == nil || g.Value < a.Value {
				t.Errorf("the aborting gate in the report: %+v (the abort measured %v)", g, a.Value)
			}
		}
	}
	if aborting != 1 {
		t.Errorf("%d gates marked as aborting the run: %+v", aborting, r.Gates)
	}
	// Still measured: deliveries, a balanced ledger, well short of the plan.
	if r.Metrics["deliveries"] == 0 || r.Metrics["unexplained"] != 0 || r.DurationSeconds > 15 {
		t.Errorf("deliveries %v, unexplained %v over %v s", r.Metrics["deliveries"], r.Metrics["unexplained"], r.DurationSeconds)
	}
	t.Logf("aborted at +%vs (delay 1s after the first publish) measuring p99 %v ms in %s; the run lasted %.1f s of about 33 planned, %v deliveries, the command %v",
		a.OffsetSeconds, a.Value, a.Window.Span(), r.DurationSeconds, r.Metrics["deliveries"], took.Round(time.Millisecond))
	for _, f := range []string{"report.json", "report.html", "junit.xml", "swarm.json", "summary.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	for _, want := range []string{`<property name="aborted_by" value="` + xmlEscape(gate) + `">`, `type="abort"`} {
		if !strings.Contains(string(junit), want) {
			t.Errorf("junit.xml lacks %s:\n%s", want, junit)
		}
	}
	summary, _ := os.ReadFile(md)
	for _, want := range []string{": ABORTED\n", "**Aborted early** (abort_on_fail): gate `" + gate + "`", "(aborted the run)"} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if !strings.Contains(string(html), `id="aborted"`) {
		t.Error("the HTML report does not say the run was aborted")
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
