package capacity

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Resource names, in the order the plan prints them.
const (
	ServerCPU = "server_cpu" // cores per node
	Memory    = "memory"     // resident bytes per node
	FDs       = "fds"        // open files per node
	Network   = "network"    // bytes written per second per node
	RedisCPU  = "redis_cpu"  // cores over the Redis processes
)

// Term names: what a coefficient multiplies.
const (
	TermDeliveries     = "deliveries"      // deliveries written /s
	TermPublishes      = "publishes"       // publishes accepted /s
	TermReceived       = "received"        // events received from the broker /s
	TermConnects       = "connects"        // streams accepted /s
	TermConnections    = "connections"     // open streams
	TermPeakDeliveries = "peak_deliveries" // the highest deliveries/s so far
	TermPeakPublishes  = "peak_publishes"  // the highest publishes/s so far
	TermFanout         = "fanout"          // messages Redis sent to nodes /s
	TermBusy           = "busy"            // 1 - exp(-events/s ÷ busy_scale): the cost of being awake
	TermBase           = "base"            // a constant
)

// Term is one coefficient of a resource's model.
type Term struct {
	Name string  `json:"name"`
	Coef float64 `json:"coef"`
	// SE is its standard error in the fit over every run's windows;
	// Spread the standard deviation of the coefficient fitted to each run
	// alone (0 with one run, or when single runs cannot tell the terms
	// apart).
	SE     float64 `json:"se"`
	Spread float64 `json:"run_spread"`
}

// Resource is one resource's fitted model: value = Σ coef × term.
type Resource struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Formula is the model in words.
	Formula string `json:"formula"`
	Terms   []Term `json:"terms"`
	// Cov is the coefficients' covariance (the order of Terms).
	Cov [][]float64 `json:"cov"`
	// PerRun are the coefficients fitted to each run alone (nil for a
	// run that could not be fitted alone).
	PerRun [][]float64 `json:"per_run,omitempty"`
	// Observations is how many windows the fit used; Sigma the
	// residuals' standard deviation; R2 the share of the variance
	// explained.
	Observations int     `json:"observations"`
	Sigma        float64 `json:"sigma"`
	R2           float64 `json:"r2"`
	// BusyScale is the events/s at which the busy term reaches 63% of
	// its coefficient; BusyOf the terms whose sum are those events.
	BusyScale float64  `json:"busy_scale,omitempty"`
	BusyOf    []string `json:"busy_of,omitempty"`
	// Notes say which terms were merged or dropped, and why.
	Notes []string `json:"notes,omitempty"`
}

// busy is the busy term for events/s: 0 when idle, towards 1 once a
// process is woken many times a second.
func busy(events, scale float64) float64 {
	if scale <= 0 {
		return 0
	}
	return -math.Expm1(-events / scale)
}

// Coef is the coefficient of term name (0 when the model has no such
// term).
func (r *Resource) Coef(name string) float64 {
	for _, t := range r.Terms {
		if t.Name == name {
			return t.Coef
		}
	}
	return 0
}

// Predict is the model's value for the terms' values x (by term name),
// with its standard error from the coefficients' covariance, and its
// spread over the per-run fits.
func (r *Resource) Predict(x map[string]float64) (v, se, spread float64) {
	if len(r.BusyOf) > 0 {
		var events float64
		for _, t := range r.BusyOf {
			events += x[t]
		}
		x = maps.Clone(x)
		x[TermBusy] = busy(events, r.BusyScale)
	}
	g := make([]float64, len(r.Terms))
	for i, t := range r.Terms {
		g[i] = x[t.Name]
		v += t.Coef * g[i]
	}
	var variance float64
	for i := range g {
		for j := range g {
			if i < len(r.Cov) && j < len(r.Cov[i]) {
				variance += g[i] * r.Cov[i][j] * g[j]
			}
		}
	}
	var vals []float64
	for _, c := range r.PerRun {
		if c == nil {
			continue
		}
		var s float64
		for i := range c {
			s += c[i] * g[i]
		}
		vals = append(vals, s)
	}
	return v, math.Sqrt(max(variance, 0)), stddev(vals)
}

// resourceSpec is how one resource is fitted.
type resourceSpec struct {
	name, unit, formula string
	terms               []string
	redis               bool // fitted to the Redis windows
	// y is the observed value of a window (node) or a Redis window.
	y      func(w Window, eventBytes float64, redis bool) float64
	yRedis func(w RedisWindow) float64
	// busyOf, when set, adds the busy term over the sum of these terms,
	// its scale chosen from busyScales by the least residual.
	busyOf []string
	// merge: when the other terms explain nearly all of a term's
	// variance in these runs (it cannot be told apart), it is dropped
	// and its cost carried by another, with the note.
	merge *mergeRule
}

type mergeRule struct {
	drop, keep string
	note       string
}

