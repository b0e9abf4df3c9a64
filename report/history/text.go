package history

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the analysis as "darktime.history-analysis/v1" JSON.
func (a *Analysis) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(a)
}

// WriteText writes the analysis for a terminal: per series, per metric,
// its change points with their magnitude and confidence, then the method.
func (a *Analysis) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(a.Series) == 0 {
		b.WriteString("the history has no run that matches\n")
	}
	for i, s := range a.Series {
		if i > 0 {
			b.WriteString("\n")
		}
		writeSeries(&b, s)
	}
	m := a.Method
	fmt.Fprintf(&b, "\nmethod: %s (%d shuffles, seed %d); a change needs p <= %s and %d runs on each side; shifts under %s%% are not flagged; a regression among the last %d runs stands\n",
		m.Name, m.Permutations, m.Seed, num(m.PValue), m.MinSize, num(m.MinRelative*100), m.Recent)
	for _, n := range a.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(a.Regressions) > 0 {
		fmt.Fprintf(&b, "\n%d standing regression(s): %s\n", len(a.Regressions), strings.Join(a.Regressions, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSeries(b *strings.Builder, s SeriesAnalysis) {
	fmt.Fprintf(b, "== %s: %d run(s)", s.Series, s.Runs)
	if s.Runs > 0 {
		fmt.Fprintf(b, " from %s to %s", s.First.Format("2006-01-02 15:04"), s.Last.Format("2006-01-02 15:04"))
	}
	if s.Interrupted > 0 {
		fmt.Fprintf(b, ", %d interrupted left out", s.Interrupted)
	}
	b.WriteString(" ==\n")
	switch len(s.Machines) {
	case 0:
	case 1:
		fmt.Fprintf(b, "machine: %s\n", s.Machines[0])
	default:
		fmt.Fprintf(b, "%d kinds of machine (a change where the machine changed may be the machine's):\n", len(s.Machines))
		for _, m := range s.Machines {
			fmt.Fprintf(b, "  %s\n", m)
		}
	}
	for _, m := range s.Metrics {
		dir := ""
		if m.Better != "" {
			dir = " (" + m.Better + " is better)"
		}
		fmt.Fprintf(b, "%s%s: %d run(s), last %s, median %s", m.Metric, dir, len(m.Values), num(m.Last), num(m.Median))
		if len(m.Changes) == 0 {
			b.WriteString(", no change\n")
			continue
		}
		b.WriteString("\n")
		for _, c := range m.Changes {
			writeChange(b, c, len(m.Values))
		}
	}
}

func writeChange(b *strings.Builder, c Change, runs int) {
	verdict := c.Verdict
	switch c.Verdict {
	case ChangeRegression:
		verdict = "REGRESSION"
	case ChangeSmall:
		verdict = "shift under the minimum"
	}
	rel := ""
	if c.Before != 0 {
		rel = fmt.Sprintf(" (%+.1f%%)", c.Relative*100)
	}
	at := c.RunID + commitNote(c.Commit) + ", " + c.Time.Format("2006-01-02 15:04")
	fmt.Fprintf(b, "  %s at run %d/%d [%s]: %s -> %s%s, mean of %d run(s) before and %d after; p %s (confidence %s%%)",
		verdict, c.Index+1, runs, at, num(c.Before), num(c.After), rel, c.NBefore, c.NAfter, num(c.PValue), num(c.Confidence*100))
	if c.MachineChanged {
		b.WriteString("; the machine changed here")
	}
	if c.Standing {
		b.WriteString("; STANDING")
	}
	b.WriteString("\n")
}
