package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/swarm/resultfile"
)

// Schema versions the report's JSON form (REPORT.md).
const Schema = "darktime.report/v1"

// Quantiles are the percentiles every latency summary carries.
var Quantiles = []float64{50, 90, 99, 99.9, 99.99}

// Report is what Build found. Its JSON form is the "darktime.report/v1"
// document described in REPORT.md.
type Report struct {
	Schema          string    `json:"schema"`
	RunID           string    `json:"run_id"`
	Parts           int       `json:"parts"`
	Profile         string    `json:"profile"`
	Target          string    `json:"target"`
	Started         time.Time `json:"started"`
	Ended           time.Time `json:"ended"`
	DurationSeconds float64   `json:"duration_seconds"`
	Interrupted     bool      `json:"interrupted"`

	// Metrics is every metric of the gate vocabulary the inputs give
	// (metrics.go), by name.
	Metrics map[string]float64 `json:"metrics"`
	// Latency summarises each histogram of the run (delivery, connect,
	// first_event, publish) in milliseconds.
	Latency map[string]Latency `json:"latency"`
	// Distribution is the delivery latency at percentiles from 0 to
	// 99.999, for the percentile-distribution chart.
	Distribution []PercentilePoint `json:"distribution"`
	// Series has one entry per second of the run.
	Series []SeriesPoint `json:"series"`
	// Ledgers are the +1/-1 accounts that must balance.
	Ledgers []LedgerReport `json:"ledgers"`
	// Errors counts the swarm's errors by kind.
	Errors map[string]int64 `json:"errors"`
	// Gates are the thresholds evaluated, when any (Report.Evaluate).
	Gates []GateResult `json:"gates,omitempty"`
	// Scenario echoes Inputs.Scenario: the experiment the run belongs to,
	// its phases and the faults injected.
	Scenario *Scenario `json:"scenario,omitempty"`
	// Phases has what each phase of the scenario measured, in its order.
	Phases []PhaseReport `json:"phases,omitempty"`
	// Aborted is set when an abort_on_fail threshold stopped the run
	// early (darktime run; SetAborted).
	Aborted *Abort `json:"aborted,omitempty"`

	// perSec is the merged result's seconds, for windowed gates; nil in a
	// report read back from JSON.
	perSec *perSecond
}

// Latency is one histogram's summary in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	P9999  float64 `json:"p9999_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
	StdDev float64 `json:"stddev_ms"`
}

// PercentilePoint is one point of a percentile distribution.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// SeriesPoint is one second of the run.
type SeriesPoint struct {
	T               int64   `json:"t"`
	Open            int64   `json:"open"`
	Connects        int64   `json:"connects"`
	Deliveries      int64   `json:"deliveries"`
	PublishesOK     int64   `json:"publishes_ok"`
	PublishesFailed int64   `json:"publishes_failed"`
	Errors          int64   `json:"errors"`
	Duplicated      int64   `json:"duplicated"`
	Reordered       int64   `json:"reordered"`
	P50             float64 `json:"p50_ms"`
	P90             float64 `json:"p90_ms"`
	P99             float64 `json:"p99_ms"`
	P999            float64 `json:"p999_ms"`
	Max             float64 `json:"max_ms"`
	// The swarm ledger's accounts whose window (intended send time) falls
	// in this second, summed over channels.
	LedgerBalance int64 `json:"ledger_balance"`
	Lost          int64 `json:"lost"`
}

func summarise(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{} // an empty histogram's mean is NaN, which JSON cannot carry
	}
	ms := func(v int64) float64 { return float64(v) / 1e3 }
	return Latency{
		Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), P9999: ms(h.ValueAtQuantile(99.99)),
		Max: ms(h.Max()), Mean: round3(h.Mean() / 1e3), StdDev: round3(h.StdDev() / 1e3),
	}
}

// round3 keeps three decimals, so that golden files do not depend on the
// last bits of a float.
func round3(v float64) float64 { return math.Round(v*1e3) / 1e3 }

