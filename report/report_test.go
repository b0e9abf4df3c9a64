package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/darktime/darktime/server/statsfile"
	"github.com/darktime/darktime/shadow/ledgerfile"
	"github.com/darktime/darktime/swarm/resultfile"
)

func mustStats(t *testing.T, name string) statsfile.Stats {
	t.Helper()
	st, err := ReadStatsFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// faultyReport is the golden run: three channels, six seconds, three
// deliveries lost and one duplicated, with server snapshots, a shadow
// ledger and the usual CI gates.
func faultyReport(t *testing.T) *Report {
	t.Helper()
	s := synth{runID: "golden", channels: 3, seconds: 6, faulty: true}
	led, err := ReadShadowFile(filepath.Join("testdata", "shadow.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(Inputs{
		Results:     []*resultfile.Result{s.part(t, 0, 2), s.part(t, 1, 2)},
		StatsBefore: []statsfile.Stats{mustStats(t, "stats_before.json")},
		StatsAfter:  []statsfile.Stats{mustStats(t, "stats_after.json")},
		Shadow:      []ledgerfile.Report{led}, ShadowNames: []string{"shadow.json"},
	})
	if err != nil {
		t.Fatal(err)
	}
	gates, err := ParseGates([]string{"p99_delivery_ms < 50", "lost == 0", "duplicated == 0", "error_rate < 0.001", "server_dropped <= 3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Evaluate(gates); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGoldenOutputs(t *testing.T) {
	t.Parallel()
	r := faultyReport(t)
	for _, out := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"report.txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
		{"report.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
		{"junit.xml", func(b *bytes.Buffer) error { return r.WriteJUnit(b) }},
	} {
		var b bytes.Buffer
		if err := out.write(&b); err != nil {
			t.Fatal(err)
		}
		golden(t, out.name, b.Bytes())
	}
}

func TestReconciliationFindsImbalances(t *testing.T) {
	t.Parallel()
	r := faultyReport(t)
	byName := map[string]LedgerReport{}
	for _, l := range r.Ledgers {
		byName[l.Source] = l
	}
	sw := byName["swarm"]
	if sw.Balanced || sw.Kinds["lost"] != 3 || sw.Kinds["duplicated"] != 1 || sw.Balance != 2 {
		t.Errorf("swarm ledger %+v", sw)
	}
	if len(sw.Windows) != 2 || sw.Windows[0].Scope != "ch1" || sw.Windows[0].Window != t0+3 || sw.Windows[0].Kinds["lost"] != 3 {
		t.Errorf("swarm imbalances %+v, want ch1 at second 3 first", sw.Windows)
	}
	fan := byName["server_fanout"]
	if fan.Balanced || fan.Balance != 1 || fan.Kinds["dropped_slow_consumer"] != 3 || fan.Kinds["queued"] != 1 {
		t.Errorf("server ledger %+v", fan)
	}
	if len(fan.ByScope) == 0 || fan.ByScope[0].Scope != "ch1@n1" {
		t.Errorf("server imbalance should sit on ch1@n1: %+v", fan.ByScope)
	}
	if wr := byName["server_written"]; !wr.Balanced || wr.Credit != 358 {
		t.Errorf("written vs received %+v", wr)
	}
	if sh := byName["shadow_candidate"]; sh.Balanced || sh.Kinds["lost"] != 3 || sh.ByScope[0].Scope != "bucket 42" && sh.ByScope[0].Scope != "channel ch1" {
		t.Errorf("shadow ledger %+v", sh)
	}
	// The chart's ledger line shows the loss in its second.
	for _, p := range r.Series {
		if want := map[int64]int64{t0 + 3: 3, t0 + 4: -1}[p.T]; p.LedgerBalance != want {
			t.Errorf("second %d: ledger balance %d, want %d", p.T, p.LedgerBalance, want)
		}
	}
}

func TestGates(t *testing.T) {
	t.Parallel()
	clean, err := Build(Inputs{Results: []*resultfile.Result{synth{runID: "clean", channels: 3, seconds: 4}.part(t, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	faulty := faultyReport(t)
	gates, err := ParseGates([]string{"p99_delivery_ms < 50", "lost == 0", "duplicated == 0", "error_rate < 0.001"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := clean.Evaluate(gates)
	if err != nil {
		t.Fatal(err)
	}
	if err := Failures(res); err != nil {
		t.Errorf("a clean run failed its gates: %v", err)
	}
	res, err = faulty.Evaluate(gates)
	if err != nil {
		t.Fatal(err)
	}
	var gf *GateFailure
	if err := Failures(res); !errors.As(err, &gf) || len(gf.Failed) != 4 {
		t.Fatalf("faulty run: %v, want 4 failed gates (p99, lost, duplicated, and the default unexplained == 0)", err)
	}
	if msg := gf.Error(); !strings.Contains(msg, "FAIL lost == 0: measured 3") || !strings.Contains(msg, "FAIL p99_delivery_ms < 50: measured 80") {
		t.Errorf("failure lines should name the measured values:\n%s", msg)
	}
	// A gate on a metric the inputs do not give is bad input, not a pass.
	g, _ := ParseGate("server_balance == 0")
	if _, err := clean.Evaluate([]Gate{g}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "--stats-before") {
		t.Errorf("gate without stats: %v", err)
	}
}

func TestParseGate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Gate
		bad  string
	}{
		{in: "p99_delivery_ms < 50", want: Gate{Expr: "p99_delivery_ms < 50", Metric: "p99_delivery_ms", Op: "<", Threshold: 50}},
		{in: "  lost==0 ", want: Gate{Expr: "lost == 0", Metric: "lost", Op: "==", Threshold: 0}},
		{in: "error_rate<=1e-3", want: Gate{Expr: "error_rate <= 1e-3", Metric: "error_rate", Op: "<=", Threshold: 0.001}},
		{in: "deliveries_per_s >= 1000", want: Gate{Expr: "deliveries_per_s >= 1000", Metric: "deliveries_per_s", Op: ">=", Threshold: 1000}},
		{in: "p99_latency_ms < 50", bad: "unknown metric"},
		{in: "lost = 0", bad: "unknown operator"},
		{in: "lost =< 0", bad: "unknown operator"},
		{in: "lost < fifty", bad: "not a finite"},
		{in: "lost < NaN", bad: "not a finite"},
		{in: "lost < 0x10", bad: "not a finite"},
		{in: "< 5", bad: "no metric"},
		{in: "lost 0", bad: "want METRIC OP NUMBER"},
		{in: "Lost < 1", bad: "lower-case"},
	} {
		g, err := ParseGate(tc.in)
		if tc.bad != "" {
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("ParseGate(%q) = %v, want an error with %q", tc.in, err, tc.bad)
			}
			continue
		}
		if err != nil || g != tc.want {
			t.Errorf("ParseGate(%q) = %+v, %v; want %+v", tc.in, g, err, tc.want)
		}
	}
}

func TestGateFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, bad string }{
		{"list.yaml", "- p99_delivery_ms < 50\n- lost == 0\n", ""},
		{"obj.yaml", "gates:\n  - p99_delivery_ms < 50\n  - lost == 0\n", ""},
		{"obj.json", `{"gates": ["p99_delivery_ms < 50", "lost == 0"]}`, ""},
		{"typo.yaml", "gate:\n  - lost == 0\n", "want a list"},
		{"empty.yaml", "gates: []\n", "no gates"},
		{"unknown.yaml", "- latency < 3\n", "unknown metric"},
	} {
		gates, err := parseGateFile(tc.name, []byte(tc.body))
		if tc.bad != "" {
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.bad)
			}
			continue
		}
		if err != nil || len(gates) != 2 {
			t.Errorf("%s: %v, %v", tc.name, gates, err)
		}
	}
}

// TestMergeEqualsOneRun checks the report of a run's parts against the
// report of the same run recorded as one part.
func TestMergeEqualsOneRun(t *testing.T) {
	t.Parallel()
	s := synth{runID: "merge", channels: 5, seconds: 5, faulty: true}
	one, err := Build(Inputs{Results: []*resultfile.Result{s.part(t, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := Build(Inputs{Results: []*resultfile.Result{s.part(t, 2, 3), s.part(t, 0, 3), s.part(t, 1, 3)}})
	if err != nil {
		t.Fatal(err)
	}
	one.Parts = parts.Parts
	a, _ := json.Marshal(one)
	b, _ := json.Marshal(parts)
	if !bytes.Equal(a, b) {
		t.Errorf("report of 3 parts differs from the report of one run:\n%s\n%s", a, b)
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	a := synth{runID: "a", channels: 2, seconds: 2}
	b := synth{runID: "b", channels: 2, seconds: 2}
	if _, err := Build(Inputs{Results: []*resultfile.Result{a.part(t, 0, 2), b.part(t, 1, 2)}}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "different runs") {
		t.Errorf("mixed runs: %v", err)
	}
	if _, err := Build(Inputs{Results: []*resultfile.Result{a.part(t, 0, 2), a.part(t, 0, 2)}}); !errors.Is(err, ErrInput) {
		t.Errorf("a part twice: %v", err)
	}
	if _, err := Build(Inputs{}); !errors.Is(err, ErrInput) {
		t.Errorf("no results: %v", err)
	}
	// Truncated and edited files.
	path := writeResult(t, a.part(t, 0, 1))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"truncated.json": data[:len(data)/2],
		"edited.json":    bytes.Replace(data, []byte(`"profile": "darktime"`), []byte(`"profile": "nchan"`), 1),
		"empty.json":     nil,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadResultFile(p); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v, want ErrInput", name, err)
		}
	}
	if _, err := ReadResultFile(path); err != nil {
		t.Errorf("the intact file: %v", err)
	}
	// Stats: mismatched nodes, restarts, truncation.
	before, after := mustStats(t, "stats_before.json"), mustStats(t, "stats_after.json")
	restarted := after
	restarted.StartedAt = restarted.StartedAt.Add(1)
	other := after
	other.Node = "n2"
	for name, in := range map[string]Inputs{
		"restart":  {StatsBefore: []statsfile.Stats{before}, StatsAfter: []statsfile.Stats{restarted}},
		"other":    {StatsBefore: []statsfile.Stats{before}, StatsAfter: []statsfile.Stats{other}},
		"unpaired": {StatsBefore: []statsfile.Stats{before}},
		"swapped":  {StatsBefore: []statsfile.Stats{after}, StatsAfter: []statsfile.Stats{before}},
	} {
		in.Results = []*resultfile.Result{a.part(t, 0, 1)}
		if _, err := Build(in); !errors.Is(err, ErrInput) {
			t.Errorf("stats %s: %v, want ErrInput", name, err)
		}
	}
	if _, err := ReadStats(strings.NewReader(`{"node":"n1","started_at":"2027-01-15T07:55:00Z","totals":{"fanned_out":1}`)); !errors.Is(err, ErrInput) {
		t.Errorf("truncated stats: %v", err)
	}
	if _, err := ReadStats(strings.NewReader(`{"node":"n1","started_at":"2027-01-15T07:55:00Z","totals":{"fanned_out":1},"channels":{},"balance":0}`)); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "balance") {
		t.Errorf("stats with a wrong balance: %v", err)
	}
	if _, err := ReadStatsFile(filepath.Join("testdata", "shadow.json")); !errors.Is(err, ErrInput) {
		t.Errorf("a shadow ledger read as stats: %v", err)
	}
	if _, err := ReadShadow(strings.NewReader(`{"schema":"darktime.shadow/v2","targets":[]}`)); !errors.Is(err, ErrInput) {
		t.Errorf("shadow of another schema: %v", err)
	}
	if _, err := ReadShadow(strings.NewReader(`{"schema":"darktime.shadow/v1","targets":[{"name":"c","totals":{"primary":2,"candidate":1,"balance":0}}]}`)); !errors.Is(err, ErrInput) {
		t.Errorf("shadow with a wrong balance: %v", err)
	}
}

// TestServerLedgerSeveralNodes pairs snapshots by node and names the node
// whose copies are unaccounted for.
func TestServerLedgerSeveralNodes(t *testing.T) {
	t.Parallel()
	b1, a1 := mustStats(t, "stats_before.json"), mustStats(t, "stats_after.json")
	b2, a2 := b1, b1 // node n2 did nothing during the run
	b2.Node, a2.Node = "n2", "n2"
	r, err := Build(Inputs{
		Results:     []*resultfile.Result{synth{runID: "nodes", channels: 3, seconds: 6, faulty: true}.part(t, 0, 1)},
		StatsBefore: []statsfile.Stats{b2, b1}, StatsAfter: []statsfile.Stats{a1, a2},
	})
	if err != nil {
		t.Fatal(err)
	}
	fan := r.Ledgers[2] // after swarm and publish
	if fan.Source != "server_fanout" || fan.Balance != 1 || fan.ByScope[0].Scope != "node n1" {
		t.Errorf("server ledger over two nodes: %+v", fan)
	}
}

// TestMergeShadow: the ledgers of a fleet's instances are reported as
// their exact sum, one ledger; ledgers that do not merge are bad input.
func TestMergeShadow(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join("testdata", "shadow.json")
	one, err := Files{}.Inputs(ctx, Paths{Shadow: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Files{}.Inputs(ctx, Paths{Shadow: []string{path, path}, MergeShadow: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(two.Shadow) != 1 || two.ShadowNames[0] != "shadow fleet (2 instances)" {
		t.Fatalf("merged into %d ledgers named %v, want one fleet ledger", len(two.Shadow), two.ShadowNames)
	}
	want, err := ledgerfile.Merge(one.Shadow[0], one.Shadow[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(two.Shadow[0], want) {
		t.Errorf("the fleet ledger is not ledgerfile.Merge of its parts")
	}
	if got, part := two.Shadow[0].Targets[0].Totals.Primary, one.Shadow[0].Targets[0].Totals.Primary; got != 2*part || part == 0 {
		t.Errorf("fleet primary total %d, want twice %d", got, part)
	}
	dir := t.TempDir()
	other := filepath.Join(dir, "other.json")
	o := one.Shadow[0]
	o.SettleMS++ // another proxy's settings: its accounts do not add up with these
	data, _ := json.Marshal(o)
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (Files{}).Inputs(ctx, Paths{Shadow: []string{path, other}, MergeShadow: true}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "--merge-shadow") {
		t.Errorf("ledgers of different settings: err = %v, want ErrInput naming --merge-shadow", err)
	}
}
