package capacity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// VerifySchema versions a verification's JSON.
const VerifySchema = "darktime.capacity-verify/v1"

// ScenarioFile is the generated scenario's name in the verification's
// folder.
const ScenarioFile = "capacity-verify.yaml"

// Verification is a forecast scaled down, run here and measured:
// predicted against measured for every resource.
type Verification struct {
	Schema string  `json:"schema"`
	Scaled *Scaled `json:"scaled"`
	Dir    string  `json:"dir"`
	// From and To bound the measured stretch (Unix seconds); Windows is
	// how many node windows it had.
	From    float64 `json:"from"`
	To      float64 `json:"to"`
	Windows int     `json:"windows"`
	// Resources are the checked predictions; Load what the run did
	// against what the forecast asked (not checked: it says whether a
	// miss is the model's or the run's).
	Resources []Check  `json:"resources"`
	Load      []Check  `json:"load"`
	Tolerance float64  `json:"tolerance"`
	Pass      bool     `json:"pass"`
	Notes     []string `json:"notes,omitempty"`
}

// Check is one predicted value against its measurement.
type Check struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Predicted with its standard error and per-run spread; Measured is
	// the mean over the measured windows, MeasuredSD their spread.
	Predicted  float64 `json:"predicted"`
	SE         float64 `json:"se"`
	Spread     float64 `json:"run_spread"`
	Measured   float64 `json:"measured"`
	MeasuredSD float64 `json:"measured_sd"`
	// Error is (predicted - measured) / measured.
	Error float64 `json:"error"`
	Pass  bool    `json:"pass"`
}

// RunScenario runs a scenario file (darktime run) and returns once its
// outputs are written; a failed gate is not its error (it says so in
// note), a target that did not start or an interrupted run is.
type RunScenario func(ctx context.Context, file string) (note string, err error)

// Verify scales f down (ScaleDown), writes the scenario into dir, runs
// it and compares every resource measured over the measured phase with
// the model's prediction for the scaled forecast on one node.
func Verify(ctx context.Context, m *Model, f *Forecast, o VerifyOptions, dir string, lo LoadOptions, run RunScenario) (*Verification, error) {
	if err := o.defaults(m); err != nil {
		return nil, err
	}
	s, err := ScaleDown(m, f, o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(abs, ScenarioFile)
	if err := os.WriteFile(file, s.Scenario(m, o, abs), 0o644); err != nil {
		return nil, err
	}
	note, err := run(ctx, file)
	if err != nil {
		return nil, err
	}
	res, err := lo.Files.Result(ctx, filepath.Join(abs, SwarmFile))
	if err != nil {
		return nil, err
	}
	if res.PublishStarted.IsZero() {
		return nil, fmt.Errorf("the verification run published nothing: see %s", abs)
	}
	from := res.PublishStarted.Add(o.Warmup)
	to := from.Add(o.Measure)
	lo.From, lo.To = unix(from), unix(to.Add(time.Second)) // the last sample may come a little late
	rf, err := readResources(ctx, lo.Files, filepath.Join(abs, ResourcesFile))
	if err != nil {
		return nil, err
	}
	r, err := NewRun(abs, res, rf, lo)
	if err != nil {
		return nil, err
	}
	v := Compare(m, s, r, o.Tolerance)
	v.Dir, v.From, v.To = abs, lo.From, lo.To
	if note != "" {
		v.Notes = append(v.Notes, note)
	}
	return v, nil
}

func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }

