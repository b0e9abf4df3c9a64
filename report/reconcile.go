package report

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/server/statsfile"
	"github.com/darktime/darktime/shadow/ledgerfile"
	"github.com/darktime/darktime/swarm/resultfile"
)

// maxImbalances bounds the accounts a ledger report lists (worst first).
const maxImbalances = 20

// LedgerReport is one +1/-1 account: Plus counts what was expected, Minus
// what was observed, and Balance = Credit - Debit must be zero.
type LedgerReport struct {
	// Source is what the ledger reconciles: swarm, server_fanout,
	// server_written, shadow_candidate or shadow_baseline.
	Source  string `json:"source"`
	Name    string `json:"name"`
	Plus    string `json:"plus"`
	Minus   string `json:"minus"`
	Credit  int64  `json:"credit"`
	Debit   int64  `json:"debit"`
	Balance int64  `json:"balance"`
	// Balanced is false when something is unexplained (Unexplained > 0),
	// or when nothing was owed at all.
	Balanced bool `json:"balanced"`
	// Verdict is balanced (nothing to explain), explained (every
	// difference has a cause), NOT BALANCED (something is unexplained) or
	// NOTHING OWED (the run proves nothing).
	Verdict string `json:"verdict"`
	// Explained lists each part of the difference with its cause and
	// evidence; UnexplainedBy what is left, by kind, and Unexplained its
	// sum. See REPORT.md "Causes".
	Explained     []Explanation `json:"explained"`
	Unexplained   int64         `json:"unexplained"`
	UnexplainedBy []Explanation `json:"unexplained_by"`
	// Kinds counts the differences by kind: lost, duplicated, late,
	// reordered, extra, dropped_<reason>, queued, pending.
	Kinds map[string]int64 `json:"kinds"`
	// ByScope sums the unbalanced accounts over the run per scope (channel,
	// node, user bucket), worst first; Windows lists the unbalanced
	// accounts per scope and time window, worst first. Both are cut at
	// 20 entries; More* count what was left out.
	ByScope     []Imbalance `json:"by_scope"`
	MoreScopes  int         `json:"more_scopes"`
	Windows     []Imbalance `json:"windows"`
	MoreWindows int         `json:"more_windows"`
	Note        string      `json:"note,omitempty"`
}

// Imbalance is one account that did not balance or recorded a difference.
type Imbalance struct {
	Scope string `json:"scope"`
	// Window is the Unix second the account's window starts at (0: the
	// whole run).
	Window  int64            `json:"window"`
	Credit  int64            `json:"credit"`
	Debit   int64            `json:"debit"`
	Balance int64            `json:"balance"`
	Kinds   map[string]int64 `json:"kinds"`
	// Causes (swarm ledger, by_scope) splits the scope's lost and extra
	// deliveries by cause; Unexplained counts the scope's share of what is
	// unexplained for the ledger as a whole (its causes that are, and its
	// duplicated and reordered deliveries).
	Causes      map[string]int64 `json:"causes,omitempty"`
	Unexplained int64            `json:"unexplained,omitempty"`
}

func (im Imbalance) severity() int64 {
	s := max(im.Balance, -im.Balance)
	for _, v := range im.Kinds {
		s += v
	}
	return s
}

func kindsOf(c ledger.Counts) map[string]int64 {
	m := map[string]int64{}
	for k, v := range map[string]int64{"lost": c.Lost, "duplicated": c.Duplicated, "late": c.Late, "reordered": c.Reordered} {
		if v != 0 {
			m[k] = v
		}
	}
	return m
}

// worst sorts imbalances by severity and cuts the list.
func worst(list []Imbalance) ([]Imbalance, int) {
	slices.SortStableFunc(list, func(a, b Imbalance) int {
		if c := cmp.Compare(b.severity(), a.severity()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Scope, b.Scope); c != 0 {
			return c
		}
		return cmp.Compare(a.Window, b.Window)
	})
	if list == nil {
		list = []Imbalance{}
	}
	if len(list) > maxImbalances {
		return list[:maxImbalances], len(list) - maxImbalances
	}
	return list, 0
}

