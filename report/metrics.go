package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/swarm/resultfile"
)

// Units of the metrics.
const (
	UnitMs      = "ms"    // milliseconds, from the HdrHistograms (µs, 3 significant figures)
	UnitCount   = "count" // events, publishes, connections, ledgers, ...
	UnitPerS    = "1/s"   // per second
	UnitRatio   = "ratio" // a share, 0 to 1
	UnitSeconds = "s"     // seconds, to the millisecond
)

// Metric is one metric of the report, defined once: its name, unit and
// meaning, how it is computed, over what it can be gated, and which way is
// better. Everything that names metrics reads MetricTable: the gate parser
// (names, "did you mean"), Report.Metrics (the JSON "metrics" map),
// Report.Value (gates, Compare), the terminal summary, the HTML metrics
// table, `darktime report --metrics` (Vocabulary) and the test that holds
// REPORT.md to it.
type Metric struct {
	Name string
	Unit string
	Help string
	// Better is the direction of an improvement: -1 lower is better, +1
	// higher is better, 0 neither (Compare reports it without judging).
	Better int
	// Needs names the input the metric comes from when it is not the swarm
	// result: "stats" (--stats-before/--stats-after), "shadow", "faults"
	// (a scenario run's watched faults), or "scenario" for a phase's
	// metric (phase.NAME.METRIC).
	Needs string

	// Run computes the metric over the whole run; ok is false when the
	// inputs do not give it. Nil for a metric that only phases have
	// (publishes_ok, publishes_failed).
	Run func(*runInputs) (v float64, ok bool)
	// Span computes the metric over a stretch of the run's seconds — the
	// sums of their series entries and their merged delivery histogram, a
	// PhaseReport — and makes it a per-phase metric, phase.NAME.METRIC.
	// Nil when only the whole run has the metric (ledger verdicts, client
	// lifecycle counts).
	Span func(PhaseReport) float64
	// Over computes the metric over one window of seconds (window.go) and
	// lets a gate name it with a window, "p99_delivery_ms[10s] < 50": a
	// latency from the window's merged histograms, a rate as the ratio of
	// the window's sums. ok is false when the window has nothing to
	// measure (no latency recorded, no operation). Nil for the totals of
	// the run (lost, expected, unexplained, ...), which a window does not
	// make sense of.
	Over func(*windowStats) (v float64, ok bool)
}

// Windowed reports whether a gate can name the metric with a window.
func (m Metric) Windowed() bool { return m.Over != nil }

// PerPhase reports whether a gate can name the metric for one phase of a
// scenario, phase.NAME.METRIC.
func (m Metric) PerPhase() bool { return m.Span != nil }

// runInputs is what the run's metrics are computed from: the report built
// so far (latency, series, ledgers) and the merged result, with the sums
// several metrics share.
type runInputs struct {
	r   *Report
	res *resultfile.Result
	// totals are the swarm ledger's.
	totals ledger.Counts
	// errs sums the client errors of every kind.
	errs int64
	// busy counts the seconds with deliveries; peakDeliv and peakOpen are
	// the most deliveries and open connections of a second.
	busy, peakDeliv, peakOpen int64
}

func newRunInputs(r *Report, res *resultfile.Result) *runInputs {
	in := &runInputs{r: r, res: res, totals: res.Ledger.Totals()}
	for _, v := range res.Errors {
		in.errs += v
	}
	for _, s := range r.Series {
		if s.Deliveries > 0 {
			in.busy++
		}
		in.peakDeliv = max(in.peakDeliv, s.Deliveries)
		in.peakOpen = max(in.peakOpen, s.Open)
	}
	return in
}

// ledgers sums f over the report's ledgers whose source is accepted; ok is
// false when there is none.
func (in *runInputs) ledgers(accept func(source string) bool, f func(LedgerReport) float64) (float64, bool) {
	var v float64
	found := false
	for _, l := range in.r.Ledgers {
		if accept(l.Source) {
			v += f(l)
			found = true
		}
	}
	return v, found
}

func source(name string) func(string) bool { return func(s string) bool { return s == name } }

var histNames = []string{resultfile.HistDelivery, resultfile.HistConnect, resultfile.HistFirstEvent, resultfile.HistPublish}

