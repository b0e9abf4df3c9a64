package history

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/report"
)

// found is a change expected in a metric: where and what.
type found struct {
	index   int
	verdict string
}

func metricOf(t *testing.T, a *Analysis, metric string) MetricHistory {
	t.Helper()
	if len(a.Series) != 1 {
		t.Fatalf("%d series, want 1", len(a.Series))
	}
	for _, m := range a.Series[0].Metrics {
		if m.Metric == metric {
			return m
		}
	}
	t.Fatalf("no metric %s in the analysis", metric)
	return MetricHistory{}
}

// TestAnalyzeSynthetic: synthetic histories with known steps. The noise
// is seeded, so each case is one fixed series; how often a step is found
// exactly over many seeds is changepoint's TestStepOverSeeds.
func TestAnalyzeSynthetic(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		records  []Record
		metric   string
		want     []found
		standing bool
	}{
		{"10% p99 step after 20 runs, 4% noise", synthetic("s", 40, 1, 0.04, map[string]level{"p99_delivery_ms": step(20, 22, 20)}),
			"p99_delivery_ms", []found{{20, ChangeRegression}}, false},
		{"the same step, 5 runs after it: it stands", synthetic("s", 25, 1, 0.03, map[string]level{"p99_delivery_ms": step(20, 22, 20)}),
			"p99_delivery_ms", []found{{20, ChangeRegression}}, true},
		{"10% p99 step down: an improvement", synthetic("s", 40, 2, 0.03, map[string]level{"p99_delivery_ms": step(22, 20, 20)}),
			"p99_delivery_ms", []found{{20, ChangeImprovement}}, false},
		{"throughput up 10%: an improvement (higher is better)", synthetic("s", 40, 3, 0.03, map[string]level{"deliveries_per_s": step(5000, 5500, 20)}),
			"deliveries_per_s", []found{{20, ChangeImprovement}}, false},
		{"throughput down 10% at the end: a standing regression", synthetic("s", 26, 1, 0.03, map[string]level{"deliveries_per_s": step(5500, 5000, 20)}),
			"deliveries_per_s", []found{{20, ChangeRegression}}, true},
		{"up, then fixed: two changes, nothing stands", synthetic("s", 60, 2, 0.03, map[string]level{"p99_delivery_ms": steps(20, 20, 22, 20, 20)}),
			"p99_delivery_ms", []found{{20, ChangeRegression}, {40, ChangeImprovement}}, false},
		{"three changes", synthetic("s", 60, 6, 0.03, map[string]level{"p99_delivery_ms": steps(20, 15, 24, 15, 18, 15, 21)}),
			"p99_delivery_ms", []found{{15, ChangeRegression}, {30, ChangeImprovement}, {45, ChangeRegression}}, false},
		{"a 2% shift in quiet runs: significant, not flagged", synthetic("s", 40, 7, 0.002, map[string]level{"p99_delivery_ms": step(20, 20.4, 30)}),
			"p99_delivery_ms", []found{{30, ChangeSmall}}, false},
		{"a metric without a better direction", synthetic("s", 40, 8, 0.03, map[string]level{"publishes": step(1000, 1500, 20)}),
			"publishes", []found{{20, ChangeChanged}}, false},
	} {
		opts := AnalyzeOptions{}
		if c.metric == "publishes" {
			opts.Metrics = []string{"publishes"}
		}
		a, err := Analyze(c.records, opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := metricOf(t, a, c.metric)
		var got []found
		for _, ch := range m.Changes {
			got = append(got, found{ch.Index, ch.Verdict})
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: changes %v, want %v (%+v)", c.name, got, c.want, m.Changes)
			continue
		}
		if standing := len(a.Regressions) > 0; standing != c.standing || (a.Err() != nil) != c.standing {
			t.Errorf("%s: standing regressions %v (Err %v), want standing %v", c.name, a.Regressions, a.Err(), c.standing)
		}
		first := m.Changes[0]
		if r := c.records[first.Index]; first.RunID != r.RunID || first.Commit != r.Commit || !first.Time.Equal(r.Time) {
			t.Errorf("%s: the change names run %s %s %v, want %s %s %v", c.name, first.RunID, first.Commit, first.Time, r.RunID, r.Commit, r.Time)
		}
		if first.PValue > 0.01 || first.Confidence < 0.99 || first.NBefore != first.Index {
			t.Errorf("%s: %+v: want p <= 0.01, confidence >= 0.99, %d runs before", c.name, first, first.Index)
		}
	}
}

