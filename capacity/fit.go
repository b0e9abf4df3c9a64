package capacity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/darktime/darktime/report"
)

// ModelSchema versions a saved model (--model-out, --model).
const ModelSchema = "darktime.capacity-model/v1"

// Model is every resource's fit, from one or more runs.
type Model struct {
	Schema string `json:"schema"`
	// Runs are the runs fitted, with their knees.
	Runs []RunInfo `json:"runs"`
	// EventBytes is the runs' event size (the first run's); Redis says
	// they ran on a Redis broker (and RedisCPU is fitted).
	EventBytes int  `json:"event_bytes"`
	Redis      bool `json:"redis"`
	// Window is the samples per window; SLOP99Ms the SLO of the runs'
	// knees, which cut the fit with CutAtKnee.
	Window    int     `json:"window_samples"`
	SLOP99Ms  float64 `json:"slo_p99_ms"`
	CutAtKnee bool    `json:"cut_at_knee"`
	// MaxConnections is the most open streams one node had in a fitted
	// window: --verify stays within it.
	MaxConnections float64     `json:"max_connections"`
	Resources      []*Resource `json:"resources"`
}

// RunInfo is one fitted run.
type RunInfo struct {
	Name       string      `json:"name"`
	Nodes      int         `json:"nodes"`
	EventBytes int         `json:"event_bytes"`
	Windows    int         `json:"windows"`
	Cut        int         `json:"windows_after_knee"`
	Knee       report.Knee `json:"knee"`
}

// Resource returns the named resource's model, or nil.
func (m *Model) Resource(name string) *Resource {
	for _, r := range m.Resources {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Fit fits every resource to the runs' windows (all on the same kind of
// broker). Runs on Redis fit RedisCPU too.
func Fit(runs []*Run, o LoadOptions) (*Model, error) {
	if len(runs) == 0 {
		return nil, badInput("give at least one ramp run (a darktime run folder with %s and %s)", SwarmFile, ResourcesFile)
	}
	if o.SLOP99Ms == 0 {
		o.SLOP99Ms = DefaultSLOP99Ms
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	m := &Model{Schema: ModelSchema, EventBytes: runs[0].EventBytes, Redis: runs[0].Redis, Window: o.Window, SLOP99Ms: o.SLOP99Ms, CutAtKnee: o.CutAtKnee}
	for _, r := range runs {
		if r.Redis != m.Redis {
			return nil, badInput("%s ran on %s and %s on %s: fit runs of one broker kind", runs[0].Name, brokerName(m.Redis), r.Name, brokerName(r.Redis))
		}
		for _, w := range r.Windows {
			m.MaxConnections = max(m.MaxConnections, w.Subscribers)
		}
		m.Runs = append(m.Runs, RunInfo{Name: r.Name, Nodes: r.Nodes, EventBytes: r.EventBytes, Windows: len(r.Windows), Cut: r.Cut, Knee: r.Knee})
	}
	for _, sp := range specs {
		if sp.redis && !m.Redis {
			continue
		}
		res, err := fitResource(sp, runs)
		if err != nil {
			return nil, err
		}
		m.Resources = append(m.Resources, res)
	}
	return m, nil
}

func brokerName(redis bool) string {
	if redis {
		return "a Redis broker"
	}
	return "the in-process broker"
}

// WriteJSON writes the model (darktime.capacity-model/v1).
func (m *Model) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// ReadModel reads a saved model and checks it.
func ReadModel(ctx context.Context, fs report.Files, path string) (*Model, error) {
	data, err := fs.Read(ctx, path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var m Model
	if err := dec.Decode(&m); err != nil {
		return nil, badInput("model %s: %v", path, err)
	}
	if m.Schema != ModelSchema {
		return nil, badInput("model %s: schema %q, want %q (darktime report capacity --model-out writes one)", path, m.Schema, ModelSchema)
	}
	for _, name := range []string{ServerCPU, Memory, FDs, Network} {
		if m.Resource(name) == nil {
			return nil, badInput("model %s: no %s resource", path, name)
		}
	}
	if m.Redis && m.Resource(RedisCPU) == nil {
		return nil, badInput("model %s: a Redis model without %s", path, RedisCPU)
	}
	for _, r := range m.Resources {
		if len(r.Cov) != len(r.Terms) {
			return nil, badInput("model %s: %s: the covariance is not %d×%d", path, r.Name, len(r.Terms), len(r.Terms))
		}
		for _, row := range r.Cov {
			if len(row) != len(r.Terms) {
				return nil, badInput("model %s: %s: the covariance is not %d×%d", path, r.Name, len(r.Terms), len(r.Terms))
			}
		}
		for _, c := range r.PerRun {
			if c != nil && len(c) != len(r.Terms) {
				return nil, badInput("model %s: %s: a per-run fit has %d coefficients, not %d", path, r.Name, len(c), len(r.Terms))
			}
		}
		for _, t := range r.Terms {
			if _, ok := knownTerms[t.Name]; !ok {
				return nil, badInput("model %s: %s: unknown term %q", path, r.Name, t.Name)
			}
		}
		for _, t := range r.BusyOf {
			if _, ok := knownTerms[t]; !ok || t == TermBusy {
				return nil, badInput("model %s: %s: busy_of names %q", path, r.Name, t)
			}
		}
		if r.BusyScale < 0 {
			return nil, badInput("model %s: %s: busy_scale %v below zero", path, r.Name, r.BusyScale)
		}
	}
	return &m, nil
}

var knownTerms = map[string]bool{TermDeliveries: true, TermPublishes: true, TermReceived: true, TermConnects: true,
	TermConnections: true, TermPeakDeliveries: true, TermPeakPublishes: true, TermFanout: true, TermBusy: true, TermBase: true}

// String is the model in one line per resource.
func (r *Resource) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s (%s) =", r.Name, r.Unit)
	for i, t := range r.Terms {
		if i > 0 {
			b.WriteString(" +")
		}
		fmt.Fprintf(&b, " %s", fmtTerm(r, t))
	}
	return b.String()
}
