package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Props    []junitProp `xml:"properties>property,omitempty"`
	Cases    []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the gates as JUnit XML: one testsuite for the run,
// one testcase per gate (a failed gate is a <failure> naming the measured
// value, and for a windowed gate its worst window; the gate that aborted
// the run has type "abort"), then one per ledger (classname darktime.ledgers, failed when
// something is unexplained, its causes in system-out). A scenario run's suite is
// named after the scenario.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{
		Name: "darktime.report " + r.RunID, Tests: len(r.Gates), Time: fmt.Sprintf("%.3f", r.DurationSeconds),
		Props: []junitProp{{"run_id", r.RunID}, {"profile", r.Profile}, {"target", r.Target}, {"schema", Schema}},
	}
	if sc := r.Scenario; sc != nil {
		// CI lists suites by name: the scenario (and target label) says
		// more than a run id.
		name := sc.Name
		if sc.Label != "" {
			name += "/" + sc.Label
		}
		s.Name = "darktime.report " + name + " " + r.RunID
		s.Props = append(s.Props, junitProp{"scenario", sc.Name})
		if sc.Label != "" {
			s.Props = append(s.Props, junitProp{"scenario_label", sc.Label})
		}
		if sc.File != "" {
			s.Props = append(s.Props, junitProp{"scenario_file", sc.File})
		}
	}
	if r.Interrupted {
		s.Props = append(s.Props, junitProp{"interrupted", "true"})
	}
	if a := r.Aborted; a != nil {
		s.Props = append(s.Props, junitProp{"aborted_by", a.Gate}, junitProp{"aborted_at_offset_seconds", formatNum(a.OffsetSeconds)})
	}
	for _, g := range r.Gates {
		c := junitCase{Name: g.Expr, Classname: "darktime.gates", Time: "0", SystemOut: g.String()}
		if !g.Pass {
			s.Failures++
			typ, text := "threshold", fmt.Sprintf("%s measured %s, threshold %s %s", g.Subject(), formatNum(g.Value), g.Op, formatNum(g.Threshold))
			if g.Window != nil {
				text += fmt.Sprintf("; worst window %s (%s to %s), %d s, of %d judged",
					g.Window.Span(), g.Window.Start.Format(time.RFC3339), g.Window.End.Format(time.RFC3339), g.Window.Seconds, g.Window.Windows)
			}
			if g.Note != "" {
				text = g.Subject() + ": " + g.Note
			}
			if g.Aborted && r.Aborted != nil {
				typ = "abort"
				text += "; it stopped the run early: " + r.Aborted.String()
			}
			c.Failure = &junitFailure{Message: g.String(), Type: typ, Text: text}
		}
		s.Cases = append(s.Cases, c)
	}
	// One case per ledger: it fails when something is unexplained, and
	// its output carries the causes, so CI shows why a ledger is off.
	for _, l := range r.Ledgers {
		var out strings.Builder
		fmt.Fprintf(&out, "%s: +%d -%d = %d: %s", l.Name, l.Credit, l.Debit, l.Balance, l.Verdict)
		if sm := l.Summary(); sm != "" {
			out.WriteString(": " + sm)
		}
		for _, e := range l.UnexplainedBy {
			fmt.Fprintf(&out, "\nunexplained %s %d: %s", e.Cause, e.Count, e.Evidence)
		}
		for _, e := range l.Explained {
			fmt.Fprintf(&out, "\nexplained %s %d: %s", e.Cause, e.Count, e.Evidence)
		}
		c := junitCase{Name: l.Name, Classname: "darktime.ledgers", Time: "0", SystemOut: out.String()}
		if !l.Balanced {
			s.Failures++
			c.Failure = &junitFailure{Message: fmt.Sprintf("%s: %s: %s", l.Name, l.Verdict, l.Summary()), Type: "ledger", Text: out.String()}
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