// pctNames are the latency metrics of every histogram; span is the
// per-phase value, for the delivery histogram only (nil: run only).
var pctNames = []struct {
	key, help string
	pick      func(Latency) float64
	span      func(PhaseReport) float64
}{
	{"p50", "50th percentile", func(l Latency) float64 { return l.P50 }, func(p PhaseReport) float64 { return p.P50 }},
	{"p90", "90th percentile", func(l Latency) float64 { return l.P90 }, func(p PhaseReport) float64 { return p.P90 }},
	{"p99", "99th percentile", func(l Latency) float64 { return l.P99 }, func(p PhaseReport) float64 { return p.P99 }},
	{"p999", "99.9th percentile", func(l Latency) float64 { return l.P999 }, func(p PhaseReport) float64 { return p.P999 }},
	{"p9999", "99.99th percentile", func(l Latency) float64 { return l.P9999 }, nil},
	{"max", "maximum", func(l Latency) float64 { return l.Max }, func(p PhaseReport) float64 { return p.Max }},
	{"mean", "mean", func(l Latency) float64 { return l.Mean }, nil},
}

// always wraps a computation that every run gives.
func always(f func(*runInputs) float64) func(*runInputs) (float64, bool) {
	return func(in *runInputs) (float64, bool) { return f(in), true }
}

// count is an integer computation that every run gives.
func count(f func(*runInputs) int64) func(*runInputs) (float64, bool) {
	return func(in *runInputs) (float64, bool) { return float64(f(in)), true }
}

// fromLedgers sums f over the ledgers of a source; absent without one.
func fromLedgers(accept func(string) bool, f func(LedgerReport) float64) func(*runInputs) (float64, bool) {
	return func(in *runInputs) (float64, bool) { return in.ledgers(accept, f) }
}

func unexplained(l LedgerReport) float64 { return float64(l.Unexplained) }

func shadowKind(kind string) func(LedgerReport) float64 {
	return func(l LedgerReport) float64 { return float64(l.Kinds[kind]) }
}

