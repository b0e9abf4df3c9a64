package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/histogram"
	"github.com/darktime/darktime/swarm/resultfile"
)

// Windowed gates, "p99_delivery_ms[10s] < 50": the gate judges the worst
// window of that many seconds. Windows slide by one second over the
// seconds of the run (phase.NAME.METRIC[W]: over the seconds that overlap
// the phase, as a phase's metrics count them); each window's value is
// the metric's Over computed from the window's seconds alone — a
// percentile of their merged histograms, a rate as the ratio of their
// sums. A window with nothing to measure (no latency recorded, no
// operation) is left out. The gate's value is the worst window's: the
// highest for < and <=, the lowest for > and >=; on a tie the earliest.
// A span shorter than the window is judged as one window over all of it
// (WindowResult.Seconds says so), and a gate none of whose windows had
// anything to measure fails: a gate never passes by default.

// MaxWindow is the longest window a gate may name: the longest run.
const MaxWindow = 24 * time.Hour

// secondHists are the histograms a swarm result keeps per second (the
// recorder's delivery, connect and publish): the latency metrics that
// take a window.
var secondHists = map[string]bool{resultfile.HistDelivery: true, resultfile.HistConnect: true, resultfile.HistPublish: true}

// parseWindow reads a window, whole seconds with a unit ("10s", "1m").
func parseWindow(s string) (int, error) {
	d, err := time.ParseDuration(s)
	switch {
	case s == "":
		return 0, fmt.Errorf("empty window []: want whole seconds with a unit, like [10s] or [1m]")
	case err != nil:
		return 0, fmt.Errorf("window [%s] is not a duration: want whole seconds with a unit, like [10s] or [1m]", s)
	case d < time.Second:
		return 0, fmt.Errorf("window [%s] is shorter than 1s: the run is measured second by second", s)
	case d%time.Second != 0:
		return 0, fmt.Errorf("window [%s] is not a whole number of seconds: the run is measured second by second", s)
	case d > MaxWindow:
		return 0, fmt.Errorf("window [%s] is longer than a run can be (%s)", s, formatWindow(int(MaxWindow/time.Second)))
	}
	return int(d / time.Second), nil
}

// formatWindow writes a window back in its shortest form: 10s, 2m, 1h,
// 90s.
func formatWindow(secs int) string {
	switch {
	case secs%3600 == 0:
		return fmt.Sprintf("%dh", secs/3600)
	case secs%60 == 0:
		return fmt.Sprintf("%dm", secs/60)
	}
	return fmt.Sprintf("%ds", secs)
}

// windowable checks that g's metric and operator take a window; expr is
// the gate as written, for the message.
func windowable(g Gate, expr string) error {
	name := g.Metric
	if strings.HasPrefix(name, phasePrefix) {
		_, metric, ok := PhaseMetric(name)
		if !ok {
			return fmt.Errorf("gate %q: %w", expr, errUnknownPhaseMetric(name))
		}
		name = metric
	}
	m, ok := tableMetric(name)
	if !ok {
		return fmt.Errorf("gate %q: %w", expr, errUnknownMetric(name))
	}
	switch {
	case !m.Windowed() && m.Unit == UnitMs:
		return badInput("gate %q: %s does not take a window: the swarm does not record that latency second by second (a window takes %s)",
			expr, name, windowedNames())
	case !m.Windowed():
		return badInput("gate %q: %s does not take a window: it is a total of the run, not a latency or a rate (a window takes %s)",
			expr, name, windowedNames())
	}
	switch g.Op {
	case "==", "!=":
		return badInput("gate %q: a window takes < <= > >=: the gate judges the worst window, the highest for < and <=, the lowest for > and >=", expr)
	}
	return nil
}

// windowedNames lists the metrics that take a window, the latency ones
// as a pattern.
func windowedNames() string {
	var hists, other []string
	for _, h := range histNames {
		if secondHists[h] {
			hists = append(hists, h)
		}
	}
	for _, m := range MetricTable {
		if m.Windowed() && !strings.HasSuffix(m.Name, "_ms") {
			other = append(other, m.Name)
		}
	}
	return "{p50,p90,p99,p999,p9999,max,mean}_{" + strings.Join(hists, ",") + "}_ms, " + strings.Join(other, ", ")
}

// WindowResult is the worst window of a windowed gate, [Start, End).
type WindowResult struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// StartOffsetSeconds and EndOffsetSeconds are Start and End from the
	// run's start (the report's started).
	StartOffsetSeconds float64 `json:"start_offset_seconds"`
	EndOffsetSeconds   float64 `json:"end_offset_seconds"`
	// Seconds is the window's length: the gate's, or less when the run
	// (or the phase) was shorter and was judged as one window.
	Seconds int `json:"seconds"`
	// Windows is how many windows had something to measure.
	Windows int `json:"windows"`
}

