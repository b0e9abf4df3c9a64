package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// CompareSchema versions the JSON form of a Comparison (REPORT.md).
const CompareSchema = "darktime.compare/v1"

// DefaultCompareMetrics are compared when CompareOptions.Metrics is empty
// (those missing from either side are left out).
var DefaultCompareMetrics = []string{
	"p50_delivery_ms", "p90_delivery_ms", "p99_delivery_ms", "p999_delivery_ms", "max_delivery_ms", "mean_delivery_ms",
	"p99_connect_ms", "p99_publish_ms", "deliveries_per_s", "error_rate", "publish_error_rate",
	"lost", "duplicated", "late", "reordered", "drops", "reconnects", "clients_failed",
}

// CompareOptions tune Compare; the zero value is usable.
type CompareOptions struct {
	// Metrics to compare (names of the vocabulary); empty: the defaults.
	Metrics []string
	// NoiseK: a change is beyond noise when it exceeds NoiseK times the
	// noise (default 3).
	NoiseK float64
	// MinRelative: changes smaller than this share of the base median are
	// never flagged, however quiet the runs (default 0.05).
	MinRelative float64
}

// Side summarises one metric over the repeated runs of one side.
type Side struct {
	N      int       `json:"n"`
	Median float64   `json:"median"`
	MAD    float64   `json:"mad"` // median absolute deviation
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// MetricDelta is one metric compared.
type MetricDelta struct {
	Metric    string  `json:"metric"`
	Better    string  `json:"better"` // lower, higher or "" (not judged)
	Base      Side    `json:"base"`
	Candidate Side    `json:"candidate"`
	Delta     float64 `json:"delta"` // candidate median - base median
	// DeltaPct is Delta over the base median in percent (0 when the base
	// median is 0).
	DeltaPct float64 `json:"delta_pct"`
	// Noise is a run's spread: the larger, over both sides, of 1.4826 ×
	// MAD (a robust standard deviation) and half the range (which MAD
	// misses with few runs: 0, 1, 0 has a MAD of 0). Threshold =
	// max(NoiseK × Noise, MinRelative × |base median|) is what a change
	// must exceed to count.
	Noise     float64 `json:"noise"`
	Threshold float64 `json:"threshold"`
	// Verdict: regression, improvement, within_noise or changed (a
	// metric without a better direction).
	Verdict string `json:"verdict"`
}

// Comparison is the result of Compare.
type Comparison struct {
	Schema      string        `json:"schema"`
	Base        []string      `json:"base_runs"`
	Candidate   []string      `json:"candidate_runs"`
	NoiseK      float64       `json:"noise_k"`
	MinRelative float64       `json:"min_relative"`
	Metrics     []MetricDelta `json:"metrics"`
	Regressions []string      `json:"regressions"`
	Notes       []string      `json:"notes,omitempty"`
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func side(v []float64) Side {
	m := median(v)
	dev := make([]float64, len(v))
	for i, x := range v {
		dev[i] = math.Abs(x - m)
	}
	return Side{N: len(v), Median: m, MAD: median(dev), Min: slices.Min(v), Max: slices.Max(v), Values: v}
}

// Compare sets each metric of the candidate runs against the base runs
// (each report one run; repeat runs to measure the noise) and flags a
// regression when the candidate's median is worse than the base's by more
// than the noise.
func Compare(base, cand []*Report, opts CompareOptions) (*Comparison, error) {
	if len(base) == 0 || len(cand) == 0 {
		return nil, badInput("compare needs at least one base and one candidate run")
	}
	if opts.NoiseK == 0 {
		opts.NoiseK = DefaultNoiseK
	}
	if opts.MinRelative == 0 {
		opts.MinRelative = DefaultMinRelative
	}
	c := &Comparison{Schema: CompareSchema, NoiseK: opts.NoiseK, MinRelative: opts.MinRelative, Regressions: []string{}}
	seen := map[string]string{}
	for _, group := range []struct {
		reports []*Report
		ids     *[]string
		name    string
	}{{base, &c.Base, "base"}, {cand, &c.Candidate, "candidate"}} {
		for _, r := range group.reports {
			if prev, dup := seen[r.RunID]; dup {
				return nil, badInput("run %s is given twice (%s and %s): each run counts once", r.RunID, prev, group.name)
			}
			seen[r.RunID] = group.name
			*group.ids = append(*group.ids, r.RunID)
		}
	}
	names, explicit := opts.Metrics, len(opts.Metrics) > 0
	if !explicit {
		names = DefaultCompareMetrics
	}
	if len(base) < 3 || len(cand) < 3 {
		c.Notes = append(c.Notes, fmt.Sprintf("%d base and %d candidate run(s): with fewer than 3 runs a side the noise estimate is weak; only changes over %.0f%% count",
			len(base), len(cand), opts.MinRelative*100))
	}
	for _, name := range names {
		m, ok := LookupMetric(name)
		if !ok {
			return nil, errUnknownMetric(name)
		}
		values := func(rs []*Report) ([]float64, error) {
			var out []float64
			for _, r := range rs {
				v, err := r.Value(name)
				if err != nil {
					return nil, fmt.Errorf("run %s: %w", r.RunID, err)
				}
				out = append(out, v)
			}
			return out, nil
		}
		bv, err := values(base)
		if err == nil {
			var cv []float64
			if cv, err = values(cand); err == nil {
				c.Metrics = append(c.Metrics, delta(m, side(bv), side(cv), opts))
				continue
			}
		}
		if explicit {
			return nil, err
		}
	}
	for _, d := range c.Metrics {
		if d.Verdict == "regression" {
			c.Regressions = append(c.Regressions, d.Metric)
		}
	}
	return c, nil
}

func delta(m Metric, b, c Side, opts CompareOptions) MetricDelta {
	d := MetricDelta{Metric: m.Name, Base: b, Candidate: c, Delta: round6(c.Median - b.Median)}
	if b.Median != 0 {
		d.DeltaPct = round3((c.Median - b.Median) / math.Abs(b.Median) * 100)
	}
	d.Noise = round6(max(1.4826*b.MAD, 1.4826*c.MAD, (b.Max-b.Min)/2, (c.Max-c.Min)/2))
	d.Threshold = round6(max(opts.NoiseK*d.Noise, opts.MinRelative*math.Abs(b.Median)))
	worse := d.Delta * float64(-m.Better) // > 0 when the change is for the worse
	switch {
	case m.Better == 0:
		d.Verdict = "within_noise"
		if math.Abs(d.Delta) > d.Threshold {
			d.Verdict = "changed"
		}
	case worse > d.Threshold:
		d.Verdict = "regression"
	case -worse > d.Threshold:
		d.Verdict = "improvement"
	default:
		d.Verdict = "within_noise"
	}
	switch m.Better {
	case -1:
		d.Better = "lower"
	case 1:
		d.Better = "higher"
	}
	return d
}

// Err returns a *Regression error when a metric regressed (the CLI exits
// 1), else nil.
func (c *Comparison) Err() error {
	if len(c.Regressions) == 0 {
		return nil
	}
	var lines []string
	for _, d := range c.Metrics {
		if d.Verdict == "regression" {
			lines = append(lines, fmt.Sprintf("REGRESSION %s: %s -> %s (%+.1f%%, beyond the threshold %s)", d.Metric,
				formatNum(d.Base.Median), formatNum(d.Candidate.Median), d.DeltaPct, formatNum(d.Threshold)))
		}
	}
	return &Regression{Lines: lines}
}

// Regression is the error of a comparison that found regressions.
type Regression struct{ Lines []string }

func (e *Regression) Error() string {
	return fmt.Sprintf("%d metric(s) regressed:\n%s", len(e.Lines), strings.Join(e.Lines, "\n"))
}

// WriteJSON writes the comparison as "darktime.compare/v1" JSON.
func (c *Comparison) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteText writes the comparison as a table.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "base: %s\ncandidate: %s\n\n", strings.Join(c.Base, ", "), strings.Join(c.Candidate, ", "))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tbase median ±MAD\tcandidate median ±MAD\tdelta\tthreshold\tverdict")
	for _, d := range c.Metrics {
		pct := ""
		if d.DeltaPct != 0 {
			pct = fmt.Sprintf(" (%+.1f%%)", d.DeltaPct)
		}
		verdict := d.Verdict
		if verdict == "regression" {
			verdict = "REGRESSION"
		}
		fmt.Fprintf(tw, "%s\t%s ±%s\t%s ±%s\t%s%s\t%s\t%s\n", d.Metric, formatNum(d.Base.Median), formatNum(d.Base.MAD),
			formatNum(d.Candidate.Median), formatNum(d.Candidate.MAD), formatNum(d.Delta), pct, formatNum(d.Threshold), verdict)
	}
	tw.Flush()
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