// MetricTable is every metric of the report, in the order they are listed
// (`darktime report --metrics`, the HTML page, "did you mean").
var MetricTable = func() []Metric {
	var t []Metric
	for _, h := range histNames {
		for _, p := range pctNames {
			m := Metric{Name: p.key + "_" + h + "_ms", Unit: UnitMs, Help: p.help + " of " + h + " latency, ms", Better: -1,
				Run: func(in *runInputs) (float64, bool) {
					l, ok := in.r.Latency[h]
					return p.pick(l), ok
				}}
			if h == resultfile.HistDelivery {
				m.Span = p.span
			}
			if secondHists[h] {
				m.Over = func(w *windowStats) (float64, bool) {
					l, ok := w.latency(h)
					return p.pick(l), ok
				}
			}
			t = append(t, m)
		}
	}
	shadow := source("shadow_candidate")
	return append(t,
		Metric{Name: "deliveries", Unit: UnitCount, Help: "measured events received (duplicates included)", Better: 1,
			Run:  count(func(in *runInputs) int64 { return in.res.Events.Events }),
			Span: func(p PhaseReport) float64 { return float64(p.Deliveries) }},
		Metric{Name: "deliveries_per_s", Unit: UnitPerS, Help: "deliveries per second, mean over the seconds that had any", Better: 1,
			Run:  always(func(in *runInputs) float64 { return round3(ratio(in.res.Events.Events, in.busy)) }),
			Span: func(p PhaseReport) float64 { return p.DeliveriesPerS },
			Over: func(w *windowStats) (float64, bool) { return round3(ratio(w.deliveries, w.busy)), w.busy > 0 }},
		Metric{Name: "peak_deliveries_per_s", Unit: UnitPerS, Help: "deliveries in the busiest second", Better: 1,
			Run: count(func(in *runInputs) int64 { return in.peakDeliv })},
		Metric{Name: "publishes", Unit: UnitCount, Help: "publishes attempted",
			Run: count(func(in *runInputs) int64 { return in.res.Publish.Attempted })},
		Metric{Name: "publishes_ok", Unit: UnitCount, Help: "publishes that succeeded (a phase's metric)",
			Span: func(p PhaseReport) float64 { return float64(p.PublishesOK) }},
		Metric{Name: "publish_errors", Unit: UnitCount, Help: "publishes that failed", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.res.Publish.Failed })},
		Metric{Name: "publishes_failed", Unit: UnitCount, Help: "publishes that failed (a phase's metric)", Better: -1,
			Span: func(p PhaseReport) float64 { return float64(p.PublishesFailed) }},
		Metric{Name: "publish_error_rate", Unit: UnitRatio, Help: "publish_errors / publishes", Better: -1,
			Run: always(func(in *runInputs) float64 { return ratio(in.res.Publish.Failed, in.res.Publish.Attempted) }),
			Over: func(w *windowStats) (float64, bool) {
				n := w.publishesOK + w.publishesFailed
				return ratio(w.publishesFailed, n), n > 0
			}},
		Metric{Name: "errors", Unit: UnitCount, Help: "client errors of every kind (connect, stream, drops)", Better: -1,
			Run:  count(func(in *runInputs) int64 { return in.errs }),
			Span: func(p PhaseReport) float64 { return float64(p.Errors) }},
		Metric{Name: "error_rate", Unit: UnitRatio, Help: "(publish_errors + errors) / (publishes + connects + errors)", Better: -1,
			Run: always(func(in *runInputs) float64 {
				return ratio(in.res.Publish.Failed+in.errs, in.res.Publish.Attempted+in.res.Clients.Connects+in.errs)
			}),
			Over: func(w *windowStats) (float64, bool) {
				n := w.publishesOK + w.publishesFailed + w.connects + w.errors
				return ratio(w.publishesFailed+w.errors, n), n > 0
			}},
		Metric{Name: "expected", Unit: UnitCount, Help: "deliveries owed (swarm ledger credits)",
			Run: count(func(in *runInputs) int64 { return in.totals.Credit })},
		Metric{Name: "lost", Unit: UnitCount, Help: "owed deliveries never received (in a phase: by second of intended send time)", Better: -1,
			Run:  count(func(in *runInputs) int64 { return in.totals.Lost }),
			Span: func(p PhaseReport) float64 { return float64(p.Lost) }},
		Metric{Name: "duplicated", Unit: UnitCount, Help: "deliveries received more than once", Better: -1,
			Run:  count(func(in *runInputs) int64 { return in.totals.Duplicated }),
			Span: func(p PhaseReport) float64 { return float64(p.Duplicated) }},
		Metric{Name: "late", Unit: UnitCount, Help: "deliveries later than the swarm's late threshold", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.totals.Late })},
		Metric{Name: "reordered", Unit: UnitCount, Help: "deliveries out of order", Better: -1,
			Run:  count(func(in *runInputs) int64 { return in.totals.Reordered }),
			Span: func(p PhaseReport) float64 { return float64(p.Reordered) }},
		Metric{Name: "ledger_balance", Unit: UnitCount, Help: "swarm ledger: expected - received (0 when balanced)",
			Run: count(func(in *runInputs) int64 { return in.totals.Balance() })},
		Metric{Name: "connections_peak", Unit: UnitCount, Help: "most connections open at once", Better: 1,
			Run: count(func(in *runInputs) int64 { return in.peakOpen })},
		Metric{Name: "connections_end", Unit: UnitCount, Help: "connections open in the last second",
			Run: func(in *runInputs) (float64, bool) {
				if n := len(in.res.Series); n > 0 {
					return float64(in.res.Series[n-1].Open), true
				}
				return 0, false
			}},
		Metric{Name: "connects", Unit: UnitCount, Help: "successful connects, reconnects included",
			Run: count(func(in *runInputs) int64 { return in.res.Clients.Connects })},
		Metric{Name: "reconnects", Unit: UnitCount, Help: "reconnects after a drop or a storm cut", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.res.Clients.Reconnects })},
		Metric{Name: "drops", Unit: UnitCount, Help: "open streams the server or network ended", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.res.Clients.Drops })},
		Metric{Name: "clients_failed", Unit: UnitCount, Help: "clients that gave up (non-SSE answer)", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.res.Clients.Failed })},
		Metric{Name: "auth_errors", Unit: UnitCount, Help: "subscriptions refused with 401 or 403 (errors auth_unauthorized + auth_forbidden)", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.res.Errors["auth_unauthorized"] + in.res.Errors["auth_forbidden"] })},
		Metric{Name: "renewals", Unit: UnitCount, Help: "streams ended by darktime.renew (token expired) and resumed with a fresh token",
			Run: count(func(in *runInputs) int64 { return in.res.Clients.Renewals })},
		Metric{Name: "unbalanced_ledgers", Unit: UnitCount, Help: "ledgers (of every input) with something unexplained", Better: -1,
			Run: always(func(in *runInputs) float64 {
				v, _ := in.ledgers(func(string) bool { return true }, func(l LedgerReport) float64 {
					if l.Balanced {
						return 0
					}
					return 1
				})
				return v
			})},
		Metric{Name: "unexplained", Unit: UnitCount, Help: "ledger differences without a cause, summed over every ledger (default gate: == 0)", Better: -1,
			Run: always(func(in *runInputs) float64 {
				v, _ := in.ledgers(func(string) bool { return true }, unexplained)
				return v
			})},
		Metric{Name: "unexplained_swarm", Unit: UnitCount, Help: "swarm ledger differences without a cause (silent gaps, duplicates, reorders, ...)", Better: -1,
			Run: fromLedgers(source("swarm"), unexplained)},
		Metric{Name: "unexplained_server", Unit: UnitCount, Help: "server ledgers' differences without a cause (fan-out and written vs received)", Better: -1, Needs: "stats",
			Run: fromLedgers(func(s string) bool { return strings.HasPrefix(s, "server_") }, unexplained)},
		Metric{Name: "unexplained_shadow", Unit: UnitCount, Help: "shadow ledgers' differences without a cause, over candidate targets", Better: -1, Needs: "shadow",
			Run: fromLedgers(shadow, unexplained)},
		Metric{Name: "announced_lost", Unit: UnitCount, Help: "lost deliveries the target announced with darktime.missed", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.res.Attribution.Lost["announced"] })},
		Metric{Name: "unannounced_lost", Unit: UnitCount, Help: "lost deliveries the target did not announce with darktime.missed (lost - announced_lost), whatever explains them", Better: -1,
			Run: count(func(in *runInputs) int64 { return in.totals.Lost - in.res.Attribution.Lost["announced"] })},
		Metric{Name: "recovery_s", Unit: UnitSeconds, Help: "the longest recovery of a fault the runner watches (kill_redis_master, kill_redis_link), s; one that did not recover counts the time it was watched", Better: -1, Needs: "faults",
			Run: faultRecovery(func(r Recovery, v float64) float64 { return max(v, r.After.Seconds()) })},
		Metric{Name: "faults_unrecovered", Unit: UnitCount, Help: "faults the runner watched that did not recover before the run ended", Better: -1, Needs: "faults",
			Run: faultRecovery(func(r Recovery, v float64) float64 {
				if !r.Done {
					return v + 1
				}
				return v
			})},
		Metric{Name: "unreadable", Unit: UnitCount, Help: "events the swarm received but could not read: malformed, other_type, foreign (default gate: == 0)", Better: -1,
			Run: count(func(in *runInputs) int64 { return sum(unreadableKinds(in.res.Events)) })},
		Metric{Name: "discarded_at_cut", Unit: UnitCount, Help: "events read after the swarm's own storm cuts and not used (the streams resumed before them)",
			Run: count(func(in *runInputs) int64 { return in.res.Attribution.Hangups.Discarded })},
		Metric{Name: "server_balance", Unit: UnitCount, Help: "fanned out - written - dropped - queued over the run, all nodes", Needs: "stats",
			Run: fromLedgers(source("server_fanout"), func(l LedgerReport) float64 { return float64(l.Balance) })},
		Metric{Name: "server_dropped", Unit: UnitCount, Help: "copies the servers dropped during the run", Better: -1, Needs: "stats",
			Run: fromLedgers(source("server_fanout"), func(l LedgerReport) float64 { return float64(droppedTotal(l.Kinds)) })},
		Metric{Name: "server_written_vs_received", Unit: UnitCount, Help: "copies written by the servers - events read by the swarm", Needs: "stats",
			Run: fromLedgers(source("server_written"), func(l LedgerReport) float64 { return float64(l.Balance) })},
		Metric{Name: "shadow_balance", Unit: UnitCount, Help: "primary - candidate events, summed over candidate targets", Needs: "shadow",
			Run: fromLedgers(shadow, func(l LedgerReport) float64 { return float64(l.Balance) })},
		Metric{Name: "shadow_lost", Unit: UnitCount, Help: "primary events the candidate did not deliver", Better: -1, Needs: "shadow",
			Run: fromLedgers(shadow, shadowKind("lost"))},
		Metric{Name: "shadow_extra", Unit: UnitCount, Help: "candidate events the primary did not deliver", Better: -1, Needs: "shadow",
			Run: fromLedgers(shadow, shadowKind("extra"))},
		Metric{Name: "shadow_duplicated", Unit: UnitCount, Help: "candidate deliveries beyond the primary's", Better: -1, Needs: "shadow",
			Run: fromLedgers(shadow, shadowKind("duplicated"))},
		Metric{Name: "shadow_late", Unit: UnitCount, Help: "candidate events later than the proxy's late_ms", Better: -1, Needs: "shadow",
			Run: fromLedgers(shadow, shadowKind("late"))},
		Metric{Name: "shadow_reordered", Unit: UnitCount, Help: "candidate events out of the primary's order", Better: -1, Needs: "shadow",
			Run: fromLedgers(shadow, shadowKind("reordered"))},
	)
}()

