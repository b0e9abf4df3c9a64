package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/darktime/darktime/shadow/ledgerfile"
	"github.com/darktime/darktime/swarm/resultfile"
)

// Explanation is one part of a ledger's difference: how many, why, and the
// evidence the cause rests on. Loss is set when the part is a real loss to
// users (announced or with a known cause), not a measuring artefact: it is
// explained, and still counted as lost.
type Explanation struct {
	Cause    string `json:"cause"`
	Count    int64  `json:"count"`
	Loss     bool   `json:"loss,omitempty"`
	Evidence string `json:"evidence"`
}

// Ledger verdicts (LedgerReport.Verdict).
const (
	// VerdictBalanced: nothing to explain.
	VerdictBalanced = "balanced"
	// VerdictExplained: every difference has a cause with its evidence.
	VerdictExplained = "explained"
	// VerdictNotBalanced: something is unexplained.
	VerdictNotBalanced = "NOT BALANCED"
	// VerdictNothingOwed: the ledger has nothing on either side: a run in
	// which nothing was owed proves nothing.
	VerdictNothingOwed = "NOTHING OWED"
)

// explain adds a part to the ledger's explained or unexplained list.
func (l *LedgerReport) explain(cause string, n int64, loss, explained bool, evidence string, args ...any) {
	if n == 0 {
		return
	}
	e := Explanation{Cause: cause, Count: n, Loss: loss, Evidence: fmt.Sprintf(evidence, args...)}
	if explained {
		l.Explained = append(l.Explained, e)
		return
	}
	l.UnexplainedBy = append(l.UnexplainedBy, e)
	l.Unexplained += n
}

// settle sets the verdict from what was explained, and Balanced.
func (l *LedgerReport) settle() {
	if l.Explained == nil {
		l.Explained = []Explanation{}
	}
	if l.UnexplainedBy == nil {
		l.UnexplainedBy = []Explanation{}
	}
	switch {
	case l.Unexplained > 0:
		l.Verdict = VerdictNotBalanced
	case l.Credit == 0 && l.Debit == 0 && l.Source == "swarm":
		l.Verdict = VerdictNothingOwed
	case len(l.Explained) > 0:
		l.Verdict = VerdictExplained
	default:
		l.Verdict = VerdictBalanced
	}
	l.Balanced = l.Unexplained == 0 && l.Verdict != VerdictNothingOwed
}

// Summary is the verdict in words: "balanced", "explained: 4 dropped: 1
// client closed, 3 write errors", "NOT BALANCED: 3 unexplained (silent gaps 3)".
func (l LedgerReport) Summary() string {
	parts := func(list []Explanation) string {
		var s []string
		for _, e := range list {
			s = append(s, fmt.Sprintf("%d %s", e.Count, strings.ReplaceAll(e.Cause, "_", " ")))
		}
		return strings.Join(s, ", ")
	}
	switch l.Verdict {
	case VerdictNotBalanced:
		out := fmt.Sprintf("%d unexplained (%s)", l.Unexplained, parts(l.UnexplainedBy))
		if len(l.Explained) > 0 {
			out += "; explained: " + parts(l.Explained)
		}
		return out
	case VerdictExplained:
		return parts(l.Explained)
	case VerdictNothingOwed:
		return "nothing was owed: the run proves nothing"
	}
	return ""
}

// unreadableKinds are the events the swarm received and could not read.
func unreadableKinds(e resultfile.EventCounts) map[string]int64 {
	m := map[string]int64{}
	for k, v := range map[string]int64{"malformed": e.Malformed, "other_type": e.OtherType, "foreign": e.Foreign} {
		if v > 0 {
			m[k] = v
		}
	}
	return m
}

