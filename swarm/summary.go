package swarm

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// WriteSummary writes the terminal summary of a run (`darktime swarm`):
// clients, publishes, the ledger and its causes, delivery latency, the
// client's own cost, errors, and a warning when the data could not be
// read.
func WriteSummary(w io.Writer, res *Result) {
	t := res.Ledger.Totals()
	d := res.Summary[HistDelivery]
	fmt.Fprintf(w, "run %s (%s, %s)  parts %d\n", res.RunID, res.Profile, res.Target, len(res.Parts))
	if missing := res.Missing(); len(missing) > 0 {
		fmt.Fprintf(w, "INCOMPLETE: parts %v of %d missing; the figures below cover the others only\n", missing, missing[0].Count)
	}
	writeClientLines(w, res)
	fmt.Fprintf(w, "publishes attempted %d  ok %d  failed %d\n", res.Publish.Attempted, res.Publish.OK, res.Publish.Failed)
	fmt.Fprintf(w, "ledger    owed %d  received %d  lost %d  duplicated %d  reordered %d  late %d  balance %d\n",
		t.Credit, t.Debit, t.Lost, t.Duplicated, t.Reordered, t.Late, t.Balance())
	fmt.Fprintf(w, "          note: %s\n", reorderedNote)
	writeAttributionLines(w, res.Attribution)
	fmt.Fprintf(w, "delivery  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (%d events)\n", d.P50, d.P90, d.P99, d.P999, d.Max, d.Count)
	for _, r := range res.Resources {
		fmt.Fprintf(w, "part %d    client CPU %.2f µs/event  RSS %.1f KiB per idle connection\n", r.Part, r.CPUMicrosPerEvt, r.RSSPerConnKiB)
	}
	if len(res.Errors) > 0 {
		fmt.Fprintf(w, "errors    %s\n", formatCounts(res.Errors))
	}
	if f := res.ExtractFailure; f != nil {
		fmt.Fprintf(w, "WARNING   extract: %s\n", f)
	}
}

func writeClientLines(w io.Writer, res *Result) {
	c := res.Clients
	fmt.Fprintf(w, "clients   planned %d  connected %d  connects %d  reconnects %d  drops %d  storm cuts %d  churned %d  failed %d\n",
		c.Planned, c.Connected, c.Connects, c.Reconnects, c.Drops, c.StormCuts, c.Churned, c.Failed)
	if c.SlowClients > 0 || c.Failovers > 0 {
		fmt.Fprintf(w, "          slow clients %d  failovers %d\n", c.SlowClients, c.Failovers)
	}
	if n := c.Renewals; n > 0 || res.Errors["auth_unauthorized"]+res.Errors["auth_forbidden"] > 0 {
		fmt.Fprintf(w, "auth      renewals %d (streams ended by darktime.renew, resumed with a fresh token)  refused 401 %d  403 %d\n",
			n, res.Errors["auth_unauthorized"], res.Errors["auth_forbidden"])
	}
}

func writeAttributionLines(w io.Writer, a Attribution) {
	if len(a.Lost) > 0 || len(a.Extra) > 0 {
		orNone := func(m map[string]int64) string {
			if len(m) == 0 {
				return "none"
			}
			return formatCounts(m)
		}
		fmt.Fprintf(w, "causes    lost: %s  extra: %s  (darktime report says which are explained)\n", orNone(a.Lost), orNone(a.Extra))
	}
	if a.Resumes != (ResumeCounts{}) || a.Hangups != (HangupCounts{}) {
		fmt.Fprintf(w, "resumes   with id %d  without id %d  replayed %d  gapped %d;  hang-ups storm %d  churn %d  stop %d  discarded %d  timed out %d\n",
			a.Resumes.WithID, a.Resumes.NoID, a.Resumes.Replayed, a.Resumes.Gapped, a.Hangups.Storm, a.Hangups.Churn, a.Hangups.Stop, a.Hangups.Discarded, a.Hangups.Timeouts)
	}
}

// reorderedNote says what the summary's reordered counts.
const reorderedNote = "reordered counts only events whose publish was answered before the later one was sent (publishes in flight together have no order)"

// formatCounts lists counts by kind, largest first: "status_5xx 322, dial 3".
func formatCounts(m map[string]int64) string {
	kinds := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = k + " " + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, ", ")
}