// Compare sets the model's predictions for the scaled forecast on one
// node against the run's measured windows.
func Compare(m *Model, s *Scaled, r *Run, tol float64) *Verification {
	v := &Verification{Schema: VerifySchema, Scaled: s, Tolerance: tol, Pass: true, Windows: len(r.Windows), Notes: s.Notes}
	f := s.Forecast
	l := f.newLoad()
	x := l.nodeTerms(1)
	mean := func(get func(Window) float64) (float64, float64) {
		vals := make([]float64, len(r.Windows))
		var sum float64
		for i, w := range r.Windows {
			vals[i] = get(w)
			sum += vals[i]
		}
		return sum / float64(max(len(vals), 1)), stddev(vals)
	}
	check := func(name, unit string, pred, se, spread, meas, sd float64) Check {
		c := Check{Name: name, Unit: unit, Predicted: pred, SE: se, Spread: spread, Measured: meas, MeasuredSD: sd}
		if meas != 0 {
			c.Error = (pred - meas) / meas
		} else if pred != 0 {
			c.Error = 1 // nothing measured: counted as 100% off
		}
		c.Pass = math.Abs(c.Error) <= tol
		return c
	}
	get := map[string]func(Window) float64{
		ServerCPU: func(w Window) float64 { return w.CPU },
		Memory:    func(w Window) float64 { return w.RSS },
		FDs:       func(w Window) float64 { return w.FDs },
		Network:   func(w Window) float64 { return w.WriteBps },
	}
	for _, name := range nodeResources {
		res := m.Resource(name)
		pred, se, spread := m.predictNode(res, f, l, 1)
		meas, sd := mean(get[name])
		c := check(name, res.Unit, pred, se, spread, meas, sd)
		v.Pass = v.Pass && c.Pass
		v.Resources = append(v.Resources, c)
	}
	if res := m.Resource(RedisCPU); res != nil {
		pred, se, spread := res.Predict(map[string]float64{TermPublishes: l.total, TermFanout: l.received(1), TermBase: 1})
		vals := make([]float64, 0, len(r.RedisWindows))
		var sum float64
		for _, w := range r.RedisWindows {
			vals = append(vals, w.CPU)
			sum += w.CPU
		}
		if len(vals) == 0 {
			v.Notes = append(v.Notes, "no Redis window in the measured stretch: redis_cpu not checked")
			v.Pass = false
		} else {
			c := check(RedisCPU, res.Unit, pred, se, spread, sum/float64(len(vals)), stddev(vals))
			v.Pass = v.Pass && c.Pass
			v.Resources = append(v.Resources, c)
		}
	}
	for _, in := range []struct {
		name string
		pred float64
		get  func(Window) float64
	}{
		{"deliveries/s", x[TermDeliveries], func(w Window) float64 { return w.Deliveries }},
		{"publishes/s", x[TermPublishes], func(w Window) float64 { return w.Publishes }},
		{"received/s", x[TermReceived], func(w Window) float64 { return w.Received }},
		{"connections", x[TermConnections], func(w Window) float64 { return w.Subscribers }},
	} {
		meas, sd := mean(in.get)
		c := check(in.name, "", in.pred, 0, 0, meas, sd)
		c.Pass = true // not checked
		v.Load = append(v.Load, c)
	}
	if len(r.Windows) == 0 {
		v.Pass = false
		v.Notes = append(v.Notes, "no node window in the measured stretch")
	}
	return v
}

// WriteText prints predicted against measured, one resource a line.
func (v *Verification) WriteText(w io.Writer) error {
	var b strings.Builder
	f := v.Scaled.Forecast
	fmt.Fprintf(&b, "verify: the forecast scaled by %.4g (rates ×%.3g): %s users on %d channels (%s), %s messages/s, %s/s on the hottest channel; one node, %d windows measured\n",
		v.Scaled.Factor, v.Scaled.RateFactor, num(f.PeakUsers), f.Channels, f.Distribution, num(f.MessagesPerS), num(f.HotMessagesPerS), v.Windows)
	fmt.Fprintf(&b, "  %-13s %-24s %-24s %s\n", "resource", "predicted", "measured", "error")
	line := func(c Check, verdict string) {
		p := fmtValue(c.Unit, c.Predicted) + " ± " + strings.Fields(fmtValue(c.Unit, c.SE))[0]
		fmt.Fprintf(&b, "  %-13s %-24s %-24s %+.1f%%%s\n", c.Name, p, fmtValue(c.Unit, c.Measured), 100*c.Error, verdict)
	}
	for _, c := range v.Resources {
		verdict := "  ok"
		if !c.Pass {
			verdict = fmt.Sprintf("  OFF BY MORE THAN %s", pct(v.Tolerance))
		}
		line(c, verdict)
	}
	b.WriteString("  load (what the run did against what the forecast asked):\n")
	for _, c := range v.Load {
		fmt.Fprintf(&b, "  %-13s %-24s %-24s %+.1f%%\n", c.Name, num(c.Predicted), num(c.Measured), 100*c.Error)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	verdict := "PASS"
	if !v.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s: every resource within %s of its prediction: %v (run in %s)\n", verdict, pct(v.Tolerance), v.Pass, v.Dir)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the verification.
func (v *Verification) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