func kindList(m map[string]int64) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(s, ", ")
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// explainSwarm attributes the swarm ledger's differences (swarm/attribution.go).
func explainSwarm(l *LedgerReport, res *resultfile.Result) {
	a := res.Attribution
	t := res.Ledger.Totals()
	rs := a.Resumes
	// Events the swarm could not read open silent gaps at their seqs: as
	// many silent losses as unreadable events are the profile's, not the
	// target's (and gated by unreadable == 0).
	silent := a.Lost["silent_gap"]
	if a.IsZero() { // a result from before attribution: every loss is silent
		silent = t.Lost
	}
	unreadable := min(silent, sum(unreadableKinds(res.Events)))
	l.explain("unreadable", unreadable, true, true,
		"the swarm received events it could not read (%s): the profile does not match what the target sends; their seqs count as lost",
		kindList(unreadableKinds(res.Events)))
	l.explain("silent_gap", silent-unreadable, true, false,
		"owed events a stream skipped: a later event came first and no darktime.missed notice or reconnect explains the gap")
	l.explain("announced", a.Lost["announced"], true, true,
		"the target announced the gap with a darktime.missed notice (%d notices received)", res.Events.Notices)
	if rs.Resumes() {
		l.explain("not_resumed", a.Lost["not_resumed"], true, false,
			"gaps right after a reconnect with Last-Event-ID, on a target that replayed history on %d other resumes", rs.Replayed)
	} else {
		l.explain("not_resumed", a.Lost["not_resumed"], true, true,
			"the target does not resume: %d reconnects sent Last-Event-ID, none got history replayed, %d came back past a gap",
			rs.WithID, rs.Gapped)
	}
	l.explain("no_id", a.Lost["no_id"], true, true,
		"%d reconnects had no id to resume from: the stream before them had carried no id: field by the time it ended", rs.NoID)
	l.explain("gave_up", a.Lost["gave_up"], true, true,
		"%d clients gave up, as a browser does, when the target answered a reconnect with an error (%s)", res.Clients.Failed, kindList(res.Errors))
	l.explain("cut_by_server", a.Lost["cut_by_server"], true, true,
		"owed after the end of streams the target had ended itself (the clients read its close, or found it at their hang-up) when the session or the run ended before they could resume")
	l.explain("reconnecting_at_end", a.Lost["reconnecting_at_end"], true, true,
		"owed to clients the swarm had disconnected itself (a storm) that were waiting to reconnect when the run ended")
	l.explain("reconnect_failed", a.Lost["reconnect_failed"], true, true,
		"owed to clients whose reconnects were failing when the run ended (%s)", kindList(res.Errors))
	l.explain("in_flight_at_end", a.Lost["in_flight_at_end"], true, true,
		"owed after the last event of sessions whose stream was still flowing when the run ended — their final hang-up gave up reading after %v (%d hang-ups timed out), or the events were published less long before the end than the stream ran behind (its last event's delay) — far behind, not refused", resultfile.HangupTimeout, a.Hangups.Timeouts)
	tailEvidence := "owed after a session's last event and never received before it ended"
	if a.Hangups.Timeouts > 0 {
		tailEvidence += fmt.Sprintf(" (%d hang-ups timed out waiting for the target's close)", a.Hangups.Timeouts)
	}
	l.explain("tail", a.Lost["tail"], true, false, "%s", tailEvidence)
	l.explain("publish_outcome_unknown", a.Extra["publish_outcome_unknown"]+a.Extra["publish_unanswered"], false, true,
		"delivered events whose publish failed without an answer saying it was refused (timeout, reset, 500/502/504, or still unanswered at the end): the target took them")
	l.explain("publish_refused", a.Extra["publish_refused"], false, false,
		"delivered events whose publish was answered 4xx or 503 — the target said it did not take them")
	l.explain("publish_not_sent", a.Extra["publish_not_sent"], false, false,
		"delivered events whose publish never connected")
	l.explain("duplicated", t.Duplicated, false, false, "events a session received more than once")
	l.explain("reordered", t.Reordered, false, false,
		"events received after a later one whose publish was sent after theirs was answered")
	if a.Residual != 0 {
		l.explain("bookkeeping", max(a.Residual, -a.Residual), false, false,
			"the swarm's own accounts disagree by %d (credit − debit ≠ lost − extra − duplicated): a swarm defect", a.Residual)
	}
	l.settle()
}

// dropReasons says in words why the server dropped copies.
var dropReasons = map[string]string{
	"slow_consumer": "the subscriber fell behind by more than its queue and was cut",
	"write_timeout": "the socket stayed full past the write timeout",
	"write_error":   "the write failed: the connection was already gone",
	"client_closed": "the client had left before they were written",
	"shutdown":      "the node shut down with them queued",
}

