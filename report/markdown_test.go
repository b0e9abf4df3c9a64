package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMarkdownGolden: the summary of the golden faulty run (a windowed
// gate among its gates), and of a scenario run an abort_on_fail gate
// stopped early.
func TestMarkdownGolden(t *testing.T) {
	t.Parallel()
	plain := faultyReport(t)
	gates, err := ParseGates([]string{"p99_delivery_ms[2s] < 50", "lost == 0", "error_rate[3s] < 0.001", "server_dropped <= 3", "p99_publish_ms[2s] < 10"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Evaluate(gates); err != nil {
		t.Fatal(err)
	}
	aborted := scenarioReport(t)
	aborted.Interrupted = true
	aborted.SetAborted(&Abort{Gate: "phase.spike.p99_delivery_ms[1s] < 50", At: at(5), Value: 80.063,
		Window: &WindowResult{Start: at(4), End: at(5), Seconds: 1, Windows: 1}})
	if _, err := aborted.Evaluate(gatesOf(t, "lost == 0", "phase.spike.p99_delivery_ms[1s] < 50")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    *Report
		o    MarkdownOptions
	}{
		{"summary.md", plain, MarkdownOptions{HTML: "results/golden/report.html"}},
		{"scenario-summary.md", aborted, MarkdownOptions{HTML: "https://ci.example/artifacts/report.html", Notes: []string{"a node was killed: its counters died with it | so the servers' ledgers are left out"}}},
	} {
		var b bytes.Buffer
		if err := tc.r.WriteMarkdown(&b, tc.o); err != nil {
			t.Fatal(err)
		}
		checkMarkdownTables(t, tc.name, b.String())
		golden(t, tc.name, b.Bytes())
	}
	if v := plain.Verdict(); v != VerdictFail {
		t.Errorf("verdict %s, want FAIL", v)
	}
	if v := aborted.Verdict(); v != VerdictAborted {
		t.Errorf("verdict %s, want ABORTED", v)
	}
	if g := aborted.Gates[1]; !g.Aborted || aborted.Gates[0].Aborted {
		t.Errorf("the aborting gate is not the one marked: %+v", aborted.Gates)
	}
}

func gatesOf(t *testing.T, exprs ...string) []Gate {
	t.Helper()
	g, err := ParseGates(exprs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// checkMarkdownTables checks that every row of every table has as many
// cells as its header: an unescaped pipe in a value would add one.
func checkMarkdownTables(t *testing.T, name, md string) {
	t.Helper()
	cells := func(row string) int {
		n := 0
		for i := 1; i < len(row); i++ {
			if row[i] == '|' && row[i-1] != '\\' {
				n++
			}
		}
		return n
	}
	want := 0
	for i, line := range strings.Split(md, "\n") {
		switch {
		case !strings.HasPrefix(line, "|"):
			want = 0
		case want == 0:
			want = cells(line)
		case cells(line) != want:
			t.Errorf("%s:%d: %d cells, the table has %d: %s", name, i+1, cells(line), want, line)
		}
	}
}

// TestMarkdownEscapes: a value with pipes, markup and line breaks stays
// in its cell.
func TestMarkdownEscapes(t *testing.T) {
	t.Parallel()
	r := faultyReport(t)
	r.Ledgers[0].Name = "a|b *c* <d>\nnext"
	r.Ledgers[0].UnexplainedBy = append(r.Ledgers[0].UnexplainedBy, Explanation{Cause: "x|y`z", Count: 1, Evidence: "pipe | and [link](http://x) _under_"})
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b, MarkdownOptions{Title: "t | <script>", HTML: "dir with | pipe/report.html"}); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	checkMarkdownTables(t, "escaped", md)
	for _, want := range []string{`a\|b \*c\* &lt;d&gt; next`, "`x\\|y'z`", `pipe \| and \[link\](http://x) \_under\_`, "## t \\| &lt;script&gt;", "`dir with \\| pipe/report.html`"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

// TestRequestMarkdown: `darktime report` writes the summary to its file
// and appends it to the step summary, after what was there.
func TestRequestMarkdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := writeResult(t, synth{runID: "md", channels: 2, seconds: 3}.part(t, 0, 1))
	md, step := filepath.Join(dir, "summary.md"), filepath.Join(dir, "step.md")
	if err := os.WriteFile(step, []byte("# earlier step\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rq := Request{Paths: Paths{Results: []string{res}}, Gates: []string{"p99_delivery_ms[1s] < 50"}, HTML: filepath.Join(dir, "r.html"),
		Markdown: md, AppendMarkdown: []string{step}}
	if err := (Files{}).Run(t.Context(), rq); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(md)
	if err != nil || !strings.HasPrefix(string(got), "## darktime report md: PASS\n") || !strings.Contains(string(got), "`p99_delivery_ms[1s] < 50`") {
		t.Fatalf("summary (%v):\n%s", err, got)
	}
	appended, _ := os.ReadFile(step)
	if want := "# earlier step\n\n" + string(got); string(appended) != want {
		t.Errorf("step summary:\n%s\nwant:\n%s", appended, want)
	}
}
