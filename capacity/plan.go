package capacity

import (
	"fmt"
	"math"
	"sort"
)

// PlanSchema versions the plan's JSON.
const PlanSchema = "darktime.capacity/v2"

// maxNodes bounds the node count a plan searches.
const maxNodes = 10_000_000

// Plan is a forecast sized with a model.
type Plan struct {
	Schema   string    `json:"schema"`
	Forecast *Forecast `json:"forecast"`
	// Load is the forecast's traffic.
	Load LoadSummary `json:"load"`
	// Nodes is the node count every node resource fits in (0 when none
	// does: Binding says which resource cannot be met).
	Nodes   int    `json:"nodes"`
	Binding string `json:"binding"`
	// NodesHigh is the node count with every resource at its prediction
	// plus two standard errors; NodesRunLow/High the least and most
	// nodes a plan from each run's own fit needs (with several runs).
	NodesHigh    int `json:"nodes_high"`
	NodesRunLow  int `json:"nodes_per_run_low,omitempty"`
	NodesRunHigh int `json:"nodes_per_run_high,omitempty"`
	// Resources are the node resources at Nodes nodes.
	Resources []ResourcePlan `json:"resources"`
	Redis     *RedisPlan     `json:"redis,omitempty"`
	Bandwidth Bandwidth      `json:"bandwidth"`
	// Model is the fit the plan used; Knees the runs' knees at the SLO.
	Model       *Model   `json:"model"`
	Assumptions []string `json:"assumptions"`
}

// LoadSummary is what the forecast asks of the deployment.
type LoadSummary struct {
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	PublishesPerS  float64 `json:"publishes_per_s"`
	HotSubscribers float64 `json:"hot_channel_subscribers"`
	// BasePerS spreads over every channel; HotExtraPerS goes to the
	// hottest on top.
	BasePerS     float64 `json:"base_messages_per_s"`
	HotExtraPerS float64 `json:"hot_extra_messages_per_s"`
}

// ResourcePlan is one node resource in the plan.
type ResourcePlan struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// PerNode is the model's prediction for one node at Plan.Nodes, SE
	// its standard error, Spread its spread over the per-run fits.
	PerNode float64 `json:"per_node"`
	SE      float64 `json:"se"`
	Spread  float64 `json:"run_spread"`
	// Limit is what one node may use (the forecast's node × headroom).
	Limit float64 `json:"limit"`
	// NodesNeeded is the least node count this resource fits in (0: no
	// count does).
	NodesNeeded int `json:"nodes_needed"`
}

// RedisPlan sizes the broker.
type RedisPlan struct {
	// CPU is every shard's CPU together at Plan.Nodes nodes; HotCPU the
	// hottest channel's share of it, which one shard carries alone.
	CPU    float64 `json:"cpu_cores"`
	SE     float64 `json:"se"`
	HotCPU float64 `json:"hot_channel_cpu_cores"`
	// FanoutPerS is messages Redis sends to nodes per second.
	FanoutPerS float64 `json:"fanout_per_s"`
	// Limit is one shard's CPU × headroom; Shards the shards needed (0:
	// the hottest channel alone passes one shard's limit).
	Limit  float64 `json:"limit"`
	Shards int     `json:"shards"`
}

// Bandwidth is what the nodes write at the peak.
type Bandwidth struct {
	BytesPerS      float64 `json:"bytes_per_s"`
	MbitPerS       float64 `json:"mbit_per_s"`
	PerNodeMbitS   float64 `json:"per_node_mbit_per_s"`
	TBPerDayAtPeak float64 `json:"tb_per_day_at_peak"`
}

// limit is one node's limit of a resource.
func (f *Forecast) limit(name string) float64 {
	h := f.Headroom
	switch name {
	case ServerCPU:
		return f.Node.Cores * h
	case Memory:
		return f.Node.MemoryGiB * (1 << 30) * h
	case FDs:
		return f.Node.FDLimit * h
	case Network:
		return f.Node.NICGbps * 1e9 / 8 * h
	}
	return math.Inf(1)
}

// nodeTerms are the model's terms for one of n nodes, with the network
// model's event size added back (the fit subtracted the ramp's).
func (m *Model) predictNode(r *Resource, f *Forecast, l load, n float64) (v, se, spread float64) {
	x := l.nodeTerms(n)
	v, se, spread = r.Predict(x)
	if r.Name == Network {
		e := float64(f.eventBytes(m))
		v += x[TermDeliveries] * e
		if m.Redis {
			v += x[TermPublishes] * e
		}
	}
	return v, se, spread
}

