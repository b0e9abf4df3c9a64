package report

import (
	"fmt"
	"strings"

	"github.com/darktime/darktime/swarm"
)

// Metric describes one name of the gate vocabulary.
type Metric struct {
	Name string
	Help string
	// Better is the direction of an improvement: -1 lower is better, +1
	// higher is better, 0 neither (Compare reports it without judging).
	Better int
	// Needs names the input the metric comes from when it is not the swarm
	// result: "stats" (--stats-before/--stats-after) or "shadow".
	Needs string
}

var histNames = []string{swarm.HistDelivery, swarm.HistConnect, swarm.HistFirstEvent, swarm.HistPublish}

var pctNames = []struct{ key, help string }{
	{"p50", "50th percentile"}, {"p90", "90th percentile"}, {"p99", "99th percentile"},
	{"p999", "99.9th percentile"}, {"p9999", "99.99th percentile"}, {"max", "maximum"}, {"mean", "mean"},
}

// Vocabulary lists every metric a gate or a comparison can name.
var Vocabulary = func() []Metric {
	var v []Metric
	for _, h := range histNames {
		for _, p := range pctNames {
			v = append(v, Metric{Name: p.key + "_" + h + "_ms", Help: p.help + " of " + h + " latency, ms", Better: -1})
		}
	}
	return append(v,
		Metric{Name: "deliveries", Help: "measured events received (duplicates included)", Better: 1},
		Metric{Name: "deliveries_per_s", Help: "deliveries per second, mean over the seconds that had any", Better: 1},
		Metric{Name: "peak_deliveries_per_s", Help: "deliveries in the busiest second", Better: 1},
		Metric{Name: "publishes", Help: "publishes attempted"},
		Metric{Name: "publish_errors", Help: "publishes that failed", Better: -1},
		Metric{Name: "publish_error_rate", Help: "publish_errors / publishes", Better: -1},
		Metric{Name: "errors", Help: "client errors of every kind (connect, stream, drops)", Better: -1},
		Metric{Name: "error_rate", Help: "(publish_errors + errors) / (publishes + connects + errors)", Better: -1},
		Metric{Name: "expected", Help: "deliveries owed (swarm ledger credits)"},
		Metric{Name: "lost", Help: "owed deliveries never received", Better: -1},
		Metric{Name: "duplicated", Help: "deliveries received more than once", Better: -1},
		Metric{Name: "late", Help: "deliveries later than the swarm's late threshold", Better: -1},
		Metric{Name: "reordered", Help: "deliveries out of order", Better: -1},
		Metric{Name: "ledger_balance", Help: "swarm ledger: expected - received (0 when balanced)"},
		Metric{Name: "connections_peak", Help: "most connections open at once", Better: 1},
		Metric{Name: "connections_end", Help: "connections open in the last second"},
		Metric{Name: "connects", Help: "successful connects, reconnects included"},
		Metric{Name: "reconnects", Help: "reconnects after a drop or a storm cut", Better: -1},
		Metric{Name: "drops", Help: "open streams the server or network ended", Better: -1},
		Metric{Name: "clients_failed", Help: "clients that gave up (non-SSE answer)", Better: -1},
		Metric{Name: "auth_errors", Help: "subscriptions refused with 401 or 403 (errors auth_unauthorized + auth_forbidden)", Better: -1},
		Metric{Name: "renewals", Help: "streams ended by darktime.renew (token expired) and resumed with a fresh token"},
		Metric{Name: "unbalanced_ledgers", Help: "ledgers (of every input) with something unexplained", Better: -1},
		Metric{Name: "unexplained", Help: "ledger differences without a cause, summed over every ledger (default gate: == 0)", Better: -1},
		Metric{Name: "unexplained_swarm", Help: "swarm ledger differences without a cause (silent gaps, duplicates, reorders, ...)", Better: -1},
		Metric{Name: "unexplained_server", Help: "server ledgers' differences without a cause (fan-out and written vs received)", Better: -1, Needs: "stats"},
		Metric{Name: "unexplained_shadow", Help: "shadow ledgers' differences without a cause, over candidate targets", Better: -1, Needs: "shadow"},
		Metric{Name: "announced_lost", Help: "lost deliveries the target announced with darktime.missed", Better: -1},
		Metric{Name: "unreadable", Help: "events the swarm received but could not read: malformed, other_type, foreign (default gate: == 0)", Better: -1},
		Metric{Name: "discarded_at_cut", Help: "events read after the swarm's own storm cuts and not used (the streams resumed before them)"},
		Metric{Name: "server_balance", Help: "fanned out - written - dropped - queued over the run, all nodes", Needs: "stats"},
		Metric{Name: "server_dropped", Help: "copies the servers dropped during the run", Better: -1, Needs: "stats"},
		Metric{Name: "server_written_vs_received", Help: "copies written by the servers - events read by the swarm", Needs: "stats"},
		Metric{Name: "shadow_balance", Help: "primary - candidate events, summed over candidate targets", Needs: "shadow"},
		Metric{Name: "shadow_lost", Help: "primary events the candidate did not deliver", Better: -1, Needs: "shadow"},
		Metric{Name: "shadow_extra", Help: "candidate events the primary did not deliver", Better: -1, Needs: "shadow"},
		Metric{Name: "shadow_duplicated", Help: "candidate deliveries beyond the primary's", Better: -1, Needs: "shadow"},
		Metric{Name: "shadow_late", Help: "candidate events later than the proxy's late_ms", Better: -1, Needs: "shadow"},
		Metric{Name: "shadow_reordered", Help: "candidate events out of the primary's order", Better: -1, Needs: "shadow"},
		// Not a name itself: the pattern of the per-phase metrics, listed
		// here so that `darktime report --metrics` shows them.
		Metric{Name: phasePattern, Help: "METRIC of the scenario phase NAME (darktime run), METRIC one of " + phaseMetricNames(), Needs: "scenario"},
	)
}()

