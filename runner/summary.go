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
