package report

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/swarm/resultfile"
)

// ramp is a synthetic ramp run on one node: connections grow by 500 a
// second, each gets one event a second, and p99 latency grows with the
// cube of the load, passing 50 ms at 4,000 connections.
func ramp(t testing.TB, seconds int) *resultfile.Result {
	t.Helper()
	total := newHist()
	l := ledger.New(time.Second)
	r := &resultfile.Result{
		Schema: resultfile.Schema, RunID: "ramp", Parts: []resultfile.PartInfo{{Part: resultfile.Part{Index: 0, Count: 1}}},
		Profile: "darktime", Target: "http://127.0.0.1:8080",
		Started: time.Unix(t0, 0).UTC(), Ended: time.Unix(t0+int64(seconds), 0).UTC(),
		Errors: map[string]int64{}, Summary: map[string]resultfile.Percentiles{},
	}
	for sec := range seconds {
		open := int64(500 * (sec + 1))
		h := newHist()
		base := 2000 + 50_000*float64(open*open*open)/(4000*4000*4000) // µs
		for k := range open {
			us := int64(base * (0.5 + float64(k%100)/100*0.52))
			_ = h.RecordValue(us)
		}
		total.Merge(h)
		at := time.Unix(t0+int64(sec), 0)
		l.Apply("ch0", at, ledger.Counts{Credit: open, Debit: open})
		r.Series = append(r.Series, resultfile.Second{T: at.Unix(), Open: open, Connects: 500, Events: open, PublishesOK: 1,
			Histograms: map[string]string{resultfile.HistDelivery: encode(t, h)}})
		r.Events.Events += open
		r.Publish.Attempted++
		r.Publish.OK++
	}
	r.Clients.Planned = int64(500 * seconds)
	r.Clients.Connected, r.Clients.Connects = r.Clients.Planned, r.Clients.Planned
	r.Histograms = map[string]string{resultfile.HistDelivery: encode(t, total)}
	r.Ledger = l
	return r
}

// TestExampleResultFiles keeps the result files in testdata/ that the
// README's examples and the CLI checks use: a faulty run in two parts, a
// clean run, three base and three slower candidate runs, and a ramp.
func TestExampleResultFiles(t *testing.T) {
	t.Parallel()
	files := map[string]*resultfile.Result{
		"run.part0.json": synth{runID: "golden", channels: 3, seconds: 6, faulty: true}.part(t, 0, 2),
		"run.part1.json": synth{runID: "golden", channels: 3, seconds: 6, faulty: true}.part(t, 1, 2),
		"clean.json":     synth{runID: "clean", channels: 3, seconds: 4}.part(t, 0, 1),
		"ramp.json":      ramp(t, 12),
	}
	for i := range 3 {
		files[fmt.Sprintf("base-%d.json", i+1)] = synth{runID: fmt.Sprintf("base-%d", i+1), channels: 2, seconds: 3, slowMs: int64(i % 2)}.part(t, 0, 1)
		files[fmt.Sprintf("cand-%d.json", i+1)] = synth{runID: fmt.Sprintf("cand-%d", i+1), channels: 2, seconds: 3, slowMs: 10 + int64(i%2)}.part(t, 0, 1)
	}
	for name, r := range files {
		var b bytes.Buffer
		if err := r.Write(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, name, b.Bytes())
		if _, err := ReadResultFile(filepath.Join("testdata", name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	build := func(s synth) *Report {
		r, err := Build(Inputs{Results: []*resultfile.Result{s.part(t, 0, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var base, same, slow []*Report
	for i := range 3 {
		base = append(base, build(synth{runID: fmt.Sprintf("b%d", i), channels: 2, seconds: 3, slowMs: int64(i % 2)}))
		same = append(same, build(synth{runID: fmt.Sprintf("s%d", i), channels: 2, seconds: 3, slowMs: int64((i + 1) % 2)}))
		slow = append(slow, build(synth{runID: fmt.Sprintf("c%d", i), channels: 2, seconds: 3, slowMs: 10 + int64(i%2)}))
	}
	c, err := Compare(base, same, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Err(); err != nil {
		t.Errorf("runs within noise flagged: %v", err)
	}
	c, err = Compare(base, slow, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var reg *Regression
	if err := c.Err(); err == nil || !asRegression(err, &reg) {
		t.Fatalf("10 ms slower candidate not flagged: %+v", c.Metrics)
	}
	want := map[string]bool{"p50_delivery_ms": true, "p99_delivery_ms": true, "mean_delivery_ms": true}
	for _, m := range c.Regressions {
		delete(want, m)
	}
	if len(want) > 0 {
		t.Errorf("regressions %v miss %v", c.Regressions, want)
	}
	var b bytes.Buffer
	if err := c.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.txt", b.Bytes())
	if _, err := Compare(base, []*Report{base[0]}, CompareOptions{}); err == nil {
		t.Error("a run on both sides should be refused")
	}
	if _, err := Compare(base, slow, CompareOptions{Metrics: []string{"server_balance"}}); err == nil {
		t.Error("an explicit metric the runs lack should be refused")
	}
}

func asRegression(err error, target **Regression) bool {
	r, ok := err.(*Regression)
	*target = r
	return ok
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	r, err := Build(Inputs{Results: []*resultfile.Result{ramp(t, 12)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Plan(r, CapacityOptions{SLOP99Ms: 50, PeakUsers: 100_000, HotRate: 2, HotShare: 0.5, Headroom: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// p99 passes 50 ms between 3,500 and 4,000 connections.
	if c.Knee.LowerBound || c.Knee.Subscribers != 3500 || c.Knee.DeliveriesPerS != 3500 {
		t.Errorf("knee %+v, want 3500 subscribers and deliveries/s", c.Knee)
	}
	// 100,000 users / (3,500 × 0.5) = 58 nodes; 2 × 100,000 × 0.5 = 100,000 deliveries/s / 1,750 = 58.
	if c.NodesForConnections != 58 || c.NodesForDeliveries != 58 || c.Nodes != 58 {
		t.Errorf("plan %+v", c)
	}
	var b bytes.Buffer
	if err := c.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "capacity.txt", b.Bytes())
	if _, err := Plan(r, CapacityOptions{SLOP99Ms: 0.001, PeakUsers: 1, HotRate: 1}); err == nil {
		t.Error("an SLO no second kept should be an error")
	}
	if c, err := Plan(r, CapacityOptions{SLOP99Ms: 1e6, PeakUsers: 1, HotRate: 1}); err != nil || !c.Knee.LowerBound {
		t.Errorf("an SLO never broken: %+v, %v; want a lower bound", c, err)
	}
}
