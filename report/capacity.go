package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// CapacityOptions describe the SLO, the tested setup and the peak to plan
// for.
type CapacityOptions struct {
	// SLOP99Ms is the SLO: p99 delivery latency below this, per second.
	SLOP99Ms float64
	// Breach is how many consecutive seconds over the SLO end the usable
	// part of the ramp (default 3: one slow second is not a knee).
	Breach int
	// Nodes is how many server nodes served the ramp run (default 1).
	Nodes int
	// PeakUsers is P, the peak of concurrent users (one connection each).
	PeakUsers int64
	// HotRate is M, messages per second on the hottest channel.
	HotRate float64
	// HotShare is the share of users subscribed to the hottest channel
	// (default 1: every user, the worst case).
	HotShare float64
	// Headroom is the share of the knee a node is planned to run at
	// (default 0.7).
	Headroom float64
}

// Knee is the busiest second of the ramp that kept the SLO.
type Knee struct {
	// Subscribers and DeliveriesPerS are per node: the most of each seen
	// in a second that kept the SLO, before the SLO broke for good.
	Subscribers    float64 `json:"subscribers_per_node"`
	DeliveriesPerS float64 `json:"deliveries_per_s_per_node"`
	// AtSecond is the Unix second of the last second before the breach
	// (0 when the SLO never broke: the knee is then only a lower bound).
	AtSecond int64 `json:"breach_at"`
	// P99AtBreach is the p99 of the first breaching second.
	P99AtBreach float64 `json:"p99_at_breach_ms"`
	LowerBound  bool    `json:"lower_bound"`
}

// Capacity is the answer of a capacity plan.
type Capacity struct {
	SLOP99Ms            float64  `json:"slo_p99_ms"`
	Knee                Knee     `json:"knee"`
	PeakUsers           int64    `json:"peak_users"`
	HotRate             float64  `json:"hot_channel_messages_per_s"`
	DeliveriesNeeded    float64  `json:"deliveries_per_s_needed"`
	NodesForConnections int      `json:"nodes_for_connections"`
	NodesForDeliveries  int      `json:"nodes_for_deliveries"`
	Nodes               int      `json:"nodes"`
	Assumptions         []string `json:"assumptions"`
}

// Plan finds the knee of a ramp run (Report.Series: open connections and
// deliveries/s against the p99 of each second) and sizes a cluster for
// opts.PeakUsers users and opts.HotRate messages/s on the hottest channel.
func Plan(r *Report, opts CapacityOptions) (*Capacity, error) {
	switch {
	case opts.SLOP99Ms <= 0:
		return nil, badInput("capacity: the SLO (--slo-p99-ms) must be > 0")
	case opts.PeakUsers <= 0 || opts.HotRate <= 0:
		return nil, badInput("capacity: --users and --rate (messages/s on the hottest channel) must be > 0")
	case opts.HotShare < 0 || opts.HotShare > 1 || opts.Headroom < 0 || opts.Headroom > 1:
		return nil, badInput("capacity: --hot-share and --headroom are shares between 0 and 1")
	}
	if opts.Breach <= 0 {
		opts.Breach = DefaultBreach
	}
	if opts.Nodes <= 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.HotShare == 0 {
		opts.HotShare = DefaultHotShare
	}
	if opts.Headroom == 0 {
		opts.Headroom = DefaultHeadroom
	}
	k, err := FindKnee(r, opts.SLOP99Ms, opts.Breach, opts.Nodes)
	if err != nil {
		return nil, err
	}
	c := &Capacity{SLOP99Ms: opts.SLOP99Ms, Knee: k, PeakUsers: opts.PeakUsers, HotRate: opts.HotRate}
	c.DeliveriesNeeded = opts.HotRate * float64(opts.PeakUsers) * opts.HotShare
	c.NodesForConnections = int(math.Ceil(float64(opts.PeakUsers) / (k.Subscribers * opts.Headroom)))
	c.NodesForDeliveries = int(math.Ceil(c.DeliveriesNeeded / (k.DeliveriesPerS * opts.Headroom)))
	c.Nodes = max(1, c.NodesForConnections, c.NodesForDeliveries)
	c.Assumptions = []string{
		fmt.Sprintf("the ramp ran on %d node(s) and the load spread evenly over them", opts.Nodes),
		fmt.Sprintf("the knee is the most connections and deliveries/s seen in a second with p99 <= %s ms before %d seconds in a row broke it",
			formatNum(opts.SLOP99Ms), opts.Breach),
		fmt.Sprintf("every user holds one connection; %s of them subscribe to the hottest channel and get each of its %s messages/s",
			pct(opts.HotShare), formatNum(opts.HotRate)),
		"the hottest channel dominates: other channels' deliveries are not counted",
		fmt.Sprintf("nodes are planned at %s of the knee (headroom for failover and bursts)", pct(opts.Headroom)),
		"latency grows with connections and deliveries/s as in the ramp (same hardware, message size and subscriber mix)",
		"the broker delivers the hottest channel's messages to every node; its own limit is not measured here",
	}
	if k.LowerBound {
		c.Assumptions = append(c.Assumptions, "the SLO never broke during the run: the knee is a lower bound, the node count an upper bound")
	}
	return c, nil
}