func (f *Forecast) eventBytes(m *Model) int {
	if f.EventBytes > 0 {
		return f.EventBytes
	}
	return m.EventBytes
}

// nodesFor is the least node count at which value(n) <= limit, by
// bisection (every per-node term falls as nodes are added); 0 when even
// maxNodes does not do.
func nodesFor(value func(n float64) float64, limit float64) int {
	if value(1) <= limit {
		return 1
	}
	if value(maxNodes) > limit {
		return 0
	}
	lo, hi := 1, maxNodes // value(lo) > limit >= value(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if value(float64(mid)) <= limit {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// nodeResources are the node resources in print order.
var nodeResources = []string{ServerCPU, Memory, FDs, Network}

// MakePlan sizes the forecast with the model: the least node count every
// node resource fits in at the forecast's headroom, the binding resource,
// the Redis shards and the bandwidth at that count.
func MakePlan(m *Model, f *Forecast) (*Plan, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	l := f.newLoad()
	base, extra := f.rates()
	p := &Plan{Schema: PlanSchema, Forecast: f, Model: m, Load: LoadSummary{
		DeliveriesPerS: l.deliveries(), PublishesPerS: l.total, HotSubscribers: l.hotSubscribers(), BasePerS: base, HotExtraPerS: extra,
	}}
	impossible, highImpossible := false, false
	for _, name := range nodeResources {
		r := m.Resource(name)
		if r == nil {
			continue
		}
		limit := f.limit(name)
		n := nodesFor(func(n float64) float64 { v, _, _ := m.predictNode(r, f, l, n); return v }, limit)
		high := nodesFor(func(n float64) float64 { v, se, _ := m.predictNode(r, f, l, n); return v + 2*se }, limit)
		if n == 0 {
			impossible = true
			p.Binding = name
		} else if !impossible && n > p.Nodes {
			p.Nodes, p.Binding = n, name
		}
		highImpossible = highImpossible || high == 0
		p.NodesHigh = max(p.NodesHigh, high)
		p.Resources = append(p.Resources, ResourcePlan{Name: name, Unit: r.Unit, Limit: limit, NodesNeeded: n})
	}
	if impossible {
		p.Nodes = 0
	}
	if highImpossible {
		p.NodesHigh = 0
	}
	at := float64(max(p.Nodes, 1))
	for i := range p.Resources {
		rp := &p.Resources[i]
		rp.PerNode, rp.SE, rp.Spread = m.predictNode(m.Resource(rp.Name), f, l, at)
	}
	p.perRunNodes(m, f, l)
	if m.Redis {
		p.Redis = redisPlan(m, f, l, at)
	}
	if r := m.Resource(Network); r != nil {
		v, _, _ := m.predictNode(r, f, l, at)
		p.Bandwidth = Bandwidth{BytesPerS: v * at, MbitPerS: v * at * 8 / 1e6, PerNodeMbitS: v * 8 / 1e6, TBPerDayAtPeak: v * at * 86400 / 1e12}
	}
	p.Assumptions = assumptions(m, f, p)
	return p, nil
}

// perRunNodes sizes the forecast with each run's own coefficients.
func (p *Plan) perRunNodes(m *Model, f *Forecast, l load) {
	if len(m.Runs) < 2 || p.Nodes == 0 {
		return
	}
	var counts []int
	for i := range m.Runs {
		nodes := 1
		for _, name := range nodeResources {
			r := m.Resource(name)
			if r == nil || i >= len(r.PerRun) || r.PerRun[i] == nil {
				return // a run that could not be fitted alone: no per-run plan
			}
			one := *r
			one.Terms = append([]Term(nil), r.Terms...)
			for j := range one.Terms {
				one.Terms[j].Coef = r.PerRun[i][j]
			}
			one.Cov, one.PerRun = nil, nil
			n := nodesFor(func(n float64) float64 { v, _, _ := m.predictNode(&one, f, l, n); return v }, f.limit(name))
			if n == 0 {
				return
			}
			nodes = max(nodes, n)
		}
		counts = append(counts, nodes)
	}
	sort.Ints(counts)
	p.NodesRunLow, p.NodesRunHigh = counts[0], counts[len(counts)-1]
}

// redisPlan sizes the shards at n nodes: the hottest channel lives on one
// shard (its hash slot), the others spread evenly over every shard; the
// hottest channel's shard is the busiest.
func redisPlan(m *Model, f *Forecast, l load, n float64) *RedisPlan {
	r := m.Resource(RedisCPU)
	var fanout float64
	for k := range l.rates {
		fanout += l.rates[k] * l.nodesWith(k, n)
	}
	hotRate, hotFan := l.rates[0], l.rates[0]*l.nodesWith(0, n)
	shard := func(p, fan float64) (v, se float64) {
		v, se, _ = r.Predict(map[string]float64{TermPublishes: p, TermFanout: fan, TermBase: 1})
		return v, se
	}
	busiest := func(s int) float64 {
		v, _ := shard(hotRate+(l.total-hotRate)/float64(s), hotFan+(fanout-hotFan)/float64(s))
		return v
	}
	rp := &RedisPlan{FanoutPerS: fanout, Limit: f.ShardCores * f.Headroom}
	rp.HotCPU, _ = shard(hotRate, hotFan)
	const maxShards = 16384 // a Redis Cluster's hash slots
	if busiest(maxShards) > rp.Limit {
		rp.CPU, rp.SE = shard(l.total, fanout)
		return rp
	}
	lo, hi := 0, maxShards // busiest(hi) fits; lo does not (or is 0)
	if busiest(1) <= rp.Limit {
		hi = 1
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if busiest(mid) <= rp.Limit {
			hi = mid
		} else {
			lo = mid
		}
	}
	rp.Shards = hi
	s := float64(hi)
	hot, hotSE := shard(hotRate+(l.total-hotRate)/s, hotFan+(fanout-hotFan)/s)
	other, otherSE := shard((l.total-hotRate)/s, (fanout-hotFan)/s)
	rp.CPU = hot + (s-1)*other
	rp.SE = hotSE + (s-1)*otherSE // the shards' errors move together: one model
	return rp
}

// assumptions list what the plan takes for granted.
func assumptions(m *Model, f *Forecast, p *Plan) []string {
	e := f.eventBytes(m)
	a := []string{
		fmt.Sprintf("every user holds one stream to one channel, spread evenly at random over the nodes; channels by %s", f.Distribution),
		fmt.Sprintf("%s messages/s spread evenly over the %s channels, and the hottest gets %s/s more (%s/s in all)",
			num(p.Load.BasePerS), num(float64(f.Channels)), num(p.Load.HotExtraPerS), num(f.HotMessagesPerS)),
		fmt.Sprintf("publishes spread evenly over the nodes; %s new streams/s at the peak", num(f.ConnectsPerS)),
		fmt.Sprintf("each node: %s cores, %s GiB, %s open files, a %s Gbit/s NIC; every limit planned at %s",
			num(f.Node.Cores), num(f.Node.MemoryGiB), num(f.Node.FDLimit), num(f.Node.NICGbps), pct(f.Headroom)),
		fmt.Sprintf("the nodes' hardware, kernel and Go runtime cost what this machine's did per unit of work (fitted from %d run(s))", len(m.Runs)),
		fmt.Sprintf("%d-byte events; the cost per delivery was fitted at %d bytes: only the bytes written follow the size", e, m.EventBytes),
		"bandwidth is what the nodes write (wchar: SSE frames, HTTP answers, commands to Redis), headers of TCP/IP and TLS not included",
	}
	if m.Redis {
		a = append(a, fmt.Sprintf("a Redis shard costs what the ramp's single Redis did per publish and per message sent to a node; one shard holds the hottest channel (its hash slot); each shard may use %s core(s) at %s",
			num(f.ShardCores), pct(f.Headroom)))
	} else {
		a = append(a, "the runs used the in-process broker: no Redis is sized, and a node receives nothing from other nodes")
	}
	for _, r := range m.Resources {
		for _, n := range r.Notes {
			a = append(a, r.Name+": "+n)
		}
	}
	lower := 0
	for _, ri := range m.Runs {
		if ri.Knee.LowerBound {
			lower++
		}
	}
	if lower > 0 {
		a = append(a, fmt.Sprintf("%d run(s) kept p99 <= %s ms to the end: their fit covers loads up to the ramp's top, not beyond", lower, num(m.SLOP99Ms)))
	}
	return a
}
