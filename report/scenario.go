package report

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Scenario describes the experiment a run belongs to (`darktime run`): the
// report echoes it, measures each phase and marks the faults.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	File        string `json:"file,omitempty"`
	// Target is one line: "2 redis node(s)", "nchan (started)".
	Target string `json:"target,omitempty"`
	// Label is the target's label: primary, compare, ...
	Label  string  `json:"label,omitempty"`
	Phases []Phase `json:"phases,omitempty"`
	Faults []Fault `json:"faults,omitempty"`
}

// Phase is one stretch of publishing, [Start, Start+Duration).
type Phase struct {
	Name       string
	Start      time.Time
	Duration   time.Duration
	RatePerS   float64
	HotChannel *int
}

// phaseJSON is Phase in JSON: durations in seconds, as everywhere in
// darktime.report/v1.
type phaseJSON struct {
	Name            string    `json:"name"`
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"duration_seconds"`
	RatePerS        float64   `json:"rate_per_s"`
	HotChannel      *int      `json:"hot_channel,omitempty"`
}

// MarshalJSON writes the duration in seconds ("duration_seconds").
func (p Phase) MarshalJSON() ([]byte, error) {
	return json.Marshal(phaseJSON{p.Name, p.Start, round3(p.Duration.Seconds()), p.RatePerS, p.HotChannel})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Phase) UnmarshalJSON(data []byte) error {
	var j phaseJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*p = Phase{Name: j.Name, Start: j.Start, Duration: seconds(j.DurationSeconds), RatePerS: j.RatePerS, HotChannel: j.HotChannel}
	return nil
}

// Fault is one fault the runner injected.
type Fault struct {
	// Kind is kill_node, pause_node, restart_redis, kill_redis_master,
	// kill_redis_link, slow_consumers or storm.
	Kind string
	// Detail says what was done: "node 1", "200 clients, 500ms per read".
	Detail string
	At     time.Time
	// Offset is At from the start of the first phase.
	Offset time.Duration
	// Error says why the runner could not inject it, when it could not.
	Error string
	// Recovery is how long the target took to be whole again, for the
	// faults whose end the runner watches (kill_redis_master,
	// kill_redis_link); nil for the others.
	Recovery *Recovery
}

// Recovery is the time from a fault until the target was whole again:
// for kill_redis_master, the cluster serving every slot from a live
// master and every node answering /healthz 200 with no link to the dead
// one; for kill_redis_link, the node having noticed (its broker_errors
// up) and answering /healthz 200 with every link up. Done is false when
// that did not happen while the runner watched (until the end of the
// run): After is then how long it watched.
type Recovery struct {
	After time.Duration
	Done  bool
}

type faultJSON struct {
	Kind            string    `json:"kind"`
	Detail          string    `json:"detail"`
	At              time.Time `json:"at"`
	OffsetSeconds   float64   `json:"offset_seconds"`
	Error           string    `json:"error,omitempty"`
	RecoverySeconds *float64  `json:"recovery_seconds,omitempty"`
	Recovered       *bool     `json:"recovered,omitempty"`
}

// MarshalJSON writes the offset and the recovery in seconds
// ("offset_seconds", "recovery_seconds" with "recovered").
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Kind: f.Kind, Detail: f.Detail, At: f.At, OffsetSeconds: round3(f.Offset.Seconds()), Error: f.Error}
	if r := f.Recovery; r != nil {
		after, done := round3(r.After.Seconds()), r.Done
		j.RecoverySeconds, j.Recovered = &after, &done
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var j faultJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*f = Fault{Kind: j.Kind, Detail: j.Detail, At: j.At, Offset: seconds(j.OffsetSeconds), Error: j.Error}
	if j.RecoverySeconds != nil {
		f.Recovery = &Recovery{After: seconds(*j.RecoverySeconds), Done: j.Recovered != nil && *j.Recovered}
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// PhaseReport is what one phase measured: the sums of the seconds of the
// series that overlap the phase, and the delivery latency of their merged
// histograms. A second cut by a phase boundary counts in both phases.
// The numeric fields other than first_t, last_t and seconds are the
// phase's gate metrics, phase.NAME.FIELD (PhaseVocabulary, the metrics of
// MetricTable with a Span).
type PhaseReport struct {
	Name string `json:"name"`
	// Seconds is how many seconds of the series were counted, FirstT and
	// LastT the first and last of them (Unix s; 0 when none).
	Seconds         int     `json:"seconds"`
	FirstT          int64   `json:"first_t"`
	LastT           int64   `json:"last_t"`
	Deliveries      int64   `json:"deliveries"`
	DeliveriesPerS  float64 `json:"deliveries_per_s"`
	PublishesOK     int64   `json:"publishes_ok"`
	PublishesFailed int64   `json:"publishes_failed"`
	Errors          int64   `json:"errors"`
	Duplicated      int64   `json:"duplicated"`
	Reordered       int64   `json:"reordered"`
	Lost            int64   `json:"lost"`
	P50             float64 `json:"p50_delivery_ms"`
	P90             float64 `json:"p90_delivery_ms"`
	P99             float64 `json:"p99_delivery_ms"`
	P999            float64 `json:"p999_delivery_ms"`
	Max             float64 `json:"max_delivery_ms"`
}

const phasePrefix = "phase."

// PhaseMetric splits a per-phase metric name "phase.NAME.METRIC" into the
// phase's name and the metric. ok is false when name is not of that form
// or NAME is not lower-case letters, digits and - (a scenario phase name);
// whether METRIC is in PhaseVocabulary is LookupMetric's question.
func PhaseMetric(name string) (phase, metric string, ok bool) {
	rest, found := strings.CutPrefix(name, phasePrefix)
	if !found {
		return "", "", false
	}
	phase, metric, found = strings.Cut(rest, ".")
	if !found || phase == "" || metric == "" {
		return "", "", false
	}
	for _, c := range phase {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return "", "", false
		}
	}
	return phase, metric, true
}

// lookupPhaseMetric is LookupMetric for "phase.NAME.METRIC".
func lookupPhaseMetric(name string) (Metric, bool) {
	_, metric, ok := PhaseMetric(name)
	if !ok {
		return Metric{}, false
	}
	m, ok := tableMetric(metric)
	if !ok || !m.PerPhase() {
		return Metric{}, false
	}
	m.Name, m.Needs, m.Run = name, "scenario", nil
	return m, true
}

// phaseValue is Report.Value for "phase.NAME.METRIC". A phase none of
// whose seconds was measured gives nothing rather than zeros, so that a
// gate on it cannot pass by default.
func (r *Report) phaseValue(name string) (float64, error) {
	phase, metric, _ := PhaseMetric(name)
	if r.Scenario == nil || len(r.Phases) == 0 {
		return 0, badInput("metric %s needs a scenario run with phases (darktime run)", name)
	}
	var names []string
	for _, p := range r.Phases {
		if p.Name != phase {
			names = append(names, p.Name)
			continue
		}
		if p.Seconds == 0 {
			return 0, badInput("metric %s: no second of the run falls in phase %s (did the run end before it?)", name, phase)
		}
		m, _ := tableMetric(metric) // a phase's metric: ParseGate and LookupMetric said so
		return m.Span(p), nil
	}
	return 0, badInput("metric %s: scenario %s has no phase %q (its phases: %s)", name, r.Scenario.Name, phase, strings.Join(names, ", "))
}

// phaseAcc sums the seconds of one phase.
type phaseAcc struct {
	PhaseReport
	start, end time.Time
	seen       map[int64]bool
	delivery   *hdrhistogram.Histogram
}

// overlaps tells whether second t, [t, t+1), overlaps the phase.
func (a *phaseAcc) overlaps(t int64) bool {
	return time.Unix(t, 0).Before(a.end) && time.Unix(t+1, 0).After(a.start)
}

func newPhaseAccs(sc *Scenario) ([]*phaseAcc, error) {
	var out []*phaseAcc
	seen := map[string]bool{}
	for _, p := range sc.Phases {
		switch {
		case p.Name == "":
			return nil, badInput("scenario %s: a phase without a name", sc.Name)
		case seen[p.Name]:
			return nil, badInput("scenario %s: two phases named %q", sc.Name, p.Name)
		case p.Duration < 0:
			return nil, badInput("scenario %s: phase %s lasts %v", sc.Name, p.Name, p.Duration)
		}
		seen[p.Name] = true
		out = append(out, &phaseAcc{PhaseReport: PhaseReport{Name: p.Name}, start: p.Start, end: p.Start.Add(p.Duration), seen: map[int64]bool{}})
	}
	return out, nil
}

// addToPhases counts second p, and its delivery histogram h (nil when none), in
// every phase it overlaps. h is not kept: it is merged.
func addToPhases(accs []*phaseAcc, p SeriesPoint, h *hdrhistogram.Histogram) {
	for _, a := range accs {
		if !a.overlaps(p.T) {
			continue
		}
		if !a.seen[p.T] {
			a.seen[p.T] = true
			a.Seconds++
		}
		a.Deliveries += p.Deliveries
		a.PublishesOK += p.PublishesOK
		a.PublishesFailed += p.PublishesFailed
		a.Errors += p.Errors
		a.Duplicated += p.Duplicated
		a.Reordered += p.Reordered
		a.Lost += p.Lost
		if h == nil {
			continue
		}
		if a.delivery == nil {
			a.delivery = hdrhistogram.Import(h.Export())
		} else {
			a.delivery.Merge(h)
		}
	}
}

// finish turns the sums into the phase's report. points is the report's
// series, to count the seconds with deliveries.
func (a *phaseAcc) finish(points []SeriesPoint) PhaseReport {
	p := a.PhaseReport
	var busy int64
	for _, s := range points {
		if a.seen[s.T] && s.Deliveries > 0 {
			busy++
		}
	}
	p.DeliveriesPerS = round3(ratio(p.Deliveries, busy))
	if p.Seconds > 0 {
		ts := make([]int64, 0, len(a.seen))
		for t := range a.seen {
			ts = append(ts, t)
		}
		p.FirstT, p.LastT = slices.Min(ts), slices.Max(ts)
	}
	if a.delivery != nil {
		l := summarise(a.delivery)
		p.P50, p.P90, p.P99, p.P999, p.Max = l.P50, l.P90, l.P99, l.P999, l.Max
	}
	return p
}

// echoScenario copies the scenario for the report, times in UTC like the
// rest of it, so that later changes to the caller's copy do not show.
func echoScenario(sc *Scenario) *Scenario {
	out := *sc
	out.Phases = make([]Phase, len(sc.Phases))
	for i, p := range sc.Phases {
		p.Start = p.Start.UTC()
		if p.HotChannel != nil {
			hc := *p.HotChannel
			p.HotChannel = &hc
		}
		out.Phases[i] = p
	}
	out.Faults = make([]Fault, len(sc.Faults))
	for i, f := range sc.Faults {
		f.At = f.At.UTC()
		if f.Recovery != nil {
			r := *f.Recovery
			f.Recovery = &r
		}
		out.Faults[i] = f
	}
	if len(out.Phases) == 0 {
		out.Phases = nil
	}
	if len(out.Faults) == 0 {
		out.Faults = nil
	}
	return &out
}