// Vocabulary lists every name a gate or a comparison can give for the
// whole run — the metrics of MetricTable that the run has — and, last,
// the pattern of the per-phase metrics, so that `darktime report
// --metrics` shows them.
var Vocabulary = func() []Metric {
	var v []Metric
	for _, m := range MetricTable {
		if m.Run != nil {
			v = append(v, m)
		}
	}
	return append(v, Metric{Name: phasePattern, Help: "METRIC of the scenario phase NAME (darktime run), METRIC one of " + phaseMetricNames(), Needs: "scenario"})
}()

// WriteVocabulary prints Vocabulary, one metric a line (darktime report
// --metrics).
func WriteVocabulary(w io.Writer) error {
	for _, m := range Vocabulary {
		needs := ""
		if m.Needs != "" {
			needs = " (needs " + m.Needs + ")"
		}
		if _, err := fmt.Fprintf(w, "%-24s %s%s\n", m.Name, m.Help, needs); err != nil {
			return err
		}
	}
	return nil
}

// PhaseVocabulary lists the metrics of MetricTable that a phase has; a
// gate names them as phase.NAME.METRIC (e.g. "phase.spike.p99_delivery_ms
// < 500").
var PhaseVocabulary = func() []Metric {
	var v []Metric
	for _, m := range MetricTable {
		if m.PerPhase() {
			v = append(v, m)
		}
	}
	return v
}()