// TestAnalyzeStepMagnitude: the 10% step is measured as about 10%.
func TestAnalyzeStepMagnitude(t *testing.T) {
	t.Parallel()
	a, err := Analyze(synthetic("s", 40, 1, 0.04, map[string]level{"p99_delivery_ms": step(20, 22, 20)}), AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := metricOf(t, a, "p99_delivery_ms").Changes[0]
	if c.Relative < 0.07 || c.Relative > 0.13 || c.Before < 19 || c.Before > 21 || c.After < 21 || c.After > 23 {
		t.Errorf("the step measured %+v, want about 20 -> 22 (+10%%)", c)
	}
}

// TestAnalyzeNoiseFlagsNothing: histories of pure noise (several seeds,
// 3% to 5% gaussian noise on every headline metric) have no change point.
func TestAnalyzeNoiseFlagsNothing(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 6; seed++ {
		noise := []float64{0.03, 0.04, 0.05}[seed%3]
		recs := synthetic("s", 40, seed*101, noise, map[string]level{
			"p50_delivery_ms": flat(4), "p99_delivery_ms": flat(20), "p999_delivery_ms": flat(45), "deliveries_per_s": flat(5000),
			"error_rate": flat(0.001), "lost": flat(0),
		})
		a, err := Analyze(recs, AnalyzeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range a.Series[0].Metrics {
			if len(m.Changes) > 0 {
				t.Errorf("seed %d, %.0f%% noise: %s has changes %+v in pure noise", seed, noise*100, m.Metric, m.Changes)
			}
		}
		if a.Err() != nil {
			t.Errorf("seed %d: %v", seed, a.Err())
		}
	}
}

func TestAnalyzeSeriesAndMachines(t *testing.T) {
	t.Parallel()
	recs := synthetic("a", 30, 1, 0.03, map[string]level{"p99_delivery_ms": step(20, 22, 15)})
	other := synthetic("b", 10, 2, 0.03, map[string]level{"p99_delivery_ms": flat(50)})
	for i := range other {
		other[i].Target = "nchan"
	}
	// The second half of a ran on a machine with more cores.
	bigger := testMachine
	bigger.Cores = 8
	for i := 15; i < 30; i++ {
		recs[i].Machine = bigger
	}
	interrupted := recs[3]
	interrupted.RunID, interrupted.Verdict = "stopped", VerdictInterrupted
	all := append(append(append([]Record{}, recs...), other...), interrupted)
	a, err := Analyze(all, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Series) != 2 || a.Series[0].Series != "a" || a.Series[1].Series != "b/nchan" {
		t.Fatalf("series %+v", a.Series)
	}
	s := a.Series[0]
	if s.Runs != 30 || s.Interrupted != 1 || len(s.Machines) != 2 {
		t.Errorf("series a: %d runs, %d interrupted, machines %v; want 30, 1, 2 machines", s.Runs, s.Interrupted, s.Machines)
	}
	ch := s.Metrics[0].Changes
	if len(ch) != 1 || ch[0].Index != 15 || !ch[0].MachineChanged {
		t.Errorf("changes %+v: want one at 15 where the machine changed", ch)
	}
}

func TestAnalyzeBadOptions(t *testing.T) {
	t.Parallel()
	recs := synthetic("s", 10, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20)})
	for _, o := range []AnalyzeOptions{
		{Metrics: []string{"p99_delivery"}},
		{MinRelative: -1},
		{Recent: -1},
	} {
		if _, err := Analyze(recs, o); !errors.Is(err, ErrInput) {
			t.Errorf("%+v: %v, want ErrInput", o, err)
		}
	}
	o := AnalyzeOptions{}
	o.ChangePoint.PValue = 2
	if _, err := Analyze(recs, o); !errors.Is(err, ErrInput) {
		t.Errorf("p-value 2: %v, want ErrInput", err)
	}
	a, err := Analyze(recs, AnalyzeOptions{Metrics: []string{"p99_delivery_ms", "lost"}})
	if err != nil || len(a.Notes) != 1 {
		t.Errorf("a metric no record has: %v, notes %v; want one note", err, a.Notes)
	}
}

// TestAnalysisGolden holds the text and JSON of the golden history's
// analysis to testdata/, and testdata/history.jsonl to the records (the
// CLI's tests read it).
func TestAnalysisGolden(t *testing.T) {
	t.Parallel()
	recs := goldenHistory()
	var lines bytes.Buffer
	for _, r := range recs {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		lines.Write(append(b, '\n'))
	}
	tstest.Golden(t, "testdata/history.jsonl", lines.Bytes())
	a, err := Analyze(recs, AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var text, js bytes.Buffer
	if err := a.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	tstest.Golden(t, "testdata/analysis.txt", text.Bytes())
	tstest.Golden(t, "testdata/analysis.json", js.Bytes())
	var reg *report.Regression
	if !errors.As(a.Err(), &reg) || len(reg.Lines) != 1 {
		t.Errorf("Err() = %v, want one standing regression", a.Err())
	}
}