// specs are the resources the model fits.
var specs = []resourceSpec{
	{
		name: ServerCPU, unit: "cores",
		formula: "a·deliveries/s + b·publishes/s + r·received/s + c·connects/s + d·connections + k·(1 - exp(-(publishes+received)/s ÷ s0)) + e",
		terms:   []string{TermDeliveries, TermPublishes, TermReceived, TermConnects, TermConnections, TermBusy, TermBase},
		busyOf:  []string{TermPublishes, TermReceived},
		y:       func(w Window, _ float64, _ bool) float64 { return w.CPU },
		merge: &mergeRule{drop: TermPublishes, keep: TermReceived,
			note: "publishes taken in and events received from the broker kept one ratio in every run (one node, every channel subscribed): their cost is one coefficient per received event, which the plan charges every node for every event it receives (an upper bound with several nodes; a ramp on two nodes tells them apart)"},
	},
	{
		name: Memory, unit: "bytes",
		formula: "r0 + r1·connections + r2·peak deliveries/s + r3·peak publishes/s (a Go process keeps the memory of its busiest moment)",
		terms:   []string{TermConnections, TermPeakDeliveries, TermPeakPublishes, TermBase},
		y:       func(w Window, _ float64, _ bool) float64 { return w.RSS },
	},
	{
		name: FDs, unit: "files",
		formula: "f0 + f1·connections",
		terms:   []string{TermConnections, TermBase},
		y:       func(w Window, _ float64, _ bool) float64 { return w.FDs },
	},
	{
		name: Network, unit: "bytes/s",
		formula: "deliveries/s × (event + o_d) + publishes/s × (event, when the node writes it to Redis, + o_p) + o_s·connects/s + o_c·connections + o_0",
		terms:   []string{TermDeliveries, TermPublishes, TermConnects, TermConnections, TermBase},
		y: func(w Window, e float64, redis bool) float64 {
			v := w.WriteBps - w.Deliveries*e
			if redis {
				v -= w.Publishes * e
			}
			return v
		},
	},
	{
		name: RedisCPU, unit: "cores", redis: true,
		formula: "p·publishes/s + q·fanout/s (messages sent to nodes) + k·(1 - exp(-publishes/s ÷ s0)) + g",
		terms:   []string{TermPublishes, TermFanout, TermBusy, TermBase},
		busyOf:  []string{TermPublishes},
		yRedis:  func(w RedisWindow) float64 { return w.CPU },
		merge: &mergeRule{drop: TermPublishes, keep: TermFanout,
			note: "publishes and the messages Redis sent to nodes kept one ratio in every run: their cost is one coefficient per message sent to a node, which the plan charges for every node a message fans out to (an upper bound with several nodes)"},
	},
}

// busyScales are the scales the busy term is tried at (events/s).
var busyScales = []float64{5, 10, 20, 50, 100, 200}

func (w Window) term(name string, scale float64) float64 {
	switch name {
	case TermBusy:
		return busy(w.Publishes+w.Received, scale)
	case TermDeliveries:
		return w.Deliveries
	case TermPublishes:
		return w.Publishes
	case TermReceived:
		return w.Received
	case TermConnects:
		return w.Connects
	case TermConnections:
		return w.Subscribers
	case TermPeakDeliveries:
		return w.PeakDeliveries
	case TermPeakPublishes:
		return w.PeakPublishes
	case TermBase:
		return 1
	}
	panic("capacity: unknown term " + name)
}

func (w RedisWindow) term(name string, scale float64) float64 {
	switch name {
	case TermBusy:
		return busy(w.Publishes, scale)
	case TermPublishes:
		return w.Publishes
	case TermFanout:
		return w.Fanout
	case TermBase:
		return 1
	}
	panic("capacity: unknown term " + name)
}

// observations are the design rows and values of one run for a spec,
// with the busy term at scale.
func (sp resourceSpec) observations(r *Run, terms []string, scale float64) ([][]float64, []float64) {
	var x [][]float64
	var y []float64
	if sp.redis {
		for _, w := range r.RedisWindows {
			row := make([]float64, len(terms))
			for j, t := range terms {
				row[j] = w.term(t, scale)
			}
			x, y = append(x, row), append(y, sp.yRedis(w))
		}
		return x, y
	}
	for _, w := range r.Windows {
		row := make([]float64, len(terms))
		for j, t := range terms {
			row[j] = w.term(t, scale)
		}
		x, y = append(x, row), append(y, sp.y(w, float64(r.EventBytes), r.Redis))
	}
	return x, y
}

// explained is the share of column j's variance the other columns
// explain (R² of regressing it on them): near 1, its coefficient cannot
// be told from theirs.
func explained(x [][]float64, j int) float64 {
	rest := make([][]float64, len(x))
	col := make([]float64, len(x))
	for i, row := range x {
		rest[i] = slices.Delete(slices.Clone(row), j, j+1)
		col[i] = row[j]
	}
	f, err := ols(rest, col)
	if err != nil {
		return 1
	}
	return rSquared(col, f.sigma, len(rest[0]))
}

// separable is the most of a term's variance the others may explain for
// it to be fitted on its own (a variance inflation of 50).
const separable = 0.98

