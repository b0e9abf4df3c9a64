package queue

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	q, _ := newTestQueue(t, Config{Name: "metrics", Registerer: reg, MaxLen: 3})
	ctx := testCtx(t)
	mustEnqueue(t, q, "a", "b", "c")
	if _, err := q.Enqueue(ctx, []byte("d")); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	jobs := mustClaim(t, q, "w", 2)
	if _, err := q.Ack(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := q.Fail(ctx, jobs[1], errors.New("no"), false); err != nil {
		t.Fatal(err)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if !hasLabel(m, "queue", "metrics") {
				t.Errorf("%s lacks the queue label", f.GetName())
			}
			got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"darktime_queue_enqueued_total":      3,
		"darktime_queue_rejected_total":      1,
		"darktime_queue_acked_total":         1,
		"darktime_queue_failed_total":        1,
		"darktime_queue_dead_lettered_total": 1,
		"darktime_queue_retried_total":       0,
		"darktime_queue_replayed_total":      0,
		"darktime_queue_redis_errors_total":  0,
		"darktime_queue_depth":               1,
		"darktime_queue_in_flight":           0,
		"darktime_queue_dead":                1,
		"darktime_queue_stats_up":            1,
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	// Registering a second queue of the same name is refused, not a panic.
	if _, err := New(Config{Client: q.client, Name: "metrics", Registerer: reg}); err == nil {
		t.Error("duplicate registration: want error")
	}
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestCollectorPartitioned: the gauges of a partitioned queue are the sums
// over its partitions.
func TestCollectorPartitioned(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	q, _ := newTestQueue(t, Config{Name: "parts", Partitions: 4, Registerer: reg})
	if _, fresh, err := q.EnqueueKeyed(testCtx(t), objectJobs(20, 0), 0); err != nil || fresh != 20 {
		t.Fatalf("%d %v", fresh, err)
	}
	jobs := mustClaim(t, q, "w", 5)
	if len(jobs) != 5 {
		t.Fatalf("claimed %d", len(jobs))
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, v := range map[string]float64{"darktime_queue_depth": 15, "darktime_queue_in_flight": 5, "darktime_queue_enqueued_total": 20, "darktime_queue_stats_up": 1} {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}