// swarmLedger is expected vs received: +1 per delivery a 2xx publish
// owed a subscribed session, -1 per owed event received.
func swarmLedger(res *resultfile.Result) LedgerReport {
	t := res.Ledger.Totals()
	lr := LedgerReport{
		Source: "swarm", Name: "swarm: expected vs received", Plus: "deliveries owed to subscribed sessions",
		Minus: "owed events received", Credit: t.Credit, Debit: t.Debit, Balance: t.Balance(), Kinds: kindsOf(t),
	}
	var windows, scopes []Imbalance
	for _, e := range res.Ledger.Unbalanced() {
		windows = append(windows, Imbalance{Scope: e.Scope, Window: e.Window, Credit: e.Credit, Debit: e.Debit,
			Balance: e.Balance(), Kinds: kindsOf(e.Counts)})
	}
	byScope := res.Ledger.ByScope()
	for _, scope := range slices.Sorted(maps.Keys(byScope)) {
		c := byScope[scope]
		if c.Balance() != 0 || c.Lost != 0 || c.Duplicated != 0 || c.Late != 0 || c.Reordered != 0 {
			scopes = append(scopes, Imbalance{Scope: scope, Credit: c.Credit, Debit: c.Debit, Balance: c.Balance(), Kinds: kindsOf(c)})
		}
	}
	lr.Windows, lr.MoreWindows = worst(windows)
	lr.ByScope, lr.MoreScopes = worst(scopes)
	explainSwarm(&lr, res)
	unexplained := map[string]bool{}
	for _, e := range lr.UnexplainedBy {
		unexplained[e.Cause] = true
	}
	for i := range lr.ByScope {
		im := &lr.ByScope[i]
		c := res.Attribution.Channels[im.Scope]
		if res.Attribution.IsZero() && im.Kinds["lost"] > 0 { // a result from before attribution
			c.Lost = map[string]int64{"silent_gap": im.Kinds["lost"]}
		}
		for _, m := range []map[string]int64{c.Lost, c.Extra} {
			for k, v := range m {
				if im.Causes == nil {
					im.Causes = map[string]int64{}
				}
				im.Causes[k] += v
				if unexplained[k] {
					im.Unexplained += v
				}
			}
		}
		for _, k := range []string{"duplicated", "reordered"} {
			if unexplained[k] {
				im.Unexplained += im.Kinds[k]
			}
		}
	}
	return lr
}

// publishLedger is publishes attempted vs answered 2xx: every failure is
// explained by its answer, and gated by publish_errors == 0 by default.
func publishLedger(res *resultfile.Result) LedgerReport {
	p := res.Publish
	lr := LedgerReport{
		Source: "publish", Name: "publishes: attempted vs accepted", Plus: "publishes attempted", Minus: "publishes answered 2xx",
		Credit: p.Attempted, Debit: p.OK, Balance: p.Attempted - p.OK, Kinds: map[string]int64{},
		ByScope: []Imbalance{}, Windows: []Imbalance{},
	}
	if p.Failed > 0 {
		lr.Kinds["failed"] = p.Failed
	}
	// By what the answer proves, as the swarm's attribution does.
	byCause := map[string]map[string]int64{}
	for msg, n := range p.Errors {
		c := publishFailureCause(msg)
		if byCause[c] == nil {
			byCause[c] = map[string]int64{}
		}
		byCause[c][msg] += n
	}
	for _, c := range slices.Sorted(maps.Keys(byCause)) {
		lr.explain(c, sum(byCause[c]), false, true, "%s: %s", publishCauseText[c], kindList(byCause[c]))
	}
	if known := sum(p.Errors); known < lr.Balance {
		lr.explain("unanswered", lr.Balance-known, false, true, "the run ended before their answer came")
	}
	lr.settle()
	return lr
}

// delivery is a node's or channel's fan-out counters.
type delivery struct {
	fannedOut, written, dropped, queued int64
	droppedBy                           map[string]int64
}

func (d delivery) sub(o delivery) delivery {
	out := delivery{d.fannedOut - o.fannedOut, d.written - o.written, d.dropped - o.dropped, d.queued - o.queued, map[string]int64{}}
	for k, v := range d.droppedBy {
		if v -= o.droppedBy[k]; v != 0 {
			out.droppedBy[k] = v
		}
	}
	return out
}

func (d delivery) imbalance(scope string) Imbalance {
	im := Imbalance{Scope: scope, Credit: d.fannedOut, Debit: d.written + d.dropped + d.queued, Kinds: map[string]int64{}}
	im.Balance = im.Credit - im.Debit
	for k, v := range d.droppedBy {
		im.Kinds["dropped_"+k] = v
	}
	if d.queued != 0 {
		im.Kinds["queued"] = d.queued
	}
	return im
}

