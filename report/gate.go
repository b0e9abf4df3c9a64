package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/yamlsafe"
)

// Gate is one threshold: Metric Op Threshold, e.g. "p99_delivery_ms < 50",
// or Metric[Window] Op Threshold, "p99_delivery_ms[10s] < 50": the worst
// window of that many seconds (window.go).
type Gate struct {
	Expr      string  `json:"expr"`
	Metric    string  `json:"metric"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	// WindowSeconds, when set, makes the gate judge the worst window of
	// that many seconds sliding over the run (or the phase) by 1 s.
	WindowSeconds int `json:"window_seconds,omitempty"`
}

// GateResult is a gate evaluated on a report.
type GateResult struct {
	Gate
	Value float64 `json:"value"`
	Pass  bool    `json:"pass"`
	// Default marks a gate of DefaultGates that the user's gates did not
	// replace.
	Default bool `json:"default,omitempty"`
	// Window is the worst window of a windowed gate: the one whose value
	// is Value.
	Window *WindowResult `json:"worst_window,omitempty"`
	// Note says why a gate failed without a value (a windowed gate none of
	// whose windows had anything to measure).
	Note string `json:"note,omitempty"`
	// Aborted marks the abort_on_fail gate that stopped the run early.
	Aborted bool `json:"aborted,omitempty"`
}

// DefaultGates hold on every report unless a gate of the user names the
// same metric: a run in which nothing was owed, publishes failed, the
// swarm could not read what the target sent, or a ledger difference has
// no cause proves nothing and never passes.
var DefaultGates = []string{"expected > 0", "publish_errors == 0", "unreadable == 0", "unexplained == 0"}

// defaultReplacedBy lists, per default gate's metric, the other metrics
// whose gate replaces it: a scenario that allows some failed publishes
// says so with either name.
var defaultReplacedBy = map[string][]string{
	"publish_errors": {"publish_error_rate"},
	"expected":       {"deliveries"},
}

// withDefaults appends the default gates whose metric no gate names.
func withDefaults(gates []Gate) []Gate {
	named := map[string]bool{}
	for _, g := range gates {
		named[g.Metric] = true
	}
	for m, others := range defaultReplacedBy {
		for _, o := range others {
			named[m] = named[m] || named[o]
		}
	}
	out := slices.Clone(gates)
	for _, expr := range DefaultGates {
		g, err := ParseGate(expr)
		if err != nil {
			panic(err) // a typo in DefaultGates
		}
		if !named[g.Metric] {
			out = append(out, g)
		}
	}
	return out
}

// String is the gate's one-line verdict, naming the measured value.
func (g GateResult) String() string {
	verdict := "PASS"
	if !g.Pass {
		verdict = "FAIL"
	}
	def := ""
	if g.Default {
		def = " (default)"
	}
	if g.Aborted {
		def += " (aborted the run)"
	}
	if g.Note != "" {
		return fmt.Sprintf("%s %s %s %s%s: %s", verdict, g.Subject(), g.Op, formatNum(g.Threshold), def, g.Note)
	}
	return fmt.Sprintf("%s %s %s %s%s: measured %s%s", verdict, g.Subject(), g.Op, formatNum(g.Threshold), def, formatNum(g.Value), g.Window.suffix())
}

// Subject is the gate's left-hand side: the metric and its window,
// "p99_delivery_ms[10s]".
func (g Gate) Subject() string {
	if g.WindowSeconds == 0 {
		return g.Metric
	}
	return g.Metric + "[" + formatWindow(g.WindowSeconds) + "]"
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"} // two-character operators first

// ParseGate parses a gate (REPORT.md, "Gates"):
//
//	gate   = metric [ "[" window "]" ] op number
//	op     = "<" | "<=" | ">" | ">=" | "==" | "!="
//	window = whole seconds with a unit, 1s to 24h: "10s", "1m", "1m30s"
//
// METRIC is a name of the vocabulary (Vocabulary) or a phase's metric,
// phase.NAME.METRIC (PhaseVocabulary); whether the run has a phase NAME
// is Evaluate's question. A window takes the metrics of MetricTable with
// an Over (latency percentiles, rates) and an op that names a worst
// window (< <= > >=).
func ParseGate(expr string) (Gate, error) {
	s := strings.TrimSpace(expr)
	i := strings.IndexAny(s, "<>=!")
	if i < 0 {
		return Gate{}, badInput("gate %q: want METRIC OP NUMBER, e.g. 'p99_delivery_ms < 50' (OP: < <= > >= == !=)", expr)
	}
	g := Gate{Expr: s, Metric: strings.TrimSpace(s[:i])}
	window, hasWindow := "", false
	if open := strings.IndexByte(g.Metric, '['); open >= 0 {
		inner, ok := strings.CutSuffix(g.Metric[open+1:], "]")
		if !ok || strings.ContainsAny(inner, "[]") {
			return Gate{}, badInput("gate %q: a window is METRIC[DURATION] right before the operator, e.g. 'p99_delivery_ms[10s] < 50'", expr)
		}
		g.Metric, window, hasWindow = strings.TrimSpace(g.Metric[:open]), strings.TrimSpace(inner), true
	}
	rest := s[i:]
	for _, op := range ops {
		if strings.HasPrefix(rest, op) {
			g.Op, rest = op, rest[len(op):]
			break
		}
	}
	if g.Op == "" {
		return Gate{}, badInput("gate %q: unknown operator (want < <= > >= == !=)", expr)
	}
	phase := strings.HasPrefix(g.Metric, phasePrefix)
	for _, c := range g.Metric {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && (!phase || c != '.' && c != '-') {
			return Gate{}, badInput("gate %q: metric name %q must be lower-case letters, digits and _ (phase.NAME.METRIC: and . -)", expr, g.Metric)
		}
	}
	if g.Metric == "" {
		return Gate{}, badInput("gate %q: no metric before %s", expr, g.Op)
	}
	if hasWindow {
		secs, err := parseWindow(window)
		if err != nil {
			return Gate{}, badInput("gate %q: %v", expr, err)
		}
		g.WindowSeconds = secs
		if err := windowable(g, expr); err != nil {
			return Gate{}, err
		}
	} else if _, ok := LookupMetric(g.Metric); !ok {
		return Gate{}, fmt.Errorf("gate %q: %w", expr, errUnknownMetric(g.Metric))
	}
	num := strings.TrimSpace(rest)
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(num, "_xXpP") {
		return Gate{}, badInput("gate %q: %q is not a finite decimal number", expr, num)
	}
	g.Threshold = v
	g.Expr = g.Subject() + " " + g.Op + " " + num
	return g, nil
}

// ParseGates parses several gate expressions.
func ParseGates(exprs []string) ([]Gate, error) {
	var out []Gate
	for _, e := range exprs {
		g, err := ParseGate(e)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// gateFile is the YAML (or JSON) gate file: {"gates": ["p99_delivery_ms < 50", ...]}.
type gateFile struct {
	Gates []string `yaml:"gates"`
}

// LoadGates reads a gate file, YAML or JSON: either a list of expressions
// or an object with a "gates" list. Unknown fields are errors. The file is
// a regular file of at most 1 MiB without YAML anchors or aliases, nested
// at most 64 deep (internal/yamlsafe); see Files.Gates.
func LoadGates(path string) ([]Gate, error) {
	return Files{}.Gates(context.Background(), path)
}

func parseGateFile(name string, data []byte) (gates []Gate, err error) {
	defer func() {
		// The YAML library panics on some tagged input ("!t x", found by
		// FuzzParseGateFile): bad input, not a crash.
		if p := recover(); p != nil {
			gates, err = nil, badInput("gate file %s: cannot parse the YAML (%v)", name, p)
		}
	}()
	if err := yamlsafe.Check(data, yamlsafe.Limits{}); err != nil {
		var ye *yamlsafe.Error
		if errors.As(err, &ye) && ye.Line > 0 {
			return nil, badInput("gate file %s:%d:%d: %s", name, ye.Line, ye.Column, ye.Msg)
		}
		return nil, badInput("gate file %s: %v", name, err)
	}
	var list []string
	if err := yaml.Unmarshal(data, &list); err != nil {
		var f gateFile
		if err2 := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err2 != nil {
			return nil, badInput("gate file %s: want a list of expressions or {gates: [...]}: %v", name, err2)
		}
		list = f.Gates
	}
	if len(list) == 0 {
		return nil, badInput("gate file %s: no gates in it", name)
	}
	gates, err = ParseGates(list)
	if err != nil {
		return nil, fmt.Errorf("gate file %s: %w", name, err)
	}
	return gates, nil
}

// Evaluate checks the gates on the report and records the results in
// r.Gates. A gate on a metric the inputs do not give is an error wrapping
// ErrInput: a gate never passes by default.
//
// The DefaultGates are evaluated too, unless a gate names their metric.
func (r *Report) Evaluate(gates []Gate) ([]GateResult, error) {
	var out []GateResult
	all := withDefaults(gates)
	for i, g := range all {
		res, err := r.evaluate(g)
		if err != nil {
			return nil, fmt.Errorf("gate %q: %w", g.Expr, err)
		}
		res.Default = i >= len(gates)
		res.Aborted = r.Aborted != nil && r.Aborted.Gate == g.Expr
		out = append(out, res)
	}
	r.Gates = out
	return out, nil
}

// evaluate is one gate's result.
func (r *Report) evaluate(g Gate) (GateResult, error) {
	if g.WindowSeconds > 0 {
		return r.evaluateWindowed(g)
	}
	v, err := r.Value(g.Metric)
	if err != nil {
		return GateResult{}, err
	}
	return GateResult{Gate: g, Value: v, Pass: compare(v, g.Op, g.Threshold)}, nil
}

func compare(v float64, op string, t float64) bool {
	switch op {
	case "<":
		return v < t
	case "<=":
		return v <= t
	case ">":
		return v > t
	case ">=":
		return v >= t
	case "==":
		return v == t
	case "!=":
		return v != t
	}
	return false
}

// GateFailure is the error of a run whose gates failed; the CLI exits 1.
type GateFailure struct{ Failed []GateResult }

func (e *GateFailure) Error() string {
	lines := make([]string, len(e.Failed))
	for i, g := range e.Failed {
		lines[i] = g.String()
	}
	return fmt.Sprintf("%d gate(s) failed:\n%s", len(e.Failed), strings.Join(lines, "\n"))
}

// Failures returns a *GateFailure when any gate failed, else nil.
func Failures(results []GateResult) error {
	var failed []GateResult
	for _, g := range results {
		if !g.Pass {
			failed = append(failed, g)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &GateFailure{Failed: failed}
}

// formatNum prints a number without trailing zeros or exponent noise.
func formatNum(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}