// phasePattern stands for the per-phase metrics in Vocabulary.
const phasePattern = "phase.NAME.METRIC"

func phaseMetricNames() string {
	var names []string
	for _, m := range MetricTable {
		if m.PerPhase() {
			names = append(names, m.Name)
		}
	}
	return strings.Join(names, ", ")
}

// tableMetric finds a metric of MetricTable by its own name.
func tableMetric(name string) (Metric, bool) {
	for _, m := range MetricTable {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
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
		case "faults":
			return 0, badInput("metric %s needs a scenario run with a fault whose recovery the runner watches (kill_redis_master, kill_redis_link)", name)
		}
		return 0, badInput("metric %s is not in this result (no %s latency recorded?)", name, name)
	}
	return v, nil
}

// num formats the run's metric name for the terminal, by its unit
// (ratios to 6 decimals). name must be in MetricTable: a summary line
// cannot show a metric the table does not define.
func (r *Report) num(name string) string {
	m, ok := tableMetric(name)
	if !ok {
		panic(fmt.Sprintf("report: metric %q is not in MetricTable", name))
	}
	v := r.Metrics[name]
	if m.Unit == UnitRatio {
		v = round6(v)
	}
	return formatNum(v)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// metrics computes, with MetricTable, the run's metrics that the inputs
// give.
func metrics(r *Report, res *resultfile.Result) map[string]float64 {
	in := newRunInputs(r, res)
	m := map[string]float64{}
	for _, mt := range MetricTable {
		if mt.Run == nil {
			continue
		}
		if v, ok := mt.Run(in); ok {
			m[mt.Name] = v
		}
	}
	return m
}

// faultRecovery folds f over the recoveries of the scenario's faults;
// ok is false when no fault was watched.
func faultRecovery(f func(r Recovery, v float64) float64) func(*runInputs) (float64, bool) {
	return func(in *runInputs) (float64, bool) {
		if in.r.Scenario == nil {
			return 0, false
		}
		var v float64
		watched := false
		for _, fl := range in.r.Scenario.Faults {
			if fl.Recovery != nil {
				v, watched = f(*fl.Recovery, v), true
			}
		}
		return round3(v), watched
	}
}