func droppedBy(m map[string]uint64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}

func nodeDelivery(t statsfile.NodeTotals) delivery {
	return delivery{int64(t.FannedOut), int64(t.Written), int64(t.Dropped), int64(t.Queued), droppedBy(t.DroppedByReason)}
}

func channelDelivery(c statsfile.ChannelStats) delivery {
	return delivery{int64(c.FannedOut), int64(c.Written), int64(c.Dropped), int64(c.Queued), droppedBy(c.DroppedBy)}
}

// serverLedgers reconciles the /stats deltas of every node: fanned out vs
// written + dropped + queued, and the servers' writes vs the swarm's
// receipts.
func serverLedgers(before, after []statsfile.Stats, res *resultfile.Result, proxied bool) (fan, wr LedgerReport, err error) {
	if len(before) != len(after) {
		return fan, wr, badInput("%d stats snapshots before and %d after: give one of each per node", len(before), len(after))
	}
	byNode := map[string]statsfile.Stats{}
	for _, b := range before {
		if _, dup := byNode[b.Node]; dup {
			return fan, wr, badInput("two stats snapshots before the run of node %q", b.Node)
		}
		byNode[b.Node] = b
	}
	fan = LedgerReport{
		Source: "server_fanout", Name: "server: fanned out vs written+dropped+queued", Plus: "event copies fanned out to local subscribers",
		Minus: "copies written, dropped or still queued", Kinds: map[string]int64{},
	}
	var written, replayed, published, received int64
	var scopes []Imbalance
	seenAfter := map[string]bool{}
	for _, a := range after {
		b, ok := byNode[a.Node]
		if !ok || seenAfter[a.Node] {
			return fan, wr, badInput("stats snapshot after the run of node %q has no (or a repeated) snapshot before", a.Node)
		}
		seenAfter[a.Node] = true
		if !a.StartedAt.Equal(b.StartedAt) {
			return fan, wr, badInput("node %q restarted between the snapshots (started_at %s, then %s): its counters do not subtract",
				a.Node, b.StartedAt.Format("15:04:05.000"), a.StartedAt.Format("15:04:05.000"))
		}
		if a.Totals.FannedOut < b.Totals.FannedOut || a.Totals.Written < b.Totals.Written {
			return fan, wr, badInput("node %q: counters went down between the snapshots (before and after swapped?)", a.Node)
		}
		d := nodeDelivery(a.Totals).sub(nodeDelivery(b.Totals))
		nodeIm := d.imbalance("node " + a.Node)
		fan.Credit += nodeIm.Credit
		fan.Debit += nodeIm.Debit
		for k, v := range nodeIm.Kinds {
			fan.Kinds[k] += v
		}
		if nodeIm.Balance != 0 && len(after) > 1 { // with one node its channels say it all
			scopes = append(scopes, nodeIm)
		}
		for _, ch := range slices.Sorted(maps.Keys(a.Channels)) {
			cd := channelDelivery(a.Channels[ch])
			// A channel idle for 10 s loses its counters; one that came
			// back starts from zero.
			if bc, ok := b.Channels[ch]; ok && bc.FannedOut <= a.Channels[ch].FannedOut {
				cd = cd.sub(channelDelivery(bc))
			}
			if im := cd.imbalance(ch + "@" + a.Node); im.Balance != 0 || len(im.Kinds) > 0 {
				scopes = append(scopes, im)
			}
		}
		written += int64(a.Totals.Written - b.Totals.Written)
		replayed += int64(a.Totals.HistoryReplayed - b.Totals.HistoryReplayed)
		published += int64(a.Totals.Published - b.Totals.Published)
		received += int64(a.Totals.Received - b.Totals.Received)
	}
	fan.Balance = fan.Credit - fan.Debit
	explainFanout(&fan, res)
	fan.ByScope, fan.MoreScopes = worst(scopes)
	fan.Windows = []Imbalance{}
	fan.Note = fmt.Sprintf("deltas between the snapshots over %d node(s): %d published, %d received from the broker", len(after), published, received)

	e := res.Events
	got := e.Events + e.Outside + e.Malformed + e.Foreign + e.OtherType + e.Slow
	discarded := res.Attribution.Hangups.Discarded
	wr = LedgerReport{
		Source: "server_written", Name: "server written vs swarm received", Plus: "copies the servers wrote (live and history replay)",
		Minus: "events the swarm read (used, or discarded after its own storm cuts)", Credit: written + replayed, Debit: got + discarded,
		Kinds: map[string]int64{}, ByScope: []Imbalance{}, Windows: []Imbalance{},
		Note: fmt.Sprintf("assumes the swarm was the servers' only subscriber between the snapshots; read: %d measured, %d outside a session, %d by slow readers, %d unreadable; %d notices not counted on either side",
			e.Events, e.Outside, e.Slow, e.Malformed+e.Foreign+e.OtherType, e.Notices),
	}
	wr.Balance = wr.Credit - wr.Debit
	switch {
	case wr.Balance > 0:
		wr.Kinds["lost"] = wr.Balance // written, never read: lost between the socket and the client
	case wr.Balance < 0:
		wr.Kinds["extra"] = -wr.Balance // read but not written between the snapshots: another writer, or a snapshot taken too early
	}
	explainWritten(&wr, res, proxied)
	return fan, wr, nil
}

