package capacity_test

import (
	"fmt"

	"github.com/darktime/darktime/capacity"
)

// A model by hand (capacity.Fit makes one from ramp runs): 10 µs of CPU
// per delivery, 100 µs per publish, 6 KiB and one file per connection,
// 60 bytes over the event per delivery, 70 µs of Redis per publish.
func ExampleMakePlan() {
	term := func(name string, coef float64) capacity.Term { return capacity.Term{Name: name, Coef: coef} }
	m := &capacity.Model{EventBytes: 200, Redis: true, Resources: []*capacity.Resource{
		{Name: capacity.ServerCPU, Unit: "cores", Terms: []capacity.Term{term(capacity.TermDeliveries, 10e-6), term(capacity.TermPublishes, 100e-6)}},
		{Name: capacity.Memory, Unit: "bytes", Terms: []capacity.Term{term(capacity.TermConnections, 6<<10), term(capacity.TermBase, 30<<20)}},
		{Name: capacity.FDs, Unit: "files", Terms: []capacity.Term{term(capacity.TermConnections, 1), term(capacity.TermBase, 30)}},
		{Name: capacity.Network, Unit: "bytes/s", Terms: []capacity.Term{term(capacity.TermDeliveries, 60), term(capacity.TermPublishes, 500)}},
		{Name: capacity.RedisCPU, Unit: "cores", Terms: []capacity.Term{term(capacity.TermPublishes, 70e-6), term(capacity.TermBase, 0.005)}},
	}}
	f, err := capacity.ParseForecast("forecast.yaml", []byte(`
peak_users: 1000000
channels: 10000
distribution: zipf:1.1
messages_per_s: 1000
hot_messages_per_s: 10
event_bytes: 300
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := capacity.MakePlan(m, f)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.0f deliveries/s: %d nodes (%s binds), %d Redis shard(s), %.0f Mbit/s\n",
		p.Load.DeliveriesPerS, p.Nodes, p.Binding, p.Redis.Shards, p.Bandwidth.MbitPerS)
	// Output: 1598388 deliveries/s: 3 nodes (server_cpu binds), 1 Redis shard(s), 4610 Mbit/s
}
