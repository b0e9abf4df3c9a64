package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/swarm/resultfile"
)

// sec is one second of a hand-made run: a delivery per latency (µs;
// below 2048 an HdrHistogram of 3 significant figures keeps them exact)
// and the second's counters.
type sec struct {
	lat                                      []int64
	pubOK, pubFailed, errs, dup, reord, lost int64
}

// secondsRun makes part index of count of a run whose second i (from t0)
// is secs[i]: part p gets the deliveries k with k%count == p, part 0 the
// counters.
func secondsRun(t testing.TB, secs []sec, index, count int) *resultfile.Result {
	t.Helper()
	total := newHist()
	l := ledger.New(time.Second)
	r := &resultfile.Result{
		Schema: resultfile.Schema, RunID: "phases", Parts: []resultfile.PartInfo{{Part: resultfile.Part{Index: index, Count: count}}},
		Profile: "darktime", Target: "http://127.0.0.1:8080",
		Started: time.Unix(t0, 0).UTC(), Ended: time.Unix(t0+int64(len(secs)), 0).UTC(),
		Errors: map[string]int64{}, Summary: map[string]resultfile.Percentiles{},
	}
	for i, s := range secs {
		at := time.Unix(t0+int64(i), 0)
		h := newHist()
		var events int64
		for k, us := range s.lat {
			if k%count == index {
				_ = h.RecordValue(us)
				events++
			}
		}
		total.Merge(h)
		p := resultfile.Second{T: at.Unix(), Open: 10, Events: events}
		if events > 0 {
			p.Histograms = map[string]string{resultfile.HistDelivery: encode(t, h)}
		}
		cnt := ledger.Counts{Credit: events, Debit: events}
		if index == 0 {
			p.PublishesOK, p.PublishesFailed, p.Errors, p.Duplicated, p.Reordered = s.pubOK, s.pubFailed, s.errs, s.dup, s.reord
			cnt.Credit += s.lost
			cnt.Lost = s.lost
			r.Errors["stream"] += s.errs
			r.Publish.Attempted += s.pubOK + s.pubFailed
			r.Publish.OK += s.pubOK
			r.Publish.Failed += s.pubFailed
		}
		l.Apply("ch0", at, cnt)
		r.Series = append(r.Series, p)
		r.Events.Events += events
	}
	r.Histograms = map[string]string{resultfile.HistDelivery: encode(t, total)}
	r.Ledger = l
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := resultfile.ReadResult(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// repeat is n deliveries of us µs.
func repeat(n int, us int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = us
	}
	return out
}

func at(s float64) time.Time { return time.Unix(t0, 0).Add(time.Duration(s * float64(time.Second))) }

func TestPhaseReports(t *testing.T) {
	t.Parallel()
	// Six seconds: a quiet start, an outage in second 3 (nothing delivered,
	// publishes failing, 4 deliveries lost), slow deliveries in 4.
	run := []sec{
		{lat: repeat(10, 1000), pubOK: 1},
		{lat: repeat(10, 1200), pubOK: 1},
		{lat: append(repeat(10, 1500), repeat(10, 1000)...), pubOK: 2, dup: 1},
		{pubFailed: 2, errs: 3, lost: 4},
		{lat: repeat(5, 2000), pubOK: 2, reord: 2},
		{lat: repeat(10, 1000), pubOK: 1},
	}
	for _, tc := range []struct {
		name   string
		phases []Phase
		want   []PhaseReport
	}{
		{
			name:   "aligned",
			phases: []Phase{{Name: "warm-up", Start: at(0), Duration: 2 * time.Second}, {Name: "steady", Start: at(2), Duration: 4 * time.Second}},
			want: []PhaseReport{
				{Name: "warm-up", Seconds: 2, FirstT: t0, LastT: t0 + 1, Deliveries: 20, DeliveriesPerS: 10, PublishesOK: 2,
					P50: 1, P90: 1.2, P99: 1.2, P999: 1.2, Max: 1.2},
				// 35 deliveries over the 3 seconds that had any: 20 at 1 ms, 10
				// at 1.5 ms, 5 at 2 ms.
				{Name: "steady", Seconds: 4, FirstT: t0 + 2, LastT: t0 + 5, Deliveries: 35, DeliveriesPerS: 11.667, PublishesOK: 5,
					PublishesFailed: 2, Errors: 3, Duplicated: 1, Reordered: 2, Lost: 4, P50: 1, P90: 2, P99: 2, P999: 2, Max: 2},
			},
		},
		{
			// [t0+1.5, t0+3.5) overlaps seconds 1, 2 and 3.
			name:   "unaligned",
			phases: []Phase{{Name: "spike", Start: at(1.5), Duration: 2 * time.Second}},
			want: []PhaseReport{{Name: "spike", Seconds: 3, FirstT: t0 + 1, LastT: t0 + 3, Deliveries: 30, DeliveriesPerS: 15,
				PublishesOK: 3, PublishesFailed: 2, Errors: 3, Duplicated: 1, Lost: 4, P50: 1.2, P90: 1.5, P99: 1.5, P999: 1.5, Max: 1.5}},
		},
		{
			// An end on a second's start leaves that second out.
			name:   "one second",
			phases: []Phase{{Name: "blip", Start: at(4), Duration: time.Second}},
			want: []PhaseReport{{Name: "blip", Seconds: 1, FirstT: t0 + 4, LastT: t0 + 4, Deliveries: 5, DeliveriesPerS: 5,
				PublishesOK: 2, Reordered: 2, P50: 2, P90: 2, P99: 2, P999: 2, Max: 2}},
		},
		{
			name:   "outage only",
			phases: []Phase{{Name: "down", Start: at(3), Duration: time.Second}},
			want:   []PhaseReport{{Name: "down", Seconds: 1, FirstT: t0 + 3, LastT: t0 + 3, PublishesFailed: 2, Errors: 3, Lost: 4}},
		},
		{
			name: "after the run",
			phases: []Phase{{Name: "all", Start: at(0), Duration: 6 * time.Second}, {Name: "late", Start: at(10), Duration: 5 * time.Second},
				{Name: "unstarted", Duration: time.Minute}},
			want: []PhaseReport{
				{Name: "all", Seconds: 6, FirstT: t0, LastT: t0 + 5, Deliveries: 55, DeliveriesPerS: 11, PublishesOK: 7, PublishesFailed: 2,
					Errors: 3, Duplicated: 1, Reordered: 2, Lost: 4, P50: 1, P90: 1.5, P99: 2, P999: 2, Max: 2},
				{Name: "late"}, {Name: "unstarted"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := &Scenario{Name: "phases", Phases: tc.phases}
			for _, parts := range []int{1, 3} {
				var results []*resultfile.Result
				for i := range parts {
					results = append(results, secondsRun(t, run, i, parts))
				}
				r, err := Build(Inputs{Results: results, Scenario: sc})
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Phases) != len(tc.want) {
					t.Fatalf("%d part(s): %d phase reports, want %d", parts, len(r.Phases), len(tc.want))
				}
				for i, want := range tc.want {
					if got := r.Phases[i]; got != want {
						t.Errorf("%d part(s), phase %s:\n got %+v\nwant %+v", parts, want.Name, got, want)
					}
				}
			}
		})
	}
}

func TestPhaseInputErrors(t *testing.T) {
	t.Parallel()
	res := secondsRun(t, []sec{{lat: repeat(3, 1000)}}, 0, 1)
	for name, phases := range map[string][]Phase{
		"unnamed":  {{Start: at(0), Duration: time.Second}},
		"twice":    {{Name: "a", Start: at(0), Duration: time.Second}, {Name: "a", Start: at(1), Duration: time.Second}},
		"negative": {{Name: "a", Start: at(0), Duration: -time.Second}},
	} {
		if _, err := Build(Inputs{Results: []*resultfile.Result{res}, Scenario: &Scenario{Name: "x", Phases: phases}}); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v, want ErrInput", name, err)
		}
	}
}