// newWindowResult is the window of seconds [from, to] of a run that
// started at started.
func newWindowResult(from, to int64, started time.Time, windows int) *WindowResult {
	w := &WindowResult{Start: time.Unix(from, 0).UTC(), End: time.Unix(to+1, 0).UTC(), Seconds: int(to - from + 1), Windows: windows}
	w.offsets(started)
	return w
}

// offsets sets the offsets from the run's start (never negative: the
// first second begins at the whole second before it).
func (w *WindowResult) offsets(started time.Time) {
	w.StartOffsetSeconds = max(0, round3(w.Start.Sub(started).Seconds()))
	w.EndOffsetSeconds = max(0, round3(w.End.Sub(started).Seconds()))
}

// Span says where the window lies, "+12s to +22s".
func (w *WindowResult) Span() string {
	if w == nil {
		return ""
	}
	return "+" + formatNum(w.StartOffsetSeconds) + "s to +" + formatNum(w.EndOffsetSeconds) + "s"
}

// suffix is what a gate's line adds about its worst window.
func (w *WindowResult) suffix() string {
	if w == nil {
		return ""
	}
	short := ""
	if w.Windows == 1 && w.Seconds > 0 {
		short = ", the only one"
	}
	return fmt.Sprintf(" in the worst window, %s (%s UTC%s)", w.Span(), w.Start.Format("15:04:05"), short)
}

// span is a stretch of the run's seconds, [first, last] in Unix seconds.
type span struct{ first, last int64 }

// windowAt is the window of w seconds of sp that ends with second end:
// [end-w+1, end] when it lies in sp, or all of sp, at its last second,
// when sp is shorter than w.
func windowAt(sp span, w int, end int64) (from int64, ok bool) {
	if sp.last-sp.first+1 < int64(w) {
		return sp.first, end == sp.last
	}
	from = end - int64(w) + 1
	return from, from >= sp.first && end <= sp.last
}

// phaseSpan is the seconds that overlap a phase, [start, start+duration):
// those a phase's metrics count (phaseAcc.overlaps).
func phaseSpan(p Phase) span {
	end := p.Start.Add(p.Duration)
	last := end.Unix() - 1
	if end.Nanosecond() > 0 {
		last = end.Unix()
	}
	return span{first: p.Start.Unix(), last: last}
}

// worse reports whether a is a worse value than b for a gate with op:
// higher for < and <=, lower for > and >=.
func worse(op string, a, b float64) bool {
	if op == ">" || op == ">=" {
		return a < b
	}
	return a > b
}

// perSecond is the run's seconds as the result has them (one per second,
// sorted), with each second's histograms decoded on first use.
type perSecond struct {
	secs    []resultfile.Second
	bars    map[string][][]bar
	scratch map[string]*hdrhistogram.Histogram
}

// bar is one bucket of a second's histogram: a value (µs) and its count.
type bar struct{ v, n int64 }

func newPerSecond(series []resultfile.Second) *perSecond {
	secs := slices.Clone(series)
	slices.SortFunc(secs, func(a, b resultfile.Second) int { return int(a.T - b.T) })
	return &perSecond{secs: secs, bars: map[string][][]bar{}, scratch: map[string]*hdrhistogram.Histogram{}}
}

// add appends a second later than every other (a live run's).
func (p *perSecond) add(s resultfile.Second) {
	p.secs = append(p.secs, s)
}

// span is every second of the run.
func (p *perSecond) span() (span, bool) {
	if len(p.secs) == 0 {
		return span{}, false
	}
	return span{p.secs[0].T, p.secs[len(p.secs)-1].T}, true
}

// index is the position of the first second at or after t.
func (p *perSecond) index(t int64) int {
	return sort.Search(len(p.secs), func(i int) bool { return p.secs[i].T >= t })
}

// histBars is second i's histogram name as bars (nil when none).
func (p *perSecond) histBars(name string, i int) ([]bar, error) {
	all, ok := p.bars[name]
	if !ok || len(all) < len(p.secs) {
		all = append(all, make([][]bar, len(p.secs)-len(all))...)
		p.bars[name] = all
	}
	if all[i] != nil {
		return all[i], nil
	}
	enc, ok := p.secs[i].Histograms[name]
	if !ok {
		all[i] = []bar{}
		return all[i], nil
	}
	h, err := hdrhistogram.Decode([]byte(enc))
	if err != nil {
		return nil, badInput("%s histogram of second %d: %v", name, p.secs[i].T, err)
	}
	bs := []bar{}
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			bs = append(bs, bar{max(histogram.Min, min(b.From, histogram.Max)), b.Count})
		}
	}
	all[i] = bs
	return bs, nil
}

// windowStats is what the seconds [from, to] of a run measured: the sums
// of their counts and, on demand, their merged histograms.
type windowStats struct {
	p      *perSecond
	lo, hi int   // the seconds' indices, [lo, hi)
	busy   int64 // seconds with deliveries
	windowCounters
	err error
}

// windowCounters are the sums of a stretch of seconds.
type windowCounters struct {
	deliveries, publishesOK, publishesFailed, errors, connects, duplicated, reordered int64
}