// explainFanout: fanned out = written + dropped + queued holds exactly on
// a sound server, and every drop is counted with its reason; whether the
// dropped copies reached the user again shows in the swarm ledger.
func explainFanout(l *LedgerReport, res *resultfile.Result) {
	for _, k := range slices.Sorted(maps.Keys(l.Kinds)) {
		reason, ok := strings.CutPrefix(k, "dropped_")
		if !ok {
			continue
		}
		why := dropReasons[reason]
		if why == "" {
			why = "counted by the server as " + reason
		}
		l.explain(k, l.Kinds[k], false, true, "%s; the swarm ledger says whether the user got them again (resume) or was told (darktime.missed)", why)
	}
	if q := l.Kinds["queued"]; q != 0 {
		l.explain("queued", q, false, true, "still queued when the snapshot was taken")
	}
	if l.Balance != 0 {
		l.explain("balance", max(l.Balance, -l.Balance), false, false,
			"fanned out − written − dropped − queued is %d: copies the server neither wrote nor counted as dropped", l.Balance)
	}
	l.settle()
}

// explainWritten: every copy the servers wrote is read by the swarm,
// which reads out every connection it ends itself (client.hangUp).
func explainWritten(l *LedgerReport, res *resultfile.Result, proxied bool) {
	h := res.Attribution.Hangups
	l.explain("discarded_at_cut", h.Discarded, false, true,
		"read after %d storm cuts and not used: the streams resumed before them with Last-Event-ID (a browser drops them the same way)", h.Storm)
	left := h.Storm + h.Churn + h.Stop
	if proxied && l.Balance > 0 && l.Balance <= left {
		// The swarm reads out every stream it ends, but the copies the
		// servers had written to the proxy's upstream connection of that
		// user die with it: the proxy closes upstream when its user
		// leaves, without reading on.
		l.explain("in_proxy_at_hangup", l.Balance, false, true,
			"the clients reached the servers through the shadow proxy: copies the servers wrote to the proxy's upstream connections were still in flight when %d users the swarm disconnected left (at most one per hang-up is taken as explained)", left)
		l.settle()
		return
	}
	if l.Balance != 0 {
		evidence := "copies the servers counted as written that the swarm never read"
		if l.Balance < 0 {
			evidence = "events the swarm read that the servers did not count as written between the snapshots (another writer, or a snapshot taken too early)"
		}
		if h.Timeouts > 0 {
			evidence += fmt.Sprintf("; %d hang-ups timed out waiting for the server's close, and what those connections still had in flight is unknown", h.Timeouts)
		}
		l.explain("balance", max(l.Balance, -l.Balance), false, false, "%s", evidence)
	}
	l.settle()
}

// explainShadow: the proxy's own attribution (shadow/LEDGER.md) of what
// one side delivered and the other did not.
func explainShadow(l *LedgerReport, t ledgerfile.TargetReport, final bool) {
	c := t.Totals
	who := t.Role
	l.explain("edge_missing", c.EdgeMissing, false, true,
		"events the primary delivered while the %s's stream was not yet, or no longer, open: outside the comparable window of the two streams", who)
	l.explain("edge_extra", c.EdgeExtra, false, true,
		"events the %s delivered while the primary's stream was not yet, or no longer, open: outside the comparable window", who)
	l.explain("late_settled", 2*c.LateSettled, false, true,
		"%d pairs: one side delivered the event after its counterpart had settled as missing or extra (late, not lost)", c.LateSettled)
	l.explain("unmirrored", c.Unmirrored, false, true,
		"events whose publish the proxy itself did not mirror to the %s (its lane full, its circuit open, the body too large): the proxy's doing", who)
	// What the parts do not cover is unexplained (a ledger written before
	// the proxy attributed anything has only missing and extra).
	unexplainedMissing := max(c.UnexplainedMissing, c.Missing-c.EdgeMissing-c.LateSettled-c.Unmirrored)
	unexplainedExtra := max(c.UnexplainedExtra, c.Extra-c.EdgeExtra-c.LateSettled)
	l.explain("missing", unexplainedMissing, false, false, "events the primary delivered inside the comparable window that the %s never delivered", who)
	l.explain("extra", unexplainedExtra, false, false, "events the %s delivered inside the comparable window that the primary never delivered", who)
	l.explain("duplicated", c.Duplicated, false, false, "events the %s delivered more often than the primary", who)
	// Reordering is listed (kinds, shadow_reordered) but not judged: the
	// proxy cannot yet tell a real reordering from two publishes in flight
	// together, which the primary and an independent candidate may order
	// either way (the swarm can, and judges its own).
	if p := c.PendingPrimary + c.PendingCandidate; p > 0 {
		l.explain("pending", p, false, !final, "events still inside their settle window when the ledger was taken")
	}
	l.settle()
}
