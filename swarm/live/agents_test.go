package live

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/promtest"
	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/swarm"
)

// Agents export their parts, labelled with their names; the parts add up
// to the result the coordinator merged.
func TestAgentsExportTheirParts(t *testing.T) {
	tstest.Long(t, "two agents and a private Prometheus (~5 s)")
	t.Parallel()
	prom := promtest.Start(t)
	rdb := redistest.Start(t).Client()
	t.Cleanup(func() { rdb.Close() })
	rw := Config{URL: prom.WriteURL, Interval: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 2 {
		a := &swarm.Agent{Redis: rdb, Name: "loadgen-" + strconv.Itoa(i), Runs: 1}
		a.Watch = rw.AgentWatch(a)
		wg.Go(func() {
			if err := a.Serve(ctx); err != nil {
				t.Errorf("agent %s: %v", a.Name, err)
			}
		})
	}
	cfg := quickRun(startServer(t))
	res, err := swarm.RunAgents(ctx, cfg, swarm.Coordination{Redis: rdb, Agents: 2, JoinTimeout: 10 * time.Second, StartDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait() // each agent's last request goes once its result is pushed
	sel := `{run_id="` + cfg.RunID + `"}`
	for _, c := range []struct {
		query string
		want  int64
	}{
		{"count(" + MetricEvents + sel + ")", 2},
		{`count(` + MetricEvents + `{run_id="` + cfg.RunID + `",agent=~"loadgen-[01]",part=~"[01]/2"})`, 2},
		{"sum(" + MetricEvents + sel + ")", res.Events.Events},
		{"sum(" + MetricCredit + sel + ")", res.Ledger.Totals().Credit},
		{"histogram_count(sum(" + MetricDelivery + sel + "))", res.Summary[swarm.HistDelivery].Count},
	} {
		got, err := prom.Scalar(context.Background(), c.query, time.Time{})
		if err != nil || got != float64(c.want) {
			t.Errorf("%s = %v, %v; want %d", c.query, got, err, c.want)
		}
	}
}
