package canary

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/darktime/darktime/shadow/judge"
)

// printVerdict shows a verdict: a hold on one line, the verdict that
// ends a step (or a blocked promotion) as a block with every check.
func (c *Canary) printVerdict(i int, sr *StepResult, v judge.Verdict) {
	if v.Decision == judge.Hold {
		fmt.Fprintf(c.out, "  %s: hold (judgement %d): %s\n", sr.Name, sr.Judgements, v.Reason)
		return
	}
	fmt.Fprintf(c.out, "  %s: %s against the %s (epoch %d, judgement %d): %s\n", sr.Name, v.Decision, v.Reference, sr.Epoch, sr.Judgements, v.Reason)
	writeChecks(c.out, v.Checks)
	if len(v.Noise) > 0 {
		fmt.Fprintf(c.out, "  noise (baseline against primary, not judged):\n")
		writeChecks(c.out, v.Noise)
	}
}

// WriteVerdict writes a verdict's checks as a table: metric, decision,
// value, threshold, test, p-value, sample sizes, reason.
func WriteVerdict(w io.Writer, v judge.Verdict) {
	fmt.Fprintf(w, "%s against the %s: %s\n", v.Decision, v.Reference, v.Reason)
	writeChecks(w, v.Checks)
}

func writeChecks(w io.Writer, checks []judge.Check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    check\tdecision\tvalue\tthreshold\ttest\tp\tn cand\tn ref\treason")
	for _, ch := range checks {
		p := "-"
		if ch.P >= 0 {
			p = strconv.FormatFloat(ch.P, 'g', 3, 64)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%.4g\t%g\t%s\t%s\t%d\t%d\t%s\n",
			ch.Name, ch.Decision, ch.Value, ch.Threshold, ch.Test, p, ch.N1, ch.N2, ch.Reason)
	}
	_ = tw.Flush()
}

func (c *Canary) printEnd(res *Result) {
	fmt.Fprintf(c.out, "canary %s: %s\n", res.Outcome, res.Reason)
}