// Build merges the results of one run, reconciles every ledger and
// computes latency, throughput and the metrics of the gate vocabulary.
func Build(in Inputs) (*Report, error) {
	if len(in.Results) == 0 {
		return nil, badInput("no swarm result given")
	}
	res, err := resultfile.Merge(in.Results...)
	if err != nil {
		if errors.Is(err, resultfile.ErrResult) {
			return nil, fmt.Errorf("%w: %w", ErrInput, err)
		}
		return nil, err
	}
	r := &Report{
		Schema: Schema, RunID: res.RunID, Parts: len(res.Parts), Profile: res.Profile, Target: res.Target,
		Started: res.Started.UTC(), Ended: res.Ended.UTC(), Interrupted: res.Interrupted,
		DurationSeconds: round3(res.Ended.Sub(res.Started).Seconds()),
		Metrics:         map[string]float64{}, Latency: map[string]Latency{}, Errors: map[string]int64{},
	}
	for k, v := range res.Errors {
		r.Errors[k] = v
	}
	var delivery *hdrhistogram.Histogram
	for _, name := range []string{resultfile.HistDelivery, resultfile.HistConnect, resultfile.HistFirstEvent, resultfile.HistPublish} {
		h, err := res.Histogram(name)
		if err != nil {
			return nil, badInput("histogram %s: %v", name, err)
		}
		if h == nil {
			continue
		}
		r.Latency[name] = summarise(h)
		if name == resultfile.HistDelivery {
			delivery = h
		}
	}
	if delivery != nil && delivery.TotalCount() > 0 {
		r.Distribution = distribution(delivery)
	}
	var phases []*phaseAcc
	if in.Scenario != nil {
		r.Scenario = echoScenario(in.Scenario)
		if phases, err = newPhaseAccs(r.Scenario); err != nil {
			return nil, err
		}
	}
	r.perSec = newPerSecond(res.Series)
	if r.Series, err = series(res, phases); err != nil {
		return nil, err
	}
	for _, p := range phases {
		r.Phases = append(r.Phases, p.finish(r.Series))
	}
	r.Ledgers = append(r.Ledgers, swarmLedger(res), publishLedger(res))
	if len(in.StatsBefore) > 0 || len(in.StatsAfter) > 0 {
		srv, written, err := serverLedgers(in.StatsBefore, in.StatsAfter, res, len(in.Shadow) > 0)
		if err != nil {
			return nil, err
		}
		r.Ledgers = append(r.Ledgers, srv, written)
	}
	for i, l := range in.Shadow {
		name := fmt.Sprintf("shadow[%d]", i)
		if i < len(in.ShadowNames) {
			name = in.ShadowNames[i]
		}
		r.Ledgers = append(r.Ledgers, shadowLedgers(name, l)...)
	}
	r.Metrics = metrics(r, res)
	return r, nil
}

// distribution samples the histogram on the HDR percentile scale: ever
// finer steps towards 100 (50, 75, 87.5, ...).
func distribution(h *hdrhistogram.Histogram) []PercentilePoint {
	var out []PercentilePoint
	for _, q := range []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100} {
		v := h.ValueAtQuantile(q)
		if q == 100 {
			v = h.Max()
		}
		out = append(out, PercentilePoint{Percentile: q, Ms: float64(v) / 1e3})
	}
	return out
}

// series turns the result's seconds into report points, adding the
// percentiles of each second's delivery histogram and the ledger's
// balance by window, and counts each second in the phases it overlaps.
// The result is merged: one entry per second.
func series(res *resultfile.Result, phases []*phaseAcc) ([]SeriesPoint, error) {
	byWindow := map[int64][2]int64{}
	for _, e := range res.Ledger.Entries() {
		w := byWindow[e.Window]
		w[0] += e.Balance()
		w[1] += e.Lost
		byWindow[e.Window] = w
	}
	var out []SeriesPoint
	seen := map[int64]bool{}
	for _, s := range res.Series {
		p := SeriesPoint{
			T: s.T, Open: s.Open, Connects: s.Connects, Deliveries: s.Events, PublishesOK: s.PublishesOK,
			PublishesFailed: s.PublishesFailed, Errors: s.Errors, Duplicated: s.Duplicated, Reordered: s.Reordered,
		}
		var h *hdrhistogram.Histogram
		if enc, ok := s.Histograms[resultfile.HistDelivery]; ok {
			var err error
			if h, err = hdrhistogram.Decode([]byte(enc)); err != nil {
				return nil, badInput("delivery histogram of second %d: %v", s.T, err)
			}
			l := summarise(h)
			p.P50, p.P90, p.P99, p.P999, p.Max = l.P50, l.P90, l.P99, l.P999, l.Max
		}
		w := byWindow[s.T]
		p.LedgerBalance, p.Lost = w[0], w[1]
		seen[s.T] = true
		out = append(out, p)
		addToPhases(phases, p, h)
	}
	// Ledger windows are seconds of intended send time; any outside the
	// series still belong on the chart.
	for t, w := range byWindow {
		if t != 0 && !seen[t] && (w[0] != 0 || w[1] != 0) {
			p := SeriesPoint{T: t, LedgerBalance: w[0], Lost: w[1]}
			out = append(out, p)
			addToPhases(phases, p, nil)
		}
	}
	slices.SortFunc(out, func(a, b SeriesPoint) int { return int(a.T - b.T) })
	return out, nil
}
