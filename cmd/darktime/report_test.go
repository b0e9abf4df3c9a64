package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reportCmd runs `darktime report ARGS...` in-process.
func reportCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return inProcess(t, append([]string{"report"}, args...)...)
}

func TestReportExitCodes(t *testing.T) {
	const td = "../../report/testdata/"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{td + "clean.json", "-q", "--gate", "lost == 0"}, 0, ""},
		{[]string{td + "clean.json", "-q", "--gate", "p99_delivery_ms < 0.001"}, 1, "FAIL p99_delivery_ms < 0.001: measured"},
		{[]string{td + "run.part0.json", td + "run.part1.json", "-q", "--gate", "lost == 0"}, 1, "FAIL lost == 0: measured 3"},
		{[]string{td + "clean.json", "--gate", "bogus < 1"}, 2, `unknown metric "bogus"`},
		{[]string{td + "clean.json", "-q", "--gate", "p99_delivery_ms[2s] < 50", "--gate", "error_rate[3s] < 0.01"}, 0, ""},
		{[]string{td + "run.part0.json", td + "run.part1.json", "-q", "--gate", "p99_delivery_ms[2s] < 50"}, 1, "FAIL p99_delivery_ms[2s] < 50: measured 80.063 in the worst window, +3s to +5s"},
		{[]string{td + "clean.json", "--gate", "lost[10s] == 0"}, 2, "lost does not take a window"},
		{[]string{td + "clean.json", "--gate", "p99_delivery_ms[100ms] < 5"}, 2, "shorter than 1s"},
		{[]string{td + "missing.json"}, 2, "no such file"},
		{[]string{td + "run.part0.json", td + "run.part0.json"}, 2, ""},
		{[]string{"compare", td + "base-1.json", td + "base-2.json", td + "base-3.json", "--", td + "cand-1.json", td + "cand-2.json", td + "cand-3.json"}, 1, ""},
	} {
		code, out := reportCmd(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("darktime report %v: exit %d, want %d; output:\n%s\nwant it to hold %q", c.args, code, c.code, out, c.want)
		}
	}
}

// TestReportSummaryMarkdown: --summary-md writes the Markdown summary, and
// with GITHUB_STEP_SUMMARY set it is appended there too.
func TestReportSummaryMarkdown(t *testing.T) {
	dir := t.TempDir()
	step := filepath.Join(dir, "step-summary.md")
	if err := os.WriteFile(step, []byte("## an earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_STEP_SUMMARY", step)
	md := filepath.Join(dir, "summary.md")
	code, out := reportCmd(t, "../../report/testdata/run.part0.json", "../../report/testdata/run.part1.json", "-q",
		"--gate", "p99_delivery_ms[2s] < 50", "--html", filepath.Join(dir, "r.html"), "--summary-md", md)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the gate fails):\n%s", code, out)
	}
	got, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{": FAIL\n", "| `p99_delivery_ms[2s] < 50` | 80.063 | +3s to +5s", "### Ledgers", "### Latency (ms)", "r.html`"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	appended, _ := os.ReadFile(step)
	if string(appended) != "## an earlier step\n\n"+string(got) {
		t.Errorf("GITHUB_STEP_SUMMARY:\n%s", appended)
	}
}
