package history

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/darktime/darktime/internal/changepoint"
	"github.com/darktime/darktime/report"
)

// AnalysisSchema versions the JSON form of an Analysis.
const AnalysisSchema = "darktime.history-analysis/v1"

// The defaults of AnalyzeOptions.
const (
	// DefaultRecent: a regression whose change point is among the last 10
	// runs of its series stands (Analysis.Regressions).
	DefaultRecent = 10
	// DefaultWindow is how many runs of a series are analysed: the cost
	// of the permutation test grows with the square of the runs.
	DefaultWindow = 200
)

// AnalyzeOptions tune Analyze; the zero value means the defaults.
type AnalyzeOptions struct {
	// Metrics to analyse (default report.DefaultCompareMetrics, those the
	// history has).
	Metrics []string
	// ChangePoint tunes the detection (changepoint's defaults).
	ChangePoint changepoint.Options
	// MinRelative: a significant shift smaller than this share of the
	// level before it is reported as below_min_relative, not flagged
	// (default report.DefaultMinRelative, as `report compare`).
	MinRelative float64
	// Recent is the window, in runs at the end of a series, in which a
	// regression stands (default DefaultRecent).
	Recent int
}

func (o AnalyzeOptions) withDefaults() AnalyzeOptions {
	if o.MinRelative == 0 {
		o.MinRelative = report.DefaultMinRelative
	}
	if o.Recent == 0 {
		o.Recent = DefaultRecent
	}
	cp := &o.ChangePoint
	if cp.MinSize == 0 {
		cp.MinSize = changepoint.DefaultMinSize
	}
	if cp.Permutations == 0 {
		cp.Permutations = changepoint.DefaultPermutations
	}
	if cp.PValue == 0 {
		cp.PValue = changepoint.DefaultPValue
	}
	if cp.Seed == 0 {
		cp.Seed = changepoint.DefaultSeed
	}
	return o
}

// Method names the method and its parameters, in every output.
type Method struct {
	Name         string  `json:"name"`
	MinSize      int     `json:"min_size"`
	Permutations int     `json:"permutations"`
	PValue       float64 `json:"p_value"`
	Seed         uint64  `json:"seed"`
	MinRelative  float64 `json:"min_relative"`
	Recent       int     `json:"recent"`
}

// MethodName is Method.Name.
const MethodName = "e-divisive means (Matteson & James 2014): energy distance, alpha 1, permutation test"

// The verdicts of a change.
const (
	ChangeRegression  = "regression"         // worse by MinRelative or more
	ChangeImprovement = "improvement"        // better by MinRelative or more
	ChangeChanged     = "changed"            // a metric without a better direction moved
	ChangeSmall       = "below_min_relative" // significant, but under MinRelative: not flagged
)

// Change is one change point of a metric's history.
type Change struct {
	// Index is the position in the metric's series of the first run after
	// the change (0-based; the text shows run Index+1).
	Index  int       `json:"index"`
	RunID  string    `json:"run_id"`
	Commit string    `json:"commit,omitempty"`
	Time   time.Time `json:"time"`
	// Before and After are the means of the segments on each side (from
	// the change before to the one after); NBefore, NAfter their runs.
	Before  float64 `json:"before"`
	After   float64 `json:"after"`
	NBefore int     `json:"n_before"`
	NAfter  int     `json:"n_after"`
	Delta   float64 `json:"delta"`
	// Relative is Delta over |Before| (0 when Before is 0).
	Relative float64 `json:"relative"`
	// PValue is the permutation test's p; Confidence is 1 − p.
	PValue       float64 `json:"p_value"`
	Confidence   float64 `json:"confidence"`
	Q            float64 `json:"q"`
	Permutations int     `json:"permutations"`
	Verdict      string  `json:"verdict"`
	// MachineChanged: the run of the change was measured on another kind
	// of machine than the one before it — the change may be the machine's.
	MachineChanged bool `json:"machine_changed,omitempty"`
	// Standing: the metric's last change, a regression, within the last
	// Recent runs.
	Standing bool `json:"standing,omitempty"`
}