func (p *perSecond) stats(from, to int64) *windowStats {
	w := &windowStats{p: p, lo: p.index(from)}
	w.hi = p.index(to + 1)
	for _, s := range p.secs[w.lo:w.hi] {
		c := &w.windowCounters
		c.deliveries += s.Events
		c.publishesOK += s.PublishesOK
		c.publishesFailed += s.PublishesFailed
		c.errors += s.Errors
		c.connects += s.Connects
		c.duplicated += s.Duplicated
		c.reordered += s.Reordered
		if s.Events > 0 {
			w.busy++
		}
	}
	return w
}

// merged is the window's histogram name: its seconds' merged (reusing
// one scratch histogram per name); nil when they recorded nothing.
func (w *windowStats) merged(name string) *hdrhistogram.Histogram {
	h := w.p.scratch[name]
	if h == nil {
		h = histogram.New()
		w.p.scratch[name] = h
	}
	h.Reset()
	for i := w.lo; i < w.hi; i++ {
		bs, err := w.p.histBars(name, i)
		if err != nil {
			w.err = err
			return nil
		}
		for _, b := range bs {
			_ = h.RecordValues(b.v, b.n) // clamped into range; a count past int64 is dropped
		}
	}
	if h.TotalCount() == 0 {
		return nil
	}
	return h
}

// latency summarises the window's histogram name; ok is false when it
// recorded nothing.
func (w *windowStats) latency(name string) (Latency, bool) {
	h := w.merged(name)
	if h == nil {
		return Latency{}, false
	}
	return summarise(h), true
}

// windowGate is a windowed gate's metric and the stretch its windows
// slide over.
type windowGate struct {
	g  Gate
	m  Metric
	sp span
}

// worstWindow judges every window of wg ending at or before upTo and
// returns the worst value, its window and how many windows had a value.
func (p *perSecond) worstWindow(wg windowGate, upTo int64) (v float64, from, to int64, n int, err error) {
	for end := wg.sp.first; end <= min(wg.sp.last, upTo); end++ {
		start, ok := windowAt(wg.sp, wg.g.WindowSeconds, end)
		if !ok {
			continue
		}
		x, has, err := p.judge(wg.m, start, end)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		if !has {
			continue
		}
		if n == 0 || worse(wg.g.Op, x, v) {
			v, from, to = x, start, end
		}
		n++
	}
	return v, from, to, n, nil
}

// judge is m over the seconds [from, to]; ok is false when they had
// nothing to measure.
func (p *perSecond) judge(m Metric, from, to int64) (float64, bool, error) {
	w := p.stats(from, to)
	v, ok := m.Over(w)
	return v, ok, w.err
}

// windowGateOf resolves a windowed gate's metric and span on the report.
func (r *Report) windowGateOf(g Gate) (windowGate, error) {
	if r.perSec == nil {
		return windowGate{}, badInput("a windowed gate needs the run's seconds: build the report from the swarm result files")
	}
	all, ok := r.perSec.span()
	if !ok {
		return windowGate{}, badInput("the result has no second of the run to slide a window over")
	}
	name := g.Metric
	sp := all
	if phase, metric, isPhase := PhaseMetric(g.Metric); isPhase {
		name = metric
		p, err := r.phase(g.Metric, phase)
		if err != nil {
			return windowGate{}, err
		}
		sp = phaseSpan(p)
		sp.first, sp.last = max(sp.first, all.first), min(sp.last, all.last)
		if sp.first > sp.last {
			return windowGate{}, badInput("metric %s: no second of the run falls in phase %s (did the run end before it?)", g.Metric, phase)
		}
	}
	m, _ := tableMetric(name) // ParseGate checked it
	return windowGate{g: g, m: m, sp: sp}, nil
}

// evaluateWindowed is a windowed gate's result: the worst window's value.
func (r *Report) evaluateWindowed(g Gate) (GateResult, error) {
	wg, err := r.windowGateOf(g)
	if err != nil {
		return GateResult{}, err
	}
	v, from, to, n, err := r.perSec.worstWindow(wg, wg.sp.last)
	if err != nil {
		return GateResult{}, err
	}
	if n == 0 {
		return GateResult{Gate: g, Note: "no window had anything to measure (nothing recorded for " + wg.m.Name + ")"}, nil
	}
	return GateResult{Gate: g, Value: v, Pass: compare(v, g.Op, g.Threshold), Window: newWindowResult(from, to, r.Started, n)}, nil
}

// phase finds the scenario's phase name for the metric metric.
func (r *Report) phase(metric, name string) (Phase, error) {
	if r.Scenario == nil || len(r.Scenario.Phases) == 0 {
		return Phase{}, badInput("metric %s needs a scenario run with phases (darktime run)", metric)
	}
	var names []string
	for _, p := range r.Scenario.Phases {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Phase{}, badInput("metric %s: scenario %s has no phase %q (its phases: %s)", metric, r.Scenario.Name, name, strings.Join(names, ", "))
}
