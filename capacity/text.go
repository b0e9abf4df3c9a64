package capacity

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// num formats a number for people: thousands separated, three
// significant digits below 1,000.
func num(v float64) string {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return fmt.Sprint(v)
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return thousands(math.Round(v))
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func thousands(v float64) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', 0, 64)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func pct(v float64) string { return num(math.Round(v*1000)/10) + "%" }

// scaled is a value in the unit people read for it: µs of CPU per unit
// of a rate, KiB per connection, MiB of base memory.
func scaled(unit, term string, v float64) (float64, string) {
	rate := term != TermConnections && term != TermBase && term != TermBusy
	switch {
	case unit == "cores" && rate:
		return v * 1e6, "µs"
	case unit == "cores" && term == TermConnections:
		return v * 1e6, "µs/s"
	case unit == "cores":
		return v, "cores"
	case unit == "bytes" && term == TermConnections:
		return v / 1024, "KiB"
	case unit == "bytes" && term == TermBase:
		return v / (1 << 20), "MiB"
	case unit == "bytes":
		return v, "B per 1/s"
	case unit == "bytes/s" && rate:
		return v, "B"
	case unit == "bytes/s":
		return v, "B/s"
	}
	return v, ""
}

// fmtTerm is "11.9 µs ± 0.3 (runs ± 0.5) × deliveries/s".
func fmtTerm(r *Resource, t Term) string {
	unit := r.Unit
	v, u := scaled(unit, t.Name, t.Coef)
	se, _ := scaled(unit, t.Name, t.SE)
	s := fmt.Sprintf("%s %s ± %s", num(v), u, num(se))
	if t.Spread > 0 {
		sp, _ := scaled(unit, t.Name, t.Spread)
		s += fmt.Sprintf(" (runs ± %s)", num(sp))
	}
	s = strings.Replace(s, "  ", " ", 1)
	switch t.Name {
	case TermBase:
		return s
	case TermBusy:
		return fmt.Sprintf("%s × (1 - e^(-(%s)/s ÷ %s))", s, strings.Join(r.BusyOf, " + "), num(r.BusyScale))
	case TermConnections:
		return s + " × connections"
	case TermPeakDeliveries, TermPeakPublishes:
		return s + " × " + strings.TrimPrefix(t.Name, "peak_") + "/s at the peak"
	}
	return s + " × " + t.Name + "/s"
}

// fmtValue is a resource's value in its unit for people.
func fmtValue(unit string, v float64) string {
	switch unit {
	case "cores":
		return num(v) + " cores"
	case "bytes":
		return num(v/(1<<20)) + " MiB"
	case "files":
		return num(v) + " files"
	case "bytes/s":
		return num(v*8/1e6) + " Mbit/s"
	}
	return num(v)
}

// WriteModel prints the model: each resource's formula and coefficients.
func (m *Model) WriteText(w io.Writer) error {
	var b strings.Builder
	windows := 0
	for _, r := range m.Runs {
		windows += r.Windows
	}
	cut := "every window fitted"
	if m.CutAtKnee {
		cut = "windows after the knee left out"
	}
	fmt.Fprintf(&b, "model: %d run(s), %d node window(s) of %d samples, %s, %d-byte events; knees at p99 <= %s ms, %s\n",
		len(m.Runs), windows, m.Window, brokerName(m.Redis), m.EventBytes, num(m.SLOP99Ms), cut)
	for _, ri := range m.Runs {
		knee := fmt.Sprintf("knee %s subscribers, %s deliveries/s per node", num(ri.Knee.Subscribers), num(ri.Knee.DeliveriesPerS))
		switch {
		case ri.Knee.Subscribers == 0:
			knee = "no knee (no second kept the SLO, or no swarm result)"
		case ri.Knee.LowerBound:
			knee += " (a lower bound: the SLO held to the end)"
		}
		fmt.Fprintf(&b, "  run %s: %d node(s), %d windows (%d after the knee left out); %s\n", ri.Name, ri.Nodes, ri.Windows, ri.Cut, knee)
	}
	for _, r := range m.Resources {
		fmt.Fprintf(&b, "  %s\n", r)
		fmt.Fprintf(&b, "      %d windows, residual sd %s, R² %.3f\n", r.Observations, fmtValue(r.Unit, r.Sigma), r.R2)
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "      note: %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText prints the plan: the load, the nodes and which resource
// binds, every resource per node, Redis, bandwidth, the model and the
// assumptions.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	f := p.Forecast
	fmt.Fprintf(&b, "forecast: %s users on %s channels (%s), %s messages/s, %s/s on the hottest channel (%s users), %d-byte events\n",
		num(f.PeakUsers), num(float64(f.Channels)), f.Distribution, num(f.MessagesPerS), num(f.HotMessagesPerS),
		num(p.Load.HotSubscribers), f.eventBytes(p.Model))
	fmt.Fprintf(&b, "load: %s deliveries/s, %s publishes/s\n", num(p.Load.DeliveriesPerS), num(p.Load.PublishesPerS))
	if p.Nodes == 0 {
		fmt.Fprintf(&b, "nodes: NONE FITS: %s passes a node's limit at any node count\n", p.Binding)
	} else {
		fmt.Fprintf(&b, "nodes: %d (%s binds); %s at prediction + 2 s.e.", p.Nodes, p.Binding, countOrNone(p.NodesHigh))
		if p.NodesRunHigh > 0 {
			fmt.Fprintf(&b, "; %d–%d from each run's own fit", p.NodesRunLow, p.NodesRunHigh)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  %-11s %-28s %-16s %s\n", "resource", "per node", "limit", "nodes needed")
	for _, r := range p.Resources {
		mark := ""
		if r.Name == p.Binding {
			mark = "  <- binds"
		}
		per := fmtValue(r.Unit, r.PerNode) + " ± " + strings.Fields(fmtValue(r.Unit, r.SE))[0]
		fmt.Fprintf(&b, "  %-11s %-28s %-16s %s%s\n", r.Name, per, fmtValue(r.Unit, r.Limit), countOrNone(r.NodesNeeded), mark)
	}
	if rp := p.Redis; rp != nil {
		if rp.Shards == 0 {
			fmt.Fprintf(&b, "redis: NO SHARD COUNT FITS: the hottest channel alone takes %s cores of its shard (limit %s)\n", num(rp.HotCPU), num(rp.Limit))
		} else {
			fmt.Fprintf(&b, "redis: %d shard(s): %s ± %s cores in all (the hottest channel alone takes %s cores of its shard), %s messages/s sent to nodes; limit %s cores a shard\n",
				rp.Shards, num(rp.CPU), num(rp.SE), num(rp.HotCPU), num(rp.FanoutPerS), num(rp.Limit))
		}
	}
	bw := p.Bandwidth
	fmt.Fprintf(&b, "bandwidth: %s Mbit/s written by the nodes (%s Mbit/s each); %s TB a day at this peak\n",
		num(bw.MbitPerS), num(bw.PerNodeMbitS), num(bw.TBPerDayAtPeak))
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return err
	}
	if err := p.Model.WriteText(w); err != nil {
		return err
	}
	b.Reset()
	b.WriteString("assumptions:\n")
	for _, a := range p.Assumptions {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func countOrNone(n int) string {
	if n == 0 {
		return "none fits"
	}
	return strconv.Itoa(n)
}

// WriteJSON writes the plan (darktime.capacity/v2).
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
