package runner

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/darktime/darktime/report"
)

// WriteSummary writes the terminal summary: each target's report, its
// notes, the comparison and where the files are.
func (o *Outcome) WriteSummary(w io.Writer) error {
	var b strings.Builder
	for _, t := range o.Targets {
		fmt.Fprintf(&b, "\n== %s ==\n", t.Label)
		if t.Report != nil {
			if err := t.Report.WriteText(&b); err != nil {
				return err
			}
		}
		for _, n := range t.Notes {
			fmt.Fprintf(&b, "note: %s\n", n)
		}
		passed, failed := 0, 0
		for _, g := range t.Gates {
			if g.Pass {
				passed++
			} else {
				failed++
			}
		}
		if len(t.Gates) > 0 {
			verdict := "PASS"
			switch {
			case t.Verdict == VerdictUnreachable:
				verdict = "UNREACHABLE (the target could not be reached: see the notes)"
			case t.Verdict == VerdictInterrupted:
				verdict = "INTERRUPTED (the gates saw part of the run)"
			case t.Report != nil && t.Report.Aborted != nil:
				verdict = "ABORTED (abort_on_fail: " + t.Report.Aborted.String() + "), FAIL"
			case failed > 0:
				verdict = "FAIL"
			case t.Report != nil && t.Report.Interrupted:
				verdict = "INTERRUPTED (the gates saw part of the run)"
			}
			fmt.Fprintf(&b, "\n%s: %d gate(s) passed, %d failed\n", verdict, passed, failed)
		}
		for _, f := range t.Files {
			what := "report"
			switch filepath.Ext(f) {
			case ".html":
				what = "HTML report"
			case ".xml":
				what = "JUnit"
			case ".json":
				what = "JSON report"
			}
			fmt.Fprintf(&b, "%-12s %s\n", what+":", f)
		}
	}
	if o.Comparison != nil {
		b.WriteString("\n== comparison (" + o.Targets[0].Label + " → " + o.Targets[1].Label + ") ==\n")
		if err := o.Comparison.WriteText(&b); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%-12s %s\n", "comparison:", filepath.Join(o.Dir, "comparison.json"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Failed lists the gates that failed, for one line each on stderr.
func (o *Outcome) Failed() []report.GateResult {
	var out []report.GateResult
	for _, t := range o.Targets {
		for _, g := range t.Gates {
			if !g.Pass {
				out = append(out, g)
			}
		}
	}
	return out
}

// WriteMarkdown writes each target's Markdown summary (report.WriteMarkdown:
// verdict, gates, ledgers, latency, where the HTML report is), with the
// run's notes, for --summary-md and $GITHUB_STEP_SUMMARY.
func (o *Outcome) WriteMarkdown(w io.Writer) error {
	for i, t := range o.Targets {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if t.Report == nil {
			if _, err := fmt.Fprintf(w, "## darktime run: %s: no report\n\n%s\n", t.Label, strings.Join(t.Notes, "\n\n")); err != nil {
				return err
			}
			continue
		}
		html := ""
		for _, f := range t.Files {
			if filepath.Ext(f) == ".html" {
				html = f
			}
		}
		if err := t.Report.WriteMarkdown(w, report.MarkdownOptions{HTML: html, Notes: t.Notes, Verdict: t.Verdict}); err != nil {
			return err
		}
	}
	return nil
}

// WriteMarkdownError is the Markdown summary of a scenario file that gave
// no report: it did not load, or its target could not be reached.
func WriteMarkdownError(w io.Writer, file, verdict string, err error) error {
	fence := "```"
	_, werr := fmt.Fprintf(w, "## darktime run %s: %s\n\n%s\n%s\n%s\n", file, verdict, fence, strings.ReplaceAll(err.Error(), fence, "` ` `"), fence)
	return werr
}