// FindKnee finds the knee of a ramp run served by nodes nodes (see Plan):
// the most open connections and deliveries/s per node seen in a second
// with p99 <= sloP99Ms before breach seconds in a row broke it.
func FindKnee(r *Report, sloP99Ms float64, breach, nodes int) (Knee, error) {
	if sloP99Ms <= 0 {
		return Knee{}, badInput("capacity: the SLO (--slo-p99-ms) must be > 0")
	}
	if breach <= 0 {
		breach = DefaultBreach
	}
	if nodes <= 0 {
		nodes = DefaultNodes
	}
	opts := CapacityOptions{SLOP99Ms: sloP99Ms, Breach: breach, Nodes: nodes}
	var busy []SeriesPoint
	for _, s := range r.Series {
		if s.Deliveries > 0 {
			busy = append(busy, s)
		}
	}
	if len(busy) < opts.Breach+1 {
		return Knee{}, badInput("capacity: the run has %d seconds with deliveries; a ramp needs more", len(busy))
	}
	k := Knee{LowerBound: true}
	end := len(busy)
	for i := 0; i+opts.Breach <= len(busy); i++ {
		over := true
		for _, s := range busy[i : i+opts.Breach] {
			over = over && s.P99 > opts.SLOP99Ms
		}
		if over {
			end, k.LowerBound, k.P99AtBreach = i, false, busy[i].P99
			if i > 0 {
				k.AtSecond = busy[i-1].T
			}
			break
		}
	}
	for _, s := range busy[:end] {
		if s.P99 <= opts.SLOP99Ms {
			k.Subscribers = max(k.Subscribers, float64(s.Open))
			k.DeliveriesPerS = max(k.DeliveriesPerS, float64(s.Deliveries))
		}
	}
	if k.Subscribers == 0 || k.DeliveriesPerS == 0 {
		return Knee{}, badInput("capacity: no second of the run kept p99 <= %s ms: nothing to plan from (lower the load or raise the SLO)", formatNum(opts.SLOP99Ms))
	}
	n := float64(opts.Nodes)
	k.Subscribers, k.DeliveriesPerS = math.Floor(k.Subscribers/n), math.Floor(k.DeliveriesPerS/n)
	return k, nil
}

func pct(v float64) string { return formatNum(math.Round(v*1000)/10) + "%" }

// WriteText prints the plan with its assumptions.
func (c *Capacity) WriteText(w io.Writer) error {
	var b strings.Builder
	knee := "knee"
	if c.Knee.LowerBound {
		knee = "knee (lower bound: the SLO never broke)"
	}
	fmt.Fprintf(&b, "%s at p99 <= %s ms: %s subscribers and %s deliveries/s per node\n", knee, formatNum(c.SLOP99Ms),
		formatNum(c.Knee.Subscribers), formatNum(c.Knee.DeliveriesPerS))
	fmt.Fprintf(&b, "peak: %d users, %s messages/s on the hottest channel = %s deliveries/s\n",
		c.PeakUsers, formatNum(c.HotRate), formatNum(c.DeliveriesNeeded))
	fmt.Fprintf(&b, "nodes: %d (%d for the connections, %d for the deliveries)\n", c.Nodes, c.NodesForConnections, c.NodesForDeliveries)
	b.WriteString("assumptions:\n")
	for _, a := range c.Assumptions {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the plan as JSON.
func (c *Capacity) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}