// MetricHistory is one metric over a series.
type MetricHistory struct {
	Metric  string    `json:"metric"`
	Better  string    `json:"better,omitempty"` // lower, higher or ""
	Values  []float64 `json:"values"`
	Runs    []string  `json:"run_ids"`
	Last    float64   `json:"last"`
	Median  float64   `json:"median"`
	Changes []Change  `json:"changes"`
}

// SeriesAnalysis is one series: a scenario (and target).
type SeriesAnalysis struct {
	Series   string `json:"series"`
	Scenario string `json:"scenario"`
	Target   string `json:"target,omitempty"`
	Runs     int    `json:"runs"`
	// Interrupted runs are left out (their metrics cover part of a run).
	Interrupted int       `json:"interrupted_left_out"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	// Machines are the kinds of machine the runs measured on.
	Machines []string        `json:"machines"`
	Metrics  []MetricHistory `json:"metrics"`
}

// Analysis is the change points of every metric of every series.
type Analysis struct {
	Schema string           `json:"schema"`
	Method Method           `json:"method"`
	Series []SeriesAnalysis `json:"series"`
	// Regressions are the standing regressions, "SERIES METRIC".
	Regressions []string `json:"regressions"`
	Notes       []string `json:"notes,omitempty"`
}

// Analyze finds the change points of each metric of each series of
// records (in the order given: oldest first).
func Analyze(records []Record, opts AnalyzeOptions) (*Analysis, error) {
	opts = opts.withDefaults()
	if err := opts.ChangePoint.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if opts.MinRelative < 0 || opts.Recent < 0 {
		return nil, fmt.Errorf("%w: min relative %v and recent %d must not be negative", ErrInput, opts.MinRelative, opts.Recent)
	}
	names, explicit := opts.Metrics, len(opts.Metrics) > 0
	if !explicit {
		names = report.DefaultCompareMetrics
	}
	for _, n := range names {
		if _, ok := report.LookupMetric(n); !ok {
			return nil, fmt.Errorf("%w: unknown metric %q (darktime report --metrics lists them)", ErrInput, n)
		}
	}
	cp := opts.ChangePoint
	a := &Analysis{Schema: AnalysisSchema, Regressions: []string{}, Method: Method{
		Name: MethodName, MinSize: cp.MinSize, Permutations: cp.Permutations, PValue: cp.PValue, Seed: cp.Seed,
		MinRelative: opts.MinRelative, Recent: opts.Recent,
	}}
	for _, group := range bySeries(records) {
		s, err := analyzeSeries(group, names, opts)
		if err != nil {
			return nil, err
		}
		for _, m := range s.Metrics {
			for _, c := range m.Changes {
				if c.Standing {
					a.Regressions = append(a.Regressions, s.Series+" "+m.Metric)
				}
			}
		}
		a.Series = append(a.Series, s)
	}
	if explicit {
		for _, n := range names {
			if !a.has(n) {
				a.Notes = append(a.Notes, fmt.Sprintf("metric %s is in no record of the history", n))
			}
		}
	}
	return a, nil
}

func (a *Analysis) has(metric string) bool {
	for _, s := range a.Series {
		for _, m := range s.Metrics {
			if m.Metric == metric {
				return true
			}
		}
	}
	return false
}

// bySeries groups records by series, in the order the series first
// appear.
func bySeries(records []Record) [][]Record {
	idx := map[string]int{}
	var out [][]Record
	for _, r := range records {
		k := r.Scenario + "\x00" + r.Target
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

func analyzeSeries(records []Record, names []string, opts AnalyzeOptions) (SeriesAnalysis, error) {
	s := SeriesAnalysis{Series: records[0].Series(), Scenario: records[0].Scenario, Target: records[0].Target}
	var kept []Record
	for _, r := range records {
		if r.Verdict == VerdictInterrupted {
			s.Interrupted++
			continue
		}
		kept = append(kept, r)
		if m := r.Machine.String(); !slices.Contains(s.Machines, m) {
			s.Machines = append(s.Machines, m)
		}
	}
	s.Runs = len(kept)
	if len(kept) == 0 {
		return s, nil
	}
	s.First, s.Last = kept[0].Time, kept[len(kept)-1].Time
	for _, name := range names {
		m, _ := report.LookupMetric(name)
		var runs []Record
		var values []float64
		for _, r := range kept {
			if v, ok := r.Metrics[name]; ok {
				runs = append(runs, r)
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			continue
		}
		mh := MetricHistory{Metric: name, Better: better(m.Better), Values: values, Last: values[len(values)-1], Median: median(values)}
		for _, r := range runs {
			mh.Runs = append(mh.Runs, r.RunID)
		}
		cps, err := changepoint.Detect(values, opts.ChangePoint)
		if err != nil {
			return s, fmt.Errorf("%w: %s %s: %w", ErrInput, s.Series, name, err)
		}
		mh.Changes = changes(cps, values, runs, m.Better, opts)
		s.Metrics = append(s.Metrics, mh)
	}
	return s, nil
}

// changes describes each change point: the segments on each side, the
// magnitude, the verdict.
func changes(cps []changepoint.ChangePoint, values []float64, runs []Record, dir int, opts AnalyzeOptions) []Change {
	out := []Change{}
	for k, cp := range cps {
		from, to := 0, len(values)
		if k > 0 {
			from = cps[k-1].Index
		}
		if k+1 < len(cps) {
			to = cps[k+1].Index
		}
		before, after := values[from:cp.Index], values[cp.Index:to]
		r := runs[cp.Index]
		c := Change{
			Index: cp.Index, RunID: r.RunID, Commit: r.Commit, Time: r.Time,
			Before: round6(mean(before)), After: round6(mean(after)), NBefore: len(before), NAfter: len(after),
			PValue: round6(cp.PValue), Confidence: round6(1 - cp.PValue), Q: round6(cp.Q), Permutations: cp.Permutations,
			MachineChanged: !r.Machine.Same(runs[cp.Index-1].Machine),
		}
		c.Delta = round6(c.After - c.Before)
		if c.Before != 0 {
			c.Relative = round6(c.Delta / math.Abs(c.Before))
		}
		worse := c.Delta * float64(-dir)
		switch {
		case c.Before != 0 && math.Abs(c.Relative) < opts.MinRelative:
			c.Verdict = ChangeSmall
		case dir == 0:
			c.Verdict = ChangeChanged
		case worse > 0:
			c.Verdict = ChangeRegression
		default:
			c.Verdict = ChangeImprovement
		}
		out = append(out, c)
	}
	// The last flagged change of the metric stands when it is a recent
	// regression: an older one is the level the runs since were measured
	// against, accepted or fixed.
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].Verdict == ChangeSmall {
			continue
		}
		out[i].Standing = out[i].Verdict == ChangeRegression && out[i].Index >= len(values)-opts.Recent
		break
	}
	return out
}

// Err returns a *report.Regression naming each standing regression (the
// CLI exits 1 with --fail-on-regression), else nil.
func (a *Analysis) Err() error {
	if len(a.Regressions) == 0 {
		return nil
	}
	var lines []string
	for _, s := range a.Series {
		for _, m := range s.Metrics {
			for _, c := range m.Changes {
				if c.Standing {
					lines = append(lines, fmt.Sprintf("REGRESSION %s %s: %s -> %s (%+.1f%%) from run %s%s, p %s",
						s.Series, m.Metric, num(c.Before), num(c.After), c.Relative*100, c.RunID, commitNote(c.Commit), num(c.PValue)))
				}
			}
		}
	}
	return &report.Regression{Lines: lines}
}

func commitNote(c string) string {
	if c == "" {
		return ""
	}
	return " (commit " + short(c) + ")"
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func better(dir int) string {
	switch dir {
	case -1:
		return "lower"
	case 1:
		return "higher"
	}
	return ""
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// round6 keeps six decimals so that golden files do not
// depend on the last bits of a float.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func num(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.6g", v), ".") }
