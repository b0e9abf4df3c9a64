package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented "darktime.report/v1" JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the terminal summary: the scenario when there is one,
// run, latency, throughput, the scenario's phases and faults, every ledger
// with where it does not balance, and the gates.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	r.writeScenarioHeader(&b)
	fmt.Fprintf(&b, "run %s: %s %s, %d part(s), %s to %s (%.1fs)", r.RunID, r.Profile, r.Target, r.Parts,
		r.Started.Format(time.RFC3339), r.Ended.Format(time.RFC3339), r.DurationSeconds)
	if r.Interrupted {
		b.WriteString(", INTERRUPTED")
	}
	if r.Aborted != nil {
		fmt.Fprintf(&b, "\nABORTED early (abort_on_fail): %s", r.Aborted)
	}
	b.WriteString("\n\nlatency (ms)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\tp50\tp90\tp99\tp99.9\tp99.99\tmax\tmean\t")
	for _, name := range histNames {
		l, ok := r.Latency[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, l.Count, ms(l.P50), ms(l.P90), ms(l.P99),
			ms(l.P999), ms(l.P9999), ms(l.Max), ms(l.Mean))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nthroughput  %s deliveries, %s/s mean, %s/s peak; %s publishes, %s failed\n",
		r.num("deliveries"), r.num("deliveries_per_s"), r.num("peak_deliveries_per_s"), r.num("publishes"), r.num("publish_errors"))
	fmt.Fprintf(&b, "connections %s peak, %s at the end; %s connects, %s reconnects, %s drops, %s clients failed\n",
		r.num("connections_peak"), r.num("connections_end"), r.num("connects"),
		r.num("reconnects"), r.num("drops"), r.num("clients_failed"))
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		fmt.Fprintf(&b, "errors      %s (error rate %s)\n", strings.Join(parts, ", "), r.num("error_rate"))
	}
	r.writePhasesText(&b)
	r.writeFaultsText(&b)
	b.WriteString("\nledgers (+1 expected, -1 observed; every difference has a cause, or it is unexplained)\n")
	for _, l := range r.Ledgers {
		state := l.Verdict
		if state == "" { // a report built before verdicts
			state = map[bool]string{true: VerdictBalanced, false: VerdictNotBalanced}[l.Balanced]
		}
		summary := ""
		if s := l.Summary(); s != "" {
			summary = ": " + s
		}
		fmt.Fprintf(&b, "  %-12s %s: +%d -%d = %d%s\n", state, l.Name, l.Credit, l.Debit, l.Balance, summary)
		for _, e := range l.UnexplainedBy {
			fmt.Fprintf(&b, "      unexplained %s %d: %s\n", e.Cause, e.Count, e.Evidence)
		}
		for _, e := range l.Explained {
			loss := ""
			if e.Loss {
				loss = " (lost)"
			}
			fmt.Fprintf(&b, "      explained %s %d%s: %s\n", e.Cause, e.Count, loss, e.Evidence)
		}
		for _, im := range l.ByScope {
			causes := ""
			if len(im.Causes) > 0 {
				causes = fmt.Sprintf(" causes: %s; unexplained %d", kindList(im.Causes), im.Unexplained)
			}
			fmt.Fprintf(&b, "      %s: +%d -%d = %d%s%s\n", im.Scope, im.Credit, im.Debit, im.Balance, kindsText(im.Kinds), causes)
		}
		if l.MoreScopes > 0 {
			fmt.Fprintf(&b, "      ... and %d more scopes\n", l.MoreScopes)
		}
		for i, im := range l.Windows {
			if i == 5 {
				fmt.Fprintf(&b, "      ... and %d more windows (JSON has 20 worst)\n", len(l.Windows)-5+l.MoreWindows)
				break
			}
			fmt.Fprintf(&b, "      %s at %s: +%d -%d = %d%s\n", im.Scope, time.Unix(im.Window, 0).UTC().Format("15:04:05"),
				im.Credit, im.Debit, im.Balance, kindsText(im.Kinds))
		}
		if l.Note != "" {
			fmt.Fprintf(&b, "      (%s)\n", l.Note)
		}
	}
	if len(r.Gates) > 0 {
		b.WriteString("\ngates\n")
		for _, g := range r.Gates {
			fmt.Fprintf(&b, "  %s\n", g)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeScenarioHeader names the scenario the run belongs to, when any.
func (r *Report) writeScenarioHeader(b *strings.Builder) {
	sc := r.Scenario
	if sc == nil {
		return
	}
	fmt.Fprintf(b, "scenario %s", sc.Name)
	if sc.Description != "" {
		fmt.Fprintf(b, ": %s", sc.Description)
	}
	b.WriteString("\n")
	if where := sc.where(); where != "" {
		fmt.Fprintf(b, "         %s\n", where)
	}
}

// where is the scenario's target, label and file on one line.
func (sc *Scenario) where() string {
	var parts []string
	switch {
	case sc.Label != "" && sc.Target != "":
		parts = append(parts, sc.Label+": "+sc.Target)
	case sc.Label != "":
		parts = append(parts, sc.Label)
	case sc.Target != "":
		parts = append(parts, sc.Target)
	}
	if sc.File != "" {
		parts = append(parts, sc.File)
	}
	return strings.Join(parts, ", ")
}

// phaseRow is a phase as the text and HTML tables show it.
type phaseRow struct {
	PhaseReport
	From, Duration, Rate string
}

// phaseRows joins each phase of the scenario with what it measured.
func (r *Report) phaseRows() []phaseRow {
	if r.Scenario == nil || len(r.Phases) == 0 || len(r.Scenario.Phases) != len(r.Phases) {
		return nil
	}
	var rows []phaseRow
	first := r.Scenario.Phases[0].Start
	for i, p := range r.Scenario.Phases {
		row := phaseRow{PhaseReport: r.Phases[i], From: "?", Duration: secs(p.Duration), Rate: formatNum(p.RatePerS)}
		if !p.Start.IsZero() && !first.IsZero() {
			row.From = "+" + secs(p.Start.Sub(first))
		}
		if p.HotChannel != nil {
			row.Rate += fmt.Sprintf(" (hot ch %d)", *p.HotChannel)
		}
		rows = append(rows, row)
	}
	return rows
}

// secs writes a duration in seconds, to the millisecond: "90s", "2.5s".
func secs(d time.Duration) string { return formatNum(round3(d.Seconds())) + "s" }

func (r *Report) writePhasesText(b *strings.Builder) {
	rows := r.phaseRows()
	if len(rows) == 0 {
		return
	}
	b.WriteString("\nphases (seconds of the run that overlap each; latency in ms)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfrom\tduration\trate/s\tdeliveries\tdeliveries/s\tp50\tp99\tmax\terrors\tpub failed\tlost\t")
	for _, p := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", p.Name, p.From, p.Duration, p.Rate,
			p.Deliveries, formatNum(p.DeliveriesPerS), ms(p.P50), ms(p.P99), ms(p.Max), p.Errors, p.PublishesFailed, p.Lost)
	}
	tw.Flush()
}

func (r *Report) writeFaultsText(b *strings.Builder) {
	if r.Scenario == nil || len(r.Scenario.Faults) == 0 {
		return
	}
	b.WriteString("\nfaults (from the start of the first phase)\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, f := range r.Scenario.Faults {
		detail := f.Detail
		if f.Error != "" {
			detail = strings.TrimSpace(detail + " (NOT INJECTED: " + f.Error + ")")
		}
		switch r := f.Recovery; {
		case r == nil:
		case r.Done:
			detail += "; recovered after " + secs(r.After)
		default:
			detail += "; NOT RECOVERED (watched " + secs(r.After) + ")"
		}
		fmt.Fprintf(tw, "  +%s\t%s\t%s\n", secs(f.Offset), f.Kind, detail)
	}
	tw.Flush()
}

func ms(v float64) string { return fmt.Sprintf("%.3f", v) }

func round6(v float64) float64 { return float64(int64(v*1e6+0.5)) / 1e6 }

func kindsText(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
