package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Verdicts of a report (Report.Verdict).
const (
	VerdictPass        = "PASS"
	VerdictFail        = "FAIL"
	VerdictAborted     = "ABORTED"
	VerdictInterrupted = "INTERRUPTED"
)

// Verdict is the report's word for CI: FAIL when a gate failed, ABORTED
// when an abort_on_fail gate failed and stopped the run early,
// INTERRUPTED when every gate passed on a run stopped before its end (the
// gates saw part of it), else PASS.
func (r *Report) Verdict() string {
	failed := 0
	for _, g := range r.Gates {
		if !g.Pass {
			failed++
		}
	}
	switch {
	case r.Aborted != nil:
		return VerdictAborted
	case failed > 0:
		return VerdictFail
	case r.Interrupted:
		return VerdictInterrupted
	}
	return VerdictPass
}

// MarkdownOptions shape WriteMarkdown's section.
type MarkdownOptions struct {
	// Title heads the section (default: the scenario and target label, or
	// the run id).
	Title string
	// HTML is where the HTML report is, a path or a URL ("" says none).
	HTML string
	// Notes are added as a list (the runner's notes on the run).
	Notes []string
	// Verdict, when set, replaces Report.Verdict: the caller knows more
	// (darktime run: the target was unreachable).
	Verdict string
}

// WriteMarkdown writes a GitHub-flavoured Markdown summary of the report
// — for $GITHUB_STEP_SUMMARY or a pull-request comment: the verdict, the
// gates with their measured values (and worst windows), the ledgers with
// their explained and unexplained kinds, the latency table and where the
// HTML report is. Table cells are escaped (pipes, markup), so that no
// value can break the table.
func (r *Report) WriteMarkdown(w io.Writer, o MarkdownOptions) error {
	var b strings.Builder
	title := o.Title
	if title == "" {
		title = "darktime report " + r.RunID
		if sc := r.Scenario; sc != nil {
			title = "darktime run " + sc.Name
			if sc.Label != "" {
				title += " (" + sc.Label + ")"
			}
		}
	}
	verdict := r.Verdict()
	if o.Verdict != "" {
		verdict = o.Verdict
	}
	fmt.Fprintf(&b, "## %s: %s\n\n", mdText(title), verdict)
	passed, failed := 0, 0
	for _, g := range r.Gates {
		if g.Pass {
			passed++
		} else {
			failed++
		}
	}
	fmt.Fprintf(&b, "**%s**: %d gate(s) passed, %d failed. Run `%s`, %s %s, %s, %.1f s.\n",
		verdict, passed, failed, mdCode(r.RunID), mdText(r.Profile), mdText(r.Target), r.Started.Format(time.RFC3339), r.DurationSeconds)
	if a := r.Aborted; a != nil {
		in := ""
		if w := a.Window; w != nil {
			in = fmt.Sprintf(" in the window %s (%s–%s UTC)", w.Span(), w.Start.Format("15:04:05"), w.End.Format("15:04:05"))
		}
		fmt.Fprintf(&b, "\n> **Aborted early** (abort_on_fail): gate `%s` failed at +%ss, measured %s%s. Everything measured until then is reported.\n",
			mdCode(a.Gate), formatNum(a.OffsetSeconds), formatNum(a.Value), in)
	} else if r.Interrupted {
		b.WriteString("\n> **Interrupted**: the run stopped before its end; the gates saw part of it.\n")
	}
	if len(o.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range o.Notes {
			fmt.Fprintf(&b, "- %s\n", mdText(n))
		}
	}
	if len(r.Gates) > 0 {
		b.WriteString("\n### Gates\n\n| gate | measured | worst window | verdict |\n|---|---:|---|---|\n")
		for _, g := range r.Gates {
			gate := "`" + mdCode(g.Expr) + "`"
			if g.Default {
				gate += " (default)"
			}
			measured := formatNum(g.Value)
			if g.Note != "" {
				measured = mdText(g.Note)
			}
			window := ""
			if wr := g.Window; wr != nil {
				window = fmt.Sprintf("%s (%s–%s UTC, %d s)", wr.Span(), wr.Start.Format("15:04:05"), wr.End.Format("15:04:05"), wr.Seconds)
			}
			v := "pass"
			if !g.Pass {
				v = "**FAIL**"
			}
			if g.Aborted {
				v += " (aborted the run)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", gate, measured, window, v)
		}
	}
	if len(r.Ledgers) > 0 {
		b.WriteString("\n### Ledgers\n\n+1 expected, −1 observed: every difference has a cause, or it is unexplained.\n\n")
		b.WriteString("| ledger | +1 | −1 | balance | verdict | explained | unexplained |\n|---|---:|---:|---:|---|---|---|\n")
		for _, l := range r.Ledgers {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s |\n", mdText(l.Name), l.Credit, l.Debit, l.Balance,
				mdText(l.Verdict), mdKinds(l.Explained), mdKinds(l.UnexplainedBy))
		}
		var evidence []string
		for _, l := range r.Ledgers {
			for _, e := range l.UnexplainedBy {
				evidence = append(evidence, fmt.Sprintf("- %s, unexplained `%s` %d: %s", mdText(l.Name), mdCode(e.Cause), e.Count, mdText(e.Evidence)))
			}
		}
		if len(evidence) > 0 {
			b.WriteString("\n" + strings.Join(evidence, "\n") + "\n")
		}
	}
	b.WriteString("\n### Latency (ms)\n\n| | count | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range []string{"delivery", "connect", "publish"} {
		l, ok := r.Latency[name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", name, l.Count, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
	}
	switch {
	case strings.Contains(o.HTML, "://"):
		fmt.Fprintf(&b, "\nHTML report: <%s>\n", strings.NewReplacer("<", "%3C", ">", "%3E", " ", "%20").Replace(o.HTML))
	case o.HTML != "":
		fmt.Fprintf(&b, "\nHTML report: `%s`\n", mdCode(o.HTML))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdKinds lists causes with their counts, "silent_gap 3, duplicated 1".
func mdKinds(list []Explanation) string {
	var parts []string
	for _, e := range list {
		loss := ""
		if e.Loss {
			loss = " (lost)"
		}
		parts = append(parts, fmt.Sprintf("`%s` %d%s", mdCode(e.Cause), e.Count, loss))
	}
	return strings.Join(parts, ", ")
}

// mdText escapes free text for a Markdown table cell or list item: the
// characters that start markup, pipes (which would end the cell) and
// line breaks (which would end the row).
var mdText = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "&", "&amp;", "|", `\|`,
	"#", `\#`, "\r\n", " ", "\n", " ", "\r", " ",
).Replace

// mdCode escapes text for a code span in a table cell: a pipe still ends
// the cell there unless escaped, and a backtick would end the span.
var mdCode = strings.NewReplacer("|", `\|`, "`", "'", "\r\n", " ", "\n", " ", "\r", " ").Replace
