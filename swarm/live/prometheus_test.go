package live

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/promtest"
	"github.com/darktime/darktime/swarm"
)

// A real run exported to a real Prometheus (Debian's 2.42, remote-write
// receiver and native histograms on), queried back through its HTTP API
// and compared with the run's result.
func TestPrometheusReceivesRun(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t)
	cfg := quickRun(startServer(t))
	e, err := New(Config{URL: prom.WriteURL, Interval: time.Second, Labels: Labels{Scenario: "live-test", Target: "primary"}.For(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tick = e.Tick
	res, err := swarm.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background(), res); err != nil {
		t.Fatalf("%v\nprometheus log:\n%s", err, prom.Log())
	}
	st := e.Stats()
	t.Logf("exporter: %+v over %d seconds", st, len(res.Series))

	ctx := context.Background()
	sel := `{run_id="` + cfg.RunID + `",scenario="live-test",target="primary"}`
	scalar := func(q string) float64 {
		t.Helper()
		v, err := prom.Scalar(ctx, q, time.Time{})
		if err != nil {
			t.Fatalf("%v\nprometheus log:\n%s", err, prom.Log())
		}
		return v
	}
	tot := res.Ledger.Totals()
	delivery, err := res.Histogram(swarm.HistDelivery)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query string
		want  int64
	}{
		{MetricEvents + sel, res.Events.Events},
		{MetricPublishesOK + sel, res.Publish.OK},
		{MetricConnected + sel, res.Clients.Connected},
		{MetricLost + sel, tot.Lost},
		{MetricCredit + sel, tot.Credit},
		{MetricDebit + sel, tot.Debit},
		{"histogram_count(" + MetricDelivery + sel + ")", delivery.TotalCount()},
		{"histogram_count(" + MetricPublish + sel + ")", res.Publish.Attempted},
	} {
		if got := scalar(c.query); got != float64(c.want) {
			t.Errorf("%s = %v, want %d (the result file's)", c.query, got, c.want)
		} else {
			t.Logf("%s = %v, as in the result", c.query, got)
		}
	}
	if res.Events.Events == 0 || tot.Credit == 0 {
		t.Fatalf("the run delivered nothing: %+v", tot)
	}
	// Several points, not only the last request: the run was live.
	if n := scalar("count_over_time(" + MetricEvents + sel + "[10m])"); n < 4 {
		t.Errorf("%v samples of %s, want one per second of the run", n, MetricEvents)
	}
	for _, phase := range []string{"warm", "spike"} {
		if n := scalar(`count_over_time(` + MetricPhase + `{run_id="` + cfg.RunID + `",phase="` + phase + `"}[10m])`); n < 1 {
			t.Errorf("phase %s never exported", phase)
		}
	}

	// The staleness marker took the phases left behind away: only the
	// last one is current.
	phases, err := prom.Query(ctx, MetricPhase+`{run_id="`+cfg.RunID+`"}`, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(phases) != 1 || phases[0].Metric["phase"] != swarm.PhaseDrain {
		t.Errorf("current phases %v, want drain alone", phases)
	}

	// Both estimates of the p99 fall in the native bucket that holds the
	// 99th percentile's rank, [b, b·2^(1/8)) at schema 3 (factor 1.1), so
	// their ratio is within 2^(1/8) (9.05%), give or take the
	// HdrHistogram's own resolution (0.1% at 3 significant figures).
	want := float64(delivery.ValueAtQuantile(99)) / 1e6
	got := scalar("histogram_quantile(0.99, " + MetricDelivery + sel + ")")
	ratio := got / want
	bound := math.Pow(2, 1.0/8) * 1.001
	t.Logf("p99: Prometheus %.6f s, result file %.6f s (ratio %.4f, bound %.4f)", got, want, ratio, bound)
	if ratio > bound || ratio < 1/bound {
		t.Errorf("histogram_quantile p99 %.6f s vs the result's %.6f s: ratio %.4f outside [%.4f, %.4f]", got, want, ratio, 1/bound, bound)
	}
}