// fitResource fits one resource to the runs; with a busy term, at each of
// busyScales, keeping the fit with the least residual.
func fitResource(sp resourceSpec, runs []*Run) (*Resource, error) {
	if len(sp.busyOf) == 0 {
		return fitAt(sp, runs, 0)
	}
	var best *Resource
	var firstErr error
	for _, scale := range busyScales {
		r, err := fitAt(sp, runs, scale)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if best == nil || r.Sigma < best.Sigma {
			best = r
		}
	}
	if best == nil {
		return nil, firstErr
	}
	if !slices.ContainsFunc(best.Terms, func(t Term) bool { return t.Name == TermBusy }) {
		best.BusyScale, best.BusyOf = 0, nil
	}
	return best, nil
}

// fitAt fits one resource with the busy term at scale. Terms that cannot
// be told apart are merged (spec.merge); terms whose coefficient comes
// out negative (a cost cannot be) are dropped one at a time, the least
// significant first, and the fit done again.
func fitAt(sp resourceSpec, runs []*Run, scale float64) (*Resource, error) {
	res := &Resource{Name: sp.name, Unit: sp.unit, Formula: sp.formula, BusyScale: scale, BusyOf: sp.busyOf}
	terms := slices.Clone(sp.terms)
	gather := func(terms []string) ([][]float64, []float64) {
		var x [][]float64
		var y []float64
		for _, r := range runs {
			rx, ry := sp.observations(r, terms, scale)
			x, y = append(x, rx...), append(y, ry...)
		}
		return x, y
	}
	x, y := gather(terms)
	if len(y) == 0 {
		return nil, badInput("%s: no windows to fit (no Redis samples in the runs?)", sp.name)
	}
	// Terms that never vary beyond zero are left out (no connects after
	// the ramp of a verification, no publishes in a run without any).
	for j := len(terms) - 1; j >= 0; j-- {
		if terms[j] == TermBase {
			continue
		}
		nonzero := false
		for _, row := range x {
			nonzero = nonzero || row[j] != 0
		}
		if !nonzero {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: always 0 in these runs, left out", terms[j]))
			terms = slices.Delete(terms, j, j+1)
		}
	}
	x, y = gather(terms)
	if m := sp.merge; m != nil {
		ia, ib := slices.Index(terms, m.drop), slices.Index(terms, m.keep)
		if ia >= 0 && ib >= 0 {
			if q := explained(x, ia); q > separable {
				res.Notes = append(res.Notes, fmt.Sprintf("the other terms explain %.1f%% of %s/s: %s", 100*q, m.drop, m.note))
				terms = slices.Delete(terms, ia, ia+1)
				x, y = gather(terms)
			}
		}
	}
	var fit *olsFit
	for {
		var err error
		if fit, err = ols(x, y); err != nil {
			return nil, badInput("%s: %v (%d windows, terms %s)", sp.name, err, len(y), strings.Join(terms, ", "))
		}
		worst, wt := -1, 0.0
		for j, c := range fit.coef {
			if c < 0 && len(terms) > 1 {
				if t := c / max(fit.se[j], 1e-300); worst < 0 || t > wt {
					worst, wt = j, t
				}
			}
		}
		if worst < 0 {
			break
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%s: fitted %s ± %s, below zero: left out", terms[worst],
			fmtCoef(fit.coef[worst]), fmtCoef(fit.se[worst])))
		terms = slices.Delete(terms, worst, worst+1)
		x, y = gather(terms)
	}
	res.Observations, res.Sigma, res.Cov = fit.n, fit.sigma, fit.cov
	res.R2 = rSquared(y, fit.sigma, len(terms))
	for j, t := range terms {
		res.Terms = append(res.Terms, Term{Name: t, Coef: fit.coef[j], SE: fit.se[j]})
	}
	if len(runs) > 1 {
		per := make([][]float64, len(terms))
		for _, r := range runs {
			rx, ry := sp.observations(r, terms, scale)
			f, err := ols(rx, ry)
			if err != nil {
				res.PerRun = append(res.PerRun, nil)
				continue
			}
			res.PerRun = append(res.PerRun, f.coef)
			for j := range terms {
				per[j] = append(per[j], f.coef[j])
			}
		}
		for j := range res.Terms {
			res.Terms[j].Spread = stddev(per[j])
		}
	}
	return res, nil
}

// rSquared is 1 - residual variance / total variance.
func rSquared(y []float64, sigma float64, p int) float64 {
	var mean float64
	for _, v := range y {
		mean += v
	}
	mean /= float64(len(y))
	var tss float64
	for _, v := range y {
		tss += (v - mean) * (v - mean)
	}
	if tss == 0 {
		return 1
	}
	return 1 - sigma*sigma*float64(len(y)-p)/tss
}

// stddev is the sample standard deviation; 0 for fewer than two values.
func stddev(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	var m float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)-1))
}

func fmtCoef(v float64) string { return fmt.Sprintf("%.3g", v) }