// phasePattern stands for the per-phase metrics in Vocabulary.
const phasePattern = "phase.NAME.METRIC"

func phaseMetricNames() string {
	names := make([]string, len(PhaseVocabulary))
	for i, m := range PhaseVocabulary {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}

// LookupMetric finds a metric of the vocabulary, or a per-phase metric
// "phase.NAME.METRIC" whose METRIC is in PhaseVocabulary (then Name is the
// whole name and Needs is "scenario").
func LookupMetric(name string) (Metric, bool) {
	if strings.HasPrefix(name, phasePrefix) {
		return lookupPhaseMetric(name)
	}
	for _, m := range Vocabulary {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// errUnknownMetric names the metric and the closest names: those sharing
// the most words with it (p99_latency: the p99 metrics).
func errUnknownMetric(name string) error {
	if strings.HasPrefix(name, phasePrefix) {
		return errUnknownPhaseMetric(name)
	}
	near := nearest(name, Vocabulary, "")
	hint := "`darktime report --metrics` lists them"
	if len(near) > 0 && len(near) <= 7 {
		hint = "did you mean " + strings.Join(near, ", ") + "? (`darktime report --metrics` lists them all)"
	}
	return badInput("unknown metric %q: %s", name, hint)
}

// errUnknownPhaseMetric explains a bad "phase.NAME.METRIC".
func errUnknownPhaseMetric(name string) error {
	phase, metric, ok := PhaseMetric(name)
	if !ok {
		return badInput("unknown metric %q: a phase's metric is phase.NAME.METRIC, NAME a phase of the scenario (lower-case letters, digits and -), METRIC one of %s",
			name, phaseMetricNames())
	}
	near := nearest(metric, PhaseVocabulary, phasePrefix+phase+".")
	hint := "METRIC is one of " + phaseMetricNames()
	if len(near) > 0 && len(near) <= 7 {
		hint = "did you mean " + strings.Join(near, ", ") + "? (" + hint + ")"
	}
	return badInput("unknown metric %q: %s", name, hint)
}

// nearest lists the names of vocab sharing the most words with name (with
// prefix before each).
func nearest(name string, vocab []Metric, prefix string) []string {
	var near []string
	best := 0
	for _, m := range vocab {
		score := sharedParts(name, m.Name)
		if len(name) >= 4 && strings.Contains(m.Name, name) {
			score += 2
		}
		switch {
		case score > best:
			best, near = score, []string{prefix + m.Name}
		case score == best && score > 0:
			near = append(near, prefix+m.Name)
		}
	}
	return near
}

func sharedParts(a, b string) int {
	n := 0
	for _, x := range strings.Split(a, "_") {
		for _, y := range strings.Split(b, "_") {
			if x == y && x != "ms" && x != "" {
				n++
			}
		}
	}
	return n
}

// Value returns a metric's value, or an error wrapping ErrInput when the
// name is unknown or the inputs did not give it.
func (r *Report) Value(name string) (float64, error) {
	m, ok := LookupMetric(name)
	if !ok {
		return 0, errUnknownMetric(name)
	}
	if m.Needs == "scenario" {
		return r.phaseValue(name)
	}
	v, ok := r.Metrics[name]
	if !ok {
		switch m.Needs {
		case "stats":
			return 0, badInput("metric %s needs the server's /stats before and after the run (--stats-before, --stats-after)", name)
		case "shadow":
			return 0, badInput("metric %s needs a shadow ledger with a candidate target (--shadow)", name)
		}
		return 0, badInput("metric %s is not in this result (no %s latency recorded?)", name, name)
	}
	return v, nil
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// metrics computes the vocabulary's values that the inputs give.
func metrics(r *Report, res *swarm.Result) map[string]float64 {
	m := map[string]float64{}
	for h, l := range r.Latency {
		for k, v := range map[string]float64{"p50": l.P50, "p90": l.P90, "p99": l.P99, "p999": l.P999, "p9999": l.P9999, "max": l.Max, "mean": l.Mean} {
			m[fmt.Sprintf("%s_%s_ms", k, h)] = v
		}
	}
	var busy, peakDeliv, peakOpen int64
	for _, s := range r.Series {
		if s.Deliveries > 0 {
			busy++
		}
		peakDeliv = max(peakDeliv, s.Deliveries)
		peakOpen = max(peakOpen, s.Open)
	}
	m["deliveries"] = float64(res.Events.Events)
	m["deliveries_per_s"] = round3(ratio(res.Events.Events, busy))
	m["peak_deliveries_per_s"] = float64(peakDeliv)
	m["publishes"] = float64(res.Publish.Attempted)
	m["publish_errors"] = float64(res.Publish.Failed)
	m["publish_error_rate"] = ratio(res.Publish.Failed, res.Publish.Attempted)
	var errs int64
	for _, v := range res.Errors {
		errs += v
	}
	m["errors"] = float64(errs)
	m["error_rate"] = ratio(res.Publish.Failed+errs, res.Publish.Attempted+res.Clients.Connects+errs)
	t := res.Ledger.Totals()
	m["expected"], m["lost"], m["duplicated"] = float64(t.Credit), float64(t.Lost), float64(t.Duplicated)
	m["late"], m["reordered"], m["ledger_balance"] = float64(t.Late), float64(t.Reordered), float64(t.Balance())
	m["connections_peak"] = float64(peakOpen)
	if n := len(res.Series); n > 0 {
		m["connections_end"] = float64(res.Series[n-1].Open)
	}
	c := res.Clients
	m["connects"], m["reconnects"], m["drops"], m["clients_failed"] = float64(c.Connects), float64(c.Reconnects), float64(c.Drops), float64(c.Failed)
	m["auth_errors"] = float64(res.Errors["auth_unauthorized"] + res.Errors["auth_forbidden"])
	m["renewals"] = float64(c.Renewals)
	var unbalanced int
	shadow := map[string]float64{}
	m["unexplained"] = 0
	m["unreadable"] = float64(sum(unreadableKinds(res.Events)))
	m["announced_lost"] = float64(res.Attribution.Lost["announced"])
	m["discarded_at_cut"] = float64(res.Attribution.Hangups.Discarded)
	for _, l := range r.Ledgers {
		if !l.Balanced {
			unbalanced++
		}
		m["unexplained"] += float64(l.Unexplained)
		switch {
		case l.Source == "swarm":
			m["unexplained_swarm"] = float64(l.Unexplained)
		case strings.HasPrefix(l.Source, "server_"):
			m["unexplained_server"] += float64(l.Unexplained)
		case l.Source == "shadow_candidate":
			m["unexplained_shadow"] += float64(l.Unexplained)
		}
		switch l.Source {
		case "server_fanout":
			m["server_balance"] = float64(l.Balance)
			m["server_dropped"] = float64(droppedTotal(l.Kinds))
		case "server_written":
			m["server_written_vs_received"] = float64(l.Balance)
		case "shadow_candidate":
			shadow["shadow_balance"] += float64(l.Balance)
			for _, k := range []string{"lost", "extra", "duplicated", "late", "reordered"} {
				shadow["shadow_"+k] += float64(l.Kinds[k])
			}
		}
	}
	for k, v := range shadow {
		m[k] = v
	}
	m["unbalanced_ledgers"] = float64(unbalanced)
	return m
}