func droppedTotal(kinds map[string]int64) int64 {
	var n int64
	for k, v := range kinds {
		if len(k) > 8 && k[:8] == "dropped_" {
			n += v
		}
	}
	return n
}

// shadowLedgers reports each target of a shadow ledger: +1 per event the
// primary delivered, -1 per event the target delivered.
func shadowLedgers(name string, l ledgerfile.Report) []LedgerReport {
	var out []LedgerReport
	for _, t := range l.Targets {
		c := t.Totals
		lr := LedgerReport{
			Source: "shadow_" + t.Role, Name: fmt.Sprintf("shadow %s, %s %q: primary vs %s", name, t.Role, t.Name, t.Role),
			Plus: "events the primary delivered", Minus: "events the " + t.Role + " delivered on the mirrored stream",
			Credit: c.Primary, Debit: c.Candidate, Balance: c.Balance, Kinds: shadowKinds(c),
		}
		var scopes []Imbalance
		for _, group := range []struct {
			prefix string
			m      map[string]ledgerfile.Counts
		}{{"channel ", t.Channels}, {"bucket ", t.Buckets}} {
			for _, k := range slices.Sorted(maps.Keys(group.m)) {
				a := group.m[k]
				im := Imbalance{Scope: group.prefix + k, Credit: a.Primary, Debit: a.Candidate, Balance: a.Balance, Kinds: shadowKinds(a)}
				if im.Balance != 0 || len(im.Kinds) > 0 {
					scopes = append(scopes, im)
				}
			}
		}
		lr.ByScope, lr.MoreScopes = worst(scopes)
		lr.Windows = []Imbalance{}
		if !l.Final {
			lr.Note = "the ledger is not final (taken while the proxy ran): pending events may still settle"
		}
		if t.Role == "baseline" {
			lr.Note = "a baseline measures the noise at connection edges; the candidate is worse only by what exceeds it"
		}
		explainShadow(&lr, t, l.Final)
		out = append(out, lr)
	}
	return out
}

func shadowKinds(c ledgerfile.Counts) map[string]int64 {
	m := map[string]int64{}
	for k, v := range map[string]int64{"lost": c.Missing, "extra": c.Extra, "duplicated": c.Duplicated, "late": c.Late,
		"reordered": c.Reordered, "pending": c.PendingPrimary + c.PendingCandidate} {
		if v != 0 {
			m[k] = v
		}
	}
	return m
}

// publishCauseText says what a failed publish's answer proves.
var publishCauseText = map[string]string{
	"refused":         "the target answered that it did not take them (4xx, 503)",
	"not_sent":        "the request never reached the target",
	"outcome_unknown": "no answer says whether the target took them (timeout, reset, 500/502/504)",
}

// publishFailureCause classifies a publish error message as the swarm's
// publisher does (swarm.failureState): a status line or vegeta's error text.
func publishFailureCause(msg string) string {
	code := 0
	if len(msg) >= 3 {
		code, _ = strconv.Atoi(msg[:3])
	}
	if c, ok := strings.CutPrefix(msg, "status "); ok {
		code, _ = strconv.Atoi(c)
	}
	switch {
	case code == 503 || code >= 400 && code < 500:
		return "refused"
	case code == 0 && (strings.Contains(msg, "dial ") || strings.Contains(msg, "connection refused")):
		return "not_sent"
	}
	return "outcome_unknown"
}
