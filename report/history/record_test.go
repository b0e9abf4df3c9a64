package history

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/swarm/resultfile"
)

// cleanReport is report/testdata/clean.json's report with gates
// evaluated.
func cleanReport(t testing.TB, gates ...string) (*report.Report, []report.GateResult) {
	t.Helper()
	res, err := report.ReadResultFile(filepath.Join("..", "testdata", "clean.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := report.Build(report.Inputs{Results: []*resultfile.Result{res}})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := report.ParseGates(gates)
	if err != nil {
		t.Fatal(err)
	}
	results, err := r.Evaluate(gs)
	if err != nil {
		t.Fatal(err)
	}
	return r, results
}

func TestFromReport(t *testing.T) {
	t.Parallel()
	r, gates := cleanReport(t, "p99_delivery_ms < 0.001", "lost == 0")
	rec, err := FromReport(r, gates, Meta{Commit: "abc", Scenario: "smoke", Machine: testMachine})
	if err != nil {
		t.Fatal(err)
	}
	if rec.RunID != r.RunID || !rec.Time.Equal(r.Started) || rec.Commit != "abc" || rec.Scenario != "smoke" || rec.Machine != testMachine {
		t.Errorf("record %+v", rec)
	}
	if rec.Verdict != VerdictFail || len(rec.FailedGates) != 1 || rec.FailedGates[0] != "p99_delivery_ms < 0.001" {
		t.Errorf("verdict %s, failed %v; want fail, the p99 gate", rec.Verdict, rec.FailedGates)
	}
	// One definition of a metric: the record holds the report's.
	if len(rec.Metrics) != len(r.Metrics) || len(rec.Metrics) < 40 {
		t.Errorf("%d metrics, the report has %d", len(rec.Metrics), len(r.Metrics))
	}
	for _, name := range report.DefaultCompareMetrics {
		if v, err := r.Value(name); err == nil && rec.Metrics[name] != v {
			t.Errorf("%s: %v in the record, %v in the report", name, rec.Metrics[name], v)
		}
	}
	// Without a scenario the series has no name: an error that says what
	// to give.
	if _, err := FromReport(r, gates, Meta{}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "--scenario") {
		t.Errorf("no scenario: %v", err)
	}
	r.Interrupted = true
	if rec, _ := FromReport(r, gates, Meta{Scenario: "smoke"}); rec.Verdict != VerdictInterrupted {
		t.Errorf("an interrupted run's verdict is %s", rec.Verdict)
	}
	r.Interrupted = false
	r.Scenario = &report.Scenario{Name: "from-the-run"}
	if rec, _ := FromReport(r, nil, Meta{}); rec.Scenario != "from-the-run" || rec.Verdict != VerdictPass {
		t.Errorf("scenario %q, verdict %s; want the report's scenario and pass", rec.Scenario, rec.Verdict)
	}
	st, _ := OpenJSONL(t.TempDir(), Options{})
	if _, err := AppendReport(context.Background(), st, r, nil, Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := AppendReport(context.Background(), st, r, nil, Meta{}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("the same report twice: %v, want ErrDuplicate", err)
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	good := lines(t, synthetic("s", 1, 1, 0, map[string]level{"lost": flat(0)})...)
	good = strings.TrimSuffix(good, "\n")
	if _, err := ParseRecord([]byte(good)); err != nil {
		t.Fatalf("a good record: %v", err)
	}
	// A later darktime's extra field is ignored.
	if _, err := ParseRecord([]byte(strings.Replace(good, `{"schema"`, `{"added_later":{"x":1},"schema"`, 1))); err != nil {
		t.Errorf("an unknown field: %v", err)
	}
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "EOF"},
		{"not an object", "[1,2]", "cannot unmarshal"},
		{"two values", good + " " + good, "data after the record"},
		{"a trailing bracket", good + "]", "data after the record"},
		{"a string metric", strings.Replace(good, `"lost":0`, `"lost":"0"`, 1), "cannot unmarshal"},
		{"no metrics", strings.Replace(good, `"metrics":{"lost":0}`, `"metrics":null`, 1), "no metrics"},
		{"bad verdict", strings.Replace(good, `"verdict":"pass"`, `"verdict":"ok"`, 1), `verdict "ok"`},
		{"no time", strings.Replace(good, `"time":"2026-01-01T06:00:00Z"`, `"time":"0001-01-01T00:00:00Z"`, 1), "no time"},
		{"a NUL", strings.Replace(good, `"scenario":"s"`, `"scenario":"s\u0000"`, 1), "NUL"},
		{"too big", good + strings.Repeat(" ", MaxRecordBytes), "bytes, over"},
	} {
		_, err := ParseRecord([]byte(c.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMalformed saying %q", c.name, err, c.want)
		}
	}
}

// FuzzParseRecord: whatever ParseRecord accepts marshals and parses back
// to the same record; nothing panics.
func FuzzParseRecord(f *testing.F) {
	for _, r := range goldenHistory()[:3] {
		b, _ := r.Marshal()
		f.Add(b)
	}
	f.Add([]byte(`{"schema":"darktime.history/v1","run_id":"r","time":"2026-01-01T00:00:00Z","scenario":"s","verdict":"fail","failed_gates":["lost == 0"],"metrics":{"lost":1e308}}`))
	f.Add([]byte(`{"schema":"darktime.history/v1","metrics":{"a":-0}}`))
	f.Add([]byte(strings.Repeat("[", 10000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("an error that is not ErrMalformed: %v", err)
			}
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted %q but cannot marshal it: %v", data, err)
		}
		again, err := ParseRecord(b)
		if err != nil {
			t.Fatalf("%q does not parse back: %v", b, err)
		}
		b2, _ := again.Marshal()
		if string(b) != string(b2) {
			t.Fatalf("round trip:\n%s\n%s", b, b2)
		}
	})
}

func TestBase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := OpenJSONL(t.TempDir(), Options{})
	recs := synthetic("smoke", 15, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20)})
	recs[13].Verdict = VerdictInterrupted
	for _, r := range recs {
		if err := st.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	base, series, err := Base(ctx, st, BaseSelect{Runs: 4, Exclude: []string{"run-015"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range base {
		ids = append(ids, b.RunID)
	}
	if series != "smoke" || strings.Join(ids, " ") != "run-010 run-011 run-012 run-013" {
		t.Errorf("base of %s: %v; want run-010..013 (014 interrupted, 015 the candidate)", series, ids)
	}
	if v, err := base[0].Value("p99_delivery_ms"); err != nil || v != recs[9].Metrics["p99_delivery_ms"] {
		t.Errorf("the base's p99: %v, %v", v, err)
	}
	// Two series and none named: the error lists them.
	other := recs[0]
	other.Scenario, other.RunID = "other", "o-1"
	if err := st.Append(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Base(ctx, st, BaseSelect{}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "smoke, other") {
		t.Errorf("two series: %v", err)
	}
	if _, _, err := Base(ctx, st, BaseSelect{Scenario: "none"}); !errors.Is(err, ErrInput) {
		t.Errorf("no such scenario: %v", err)
	}
	if _, _, err := Base(ctx, st, BaseSelect{Scenario: "other", Exclude: []string{"o-1"}}); !errors.Is(err, ErrInput) {
		t.Errorf("only the candidate in the series: %v", err)
	}
}