// scenarioReport is the golden run of faultyReport as a scenario: three
// phases, a node killed in the second the loss sits in, slow consumers
// where latency spikes, and a Redis restart that could not be done.
func scenarioReport(t *testing.T) *Report {
	t.Helper()
	s := synth{runID: "golden", channels: 3, seconds: 6, faulty: true}
	hot := 2
	r, err := Build(Inputs{
		Results: []*resultfile.Result{s.part(t, 0, 2), s.part(t, 1, 2)},
		Scenario: &Scenario{
			Name: "node-failure", Description: "3 channels on 2 Redis-backed nodes; node 1 is killed at 3.2s.",
			File: "scenarios/node-failure.yaml", Target: "2 redis node(s)", Label: "primary",
			Phases: []Phase{
				{Name: "warm-up", Start: at(0), Duration: 2 * time.Second, RatePerS: 3},
				{Name: "steady", Start: at(2), Duration: 2 * time.Second, RatePerS: 3},
				{Name: "spike", Start: at(4), Duration: 2 * time.Second, RatePerS: 30, HotChannel: &hot},
			},
			Faults: []Fault{
				{Kind: "kill_node", Detail: "node 1 (primary-1) killed with SIGKILL", At: at(3.2), Offset: 3200 * time.Millisecond},
				{Kind: "slow_consumers", Detail: "5 clients wait 80ms before each read", At: at(4), Offset: 4 * time.Second},
				{Kind: "restart_redis", At: at(4.6), Offset: 4600 * time.Millisecond, Error: "redis-server: signal: killed"},
				{Kind: "kill_redis_master", Detail: "master 127.0.0.1:7001 of shard 0 killed with SIGKILL", At: at(4.8), Offset: 4800 * time.Millisecond,
					Recovery: &Recovery{After: 2310 * time.Millisecond, Done: true}},
				{Kind: "kill_redis_link", Detail: "node 0's 3 pub/sub connections closed", At: at(4.9), Offset: 4900 * time.Millisecond,
					Recovery: &Recovery{After: 1500 * time.Millisecond}},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	gates, err := ParseGates([]string{"lost == 0", "phase.warm-up.deliveries_per_s > 50", "phase.steady.lost == 0", "phase.spike.p99_delivery_ms < 50"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Evaluate(gates); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestScenarioGoldenOutputs(t *testing.T) {
	t.Parallel()
	r := scenarioReport(t)
	for _, out := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"scenario.txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
		{"scenario.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
		{"scenario-junit.xml", func(b *bytes.Buffer) error { return r.WriteJUnit(b) }},
	} {
		var b bytes.Buffer
		if err := out.write(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, out.name, b.Bytes())
	}
	// The phases of the golden run carry its faults: the loss in steady,
	// the spike and the duplicate in spike.
	want := map[string]func(p PhaseReport) bool{
		"warm-up": func(p PhaseReport) bool { return p.Lost == 0 && p.Duplicated == 0 && p.P99 < 10 && p.Deliveries == 120 },
		"steady":  func(p PhaseReport) bool { return p.Lost == 3 && p.Duplicated == 0 && p.Deliveries == 117 },
		"spike":   func(p PhaseReport) bool { return p.Lost == 0 && p.Duplicated == 1 && p.Max > 80 && p.Deliveries == 121 },
	}
	for _, p := range r.Phases {
		if !want[p.Name](p) {
			t.Errorf("phase %+v", p)
		}
	}
	// The longest recovery, and the fault watched in vain.
	if m := r.Metrics; m["recovery_s"] != 2.31 || m["faults_unrecovered"] != 1 {
		t.Errorf("recovery_s %v, faults_unrecovered %v: want 2.31 and 1", m["recovery_s"], m["faults_unrecovered"])
	}
	var verdicts []bool
	for _, g := range r.Gates {
		verdicts = append(verdicts, g.Pass)
	}
	// The scenario's four, then the defaults: expected > 0, publish_errors
	// == 0, unreadable == 0 pass, unexplained == 0 fails (3 silent losses, 1
	// duplicate).
	if want := []bool{false, true, false, false, true, true, true, false}; !equalBools(verdicts, want) {
		t.Errorf("gates %+v, want passes %v", r.Gates, want)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestScenarioJSONRoundTrip reads back what WriteJSON wrote: durations in
// seconds, times in UTC.
func TestScenarioJSONRoundTrip(t *testing.T) {
	t.Parallel()
	r := scenarioReport(t)
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"duration_seconds": 2,`, `"offset_seconds": 3.2`, `"hot_channel": 2`, `"p99_delivery_ms": `, `"label": "primary"`} {
		if !strings.Contains(b.String(), field) {
			t.Errorf("JSON lacks %s", field)
		}
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	c, _ := json.Marshal(&back)
	if !bytes.Equal(a, c) {
		t.Errorf("round trip changed the report:\n%s\n%s", a, c)
	}
	if got := back.Scenario.Faults[0].Offset; got != 3200*time.Millisecond {
		t.Errorf("offset read back as %v", got)
	}
}

// TestScenarioEchoIsACopy: the report keeps the scenario as Build saw it.
func TestScenarioEchoIsACopy(t *testing.T) {
	t.Parallel()
	hot := 1
	sc := &Scenario{Name: "x", Phases: []Phase{{Name: "a", Start: at(0).In(time.FixedZone("X", 3600)), Duration: time.Second, HotChannel: &hot}},
		Faults: []Fault{{Kind: "storm", At: at(0.5)}}}
	r, err := Build(Inputs{Results: []*resultfile.Result{secondsRun(t, []sec{{lat: repeat(3, 1000)}}, 0, 1)}, Scenario: sc})
	if err != nil {
		t.Fatal(err)
	}
	sc.Phases[0].Name, hot, sc.Faults[0].Kind = "b", 7, "kill_node"
	p := r.Scenario.Phases[0]
	if p.Name != "a" || *p.HotChannel != 1 || r.Scenario.Faults[0].Kind != "storm" || p.Start.Location() != time.UTC {
		t.Errorf("echo %+v changed with the input or is not in UTC", r.Scenario)
	}
}

func TestPhaseGates(t *testing.T) {
	t.Parallel()
	r := scenarioReport(t)
	plain := faultyReport(t)
	for _, tc := range []struct {
		expr   string
		report *Report
		value  float64
		bad    string // an error of ParseGate or Evaluate
	}{
		{expr: "phase.steady.lost == 0", report: r, value: 3},
		{expr: "phase.warm-up.deliveries_per_s > 50", report: r, value: 60},
		{expr: "phase.spike.max_delivery_ms < 100", report: r, value: r.Phases[2].Max},
		{expr: "phase.spike.p99 < 50", bad: `did you mean phase.spike.p99_delivery_ms?`},
		{expr: "phase.spike < 50", bad: "phase.NAME.METRIC"},
		{expr: "phase..lost < 50", bad: "phase.NAME.METRIC"},
		{expr: "phase.Spike.lost < 50", bad: "lower-case"},
		{expr: "lost.x < 1", bad: "lower-case"},
		{expr: "phase.cool-down.lost == 0", report: r, bad: `no phase "cool-down" (its phases: warm-up, steady, spike)`},
		{expr: "phase.spike.lost == 0", report: plain, bad: "needs a scenario run"},
		{expr: "phase.NAME.METRIC < 1", bad: "lower-case"},
	} {
		g, err := ParseGate(tc.expr)
		if err == nil && tc.report != nil {
			var res []GateResult
			if res, err = tc.report.Evaluate([]Gate{g}); err == nil && res[0].Value != tc.value {
				t.Errorf("%s: measured %v, want %v", tc.expr, res[0].Value, tc.value)
			}
		}
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.bad != "" && (!errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: %v, want an error with %q", tc.expr, err, tc.bad)
		}
	}
	// A phase the run never reached gives nothing to gate on.
	late, err := Build(Inputs{Results: []*resultfile.Result{secondsRun(t, []sec{{lat: repeat(3, 1000)}}, 0, 1)},
		Scenario: &Scenario{Name: "x", Phases: []Phase{{Name: "later", Start: at(60), Duration: time.Second}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Value("phase.later.p99_delivery_ms"); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "no second") {
		t.Errorf("gate on a phase with no second: %v", err)
	}
	// Compare takes phase metrics too, by name.
	c, err := Compare([]*Report{r}, []*Report{scenarioReportAs(t, "golden-2")}, CompareOptions{Metrics: []string{"phase.spike.p99_delivery_ms"}})
	if err != nil || len(c.Metrics) != 1 || c.Metrics[0].Better != "lower" {
		t.Errorf("compare on a phase metric: %+v, %v", c, err)
	}
	if m, ok := LookupMetric(phasePattern); ok {
		t.Errorf("the vocabulary's pattern %+v is a metric", m)
	}
}

func scenarioReportAs(t *testing.T, runID string) *Report {
	t.Helper()
	r := scenarioReport(t)
	r.RunID = runID
	return r
}

func TestPhaseMetric(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in            string
		phase, metric string
		ok            bool
	}{
		{"phase.spike.p99_delivery_ms", "spike", "p99_delivery_ms", true},
		{"phase.warm-up.lost", "warm-up", "lost", true},
		{"phase.x.anything", "x", "anything", true},
		{"phase.spike", "", "", false},
		{"phase..lost", "", "", false},
		{"phase.a_b.lost", "", "", false},
		{"phases.a.lost", "", "", false},
		{"lost", "", "", false},
	} {
		phase, metric, ok := PhaseMetric(tc.in)
		if phase != tc.phase || metric != tc.metric || ok != tc.ok {
			t.Errorf("PhaseMetric(%q) = %q, %q, %v", tc.in, phase, metric, ok)
		}
	}
}

// TestScenarioWithoutPhases: faults alone, or a bare name, render.
func TestScenarioWithoutPhases(t *testing.T) {
	t.Parallel()
	res := secondsRun(t, []sec{{lat: repeat(3, 1000)}, {lat: repeat(3, 1000)}}, 0, 1)
	for _, sc := range []*Scenario{
		{Name: "storm", Faults: []Fault{{Kind: "storm", Detail: "every connection cut", At: at(1), Offset: time.Second}}},
		{Name: "bare"},
	} {
		r, err := Build(Inputs{Results: []*resultfile.Result{res}, Scenario: sc})
		if err != nil {
			t.Fatal(err)
		}
		var text, html, junit bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteHTML(&html); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJUnit(&junit); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(text.String(), "scenario "+sc.Name+"\n") || strings.Contains(text.String(), "\nphases") ||
			strings.Contains(text.String(), "\nfaults") != (len(sc.Faults) > 0) {
			t.Errorf("%s: text\n%s", sc.Name, text.String())
		}
		if strings.Contains(html.String(), `id="phases"`) || strings.Contains(html.String(), `id="faults"`) != (len(sc.Faults) > 0) {
			t.Errorf("%s: HTML tables wrong", sc.Name)
		}
		if !strings.Contains(junit.String(), `name="darktime.report `+sc.Name+` phases"`) {
			t.Errorf("%s: JUnit suite\n%s", sc.Name, junit.String())
		}
	}
}
