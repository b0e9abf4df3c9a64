package swarm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/ledger"
)

// syntheticResult builds a part's result from recorded values, as Run
// does: latencies into histograms and series, deliveries into the ledger.
func syntheticResult(runID string, part Part, lat []int64, owed map[string]int64, got map[string]int64) *Result {
	h := newHistogram()
	sec := newHistogram()
	for _, v := range lat {
		_ = h.RecordValue(v)
		_ = sec.RecordValue(v)
	}
	l := ledger.New(time.Second)
	at := time.Unix(1_800_000_000, 0)
	for ch, n := range owed {
		l.Credit(ch, at, n)
	}
	for ch, n := range got {
		l.Debit(ch, at, n)
	}
	for ch, n := range owed {
		if lost := n - got[ch]; lost > 0 {
			l.Apply(ch, at, ledger.Counts{Lost: lost})
		}
	}
	r := &Result{
		Schema: Schema, RunID: runID, Parts: []PartInfo{{Part: part}}, Ledger: l,
		Histograms: map[string]string{HistDelivery: encodeHistogram(h)},
		Clients:    Totals{Planned: int64(len(lat))}, Events: EventCounts{Events: int64(len(lat))},
		Series: []Second{{T: at.Unix(), Events: int64(len(lat)), Histograms: map[string]string{HistDelivery: encodeHistogram(sec)}}},
		Errors: map[string]int64{},
	}
	return r
}

func TestMergeEqualsOneBigRun(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var all []int64
	parts := make([][]int64, 3)
	for i := range 30_000 {
		v := 1 + rng.Int64N(5_000_000)
		all = append(all, v)
		parts[i%3] = append(parts[i%3], v)
	}
	big := syntheticResult("run1", Part{0, 1}, all, map[string]int64{"a": 30, "b": 60}, map[string]int64{"a": 29, "b": 60})
	var results []*Result
	owed := []map[string]int64{{"a": 10}, {"a": 20, "b": 15}, {"b": 45}}
	got := []map[string]int64{{"a": 10}, {"a": 19, "b": 15}, {"b": 45}}
	for i, p := range parts {
		results = append(results, syntheticResult("run1", Part{i, 3}, p, owed[i], got[i]))
	}
	merged, err := Merge(results...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := big.Histogram(HistDelivery)
	gotH, _ := merged.Histogram(HistDelivery)
	if !want.Equals(gotH) {
		t.Error("merged histogram differs from the one big run's")
	}
	if merged.Ledger.Totals() != big.Ledger.Totals() {
		t.Errorf("merged ledger %+v, want %+v", merged.Ledger.Totals(), big.Ledger.Totals())
	}
	if lost := merged.Ledger.Totals().Lost; lost != 1 {
		t.Errorf("lost %d, want 1", lost)
	}
	if merged.Series[0].Events != int64(len(all)) || merged.Summary[HistDelivery].P99 != percentiles(want).P99 {
		t.Errorf("series %+v, summary %+v", merged.Series[0], merged.Summary[HistDelivery])
	}
	// Refusals.
	other := syntheticResult("run2", Part{1, 3}, nil, nil, nil)
	if _, err := Merge(results[0], other); !errors.Is(err, ErrResult) {
		t.Errorf("merging different runs: %v", err)
	}
	if _, err := Merge(results[0], results[0]); !errors.Is(err, ErrResult) {
		t.Errorf("merging a part twice: %v", err)
	}
}

func writeResult(t testing.TB, r *Result) []byte {
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadResultRejectsDamage(t *testing.T) {
	t.Parallel()
	good := writeResult(t, syntheticResult("r", Part{0, 1}, []int64{5, 7, 900}, map[string]int64{"a": 3}, map[string]int64{"a": 3}))
	if _, err := ReadResult(bytes.NewReader(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for name, data := range map[string][]byte{
		"truncated":    good[:len(good)/2],
		"empty":        nil,
		"edited count": bytes.Replace(good, []byte(`"planned": 3`), []byte(`"planned": 4`), 1),
		"other schema": bytes.Replace(good, []byte(Schema), []byte("darktime.swarm/v0"), 1),
		"extra field":  bytes.Replace(good, []byte(`"schema"`), []byte(`"x": 1, "schema"`), 1),
		"trailing":     append(append([]byte{}, good...), []byte(`{}`)...),
	} {
		if _, err := ReadResult(bytes.NewReader(data)); !errors.Is(err, ErrResult) {
			t.Errorf("%s: err %v, want ErrResult", name, err)
		}
	}
}

func FuzzReadResult(f *testing.F) {
	f.Add(writeResult(f, syntheticResult("r", Part{0, 1}, []int64{5, 7, 900}, map[string]int64{"a": 3}, map[string]int64{"a": 2})))
	f.Add([]byte(`{"schema":"darktime.swarm/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What was accepted writes back and reads again, and merges.
		again, err := ReadResult(bytes.NewReader(writeResult(t, r)))
		if err != nil {
			t.Fatalf("accepted result does not round-trip: %v", err)
		}
		if _, err := Merge(again); err != nil && !errors.Is(err, ErrResult) {
			t.Fatalf("merge: %v", err)
		}
	})
}

func FuzzTemplate(f *testing.F) {
	for _, p := range builtinProfiles {
		f.Add(p.Subscribe, p.Publish.URL, p.Publish.Body, p.Extract.Seq, p.Extract.TS, "Content-Type: text/plain")
	}
	f.Add("{target}/s?c={channel}", "{target}/p/{channel}", "seq={seq}&ts={ts}{payload}", "seq=", "ts=", "X: {channel}")
	f.Add("{target}/{nope}", "{{", "{seq}{ts}", "", "", ":")
	f.Add("{target}/sub/{channels}?uid={client}", "{target}/pub?id={channel}", defaultBody, `"seq":`, `"ts":`, "X-Client: {channel}")
	f.Add("{target}/sub/{channel}", "{target}/pub?id={channel}&u={client}", "{seq} {ts} {client}", "", " ", "X: {client}") // subscribe only
	f.Fuzz(func(t *testing.T, sub, pubURL, body, seqMarker, tsMarker, header string) {
		p := Profile{Name: "fuzz", Subscribe: sub, Publish: PublishTemplate{URL: pubURL, Body: body, Headers: []string{header}},
			Extract: Extract{Seq: seqMarker, TS: tsMarker}}
		c, err := p.compile(false)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("error %v does not wrap ErrTemplate", err)
			}
			return
		}
		// A profile that compiles expands every placeholder. Whether its
		// markers read what the server delivers is checked at run time
		// (FuzzExtract covers the reading).
		v := values{target: "http://127.0.0.1:9", channel: "c_7", client: 3, seq: 99, ts: 1234567890, payload: 5}
		if strings.Contains(c.subscribe.expand(&v), "{client}") {
			t.Fatalf("placeholder left in %q", c.subscribe.expand(&v))
		}
		_, _, _, _ = c.extract(c.pubBody.append(nil, &v)) // must not panic
		if strings.Contains(c.pubURL.expand(&v), "{channel}") {
			t.Fatalf("placeholder left in %q", c.pubURL.expand(&v))
		}
	})
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"uniform", "zipf", "zipf:1.3", "one", "several:4"} {
		if _, err := ParseDistribution(s); err != nil {
			t.Errorf("ParseDistribution(%q): %v", s, err)
		}
	}
	for _, s := range []string{"zipf:0.5", "several:x", "pareto", "one:2"} {
		if _, err := ParseDistribution(s); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseDistribution(%q) = %v, want ErrConfig", s, err)
		}
	}
	for _, s := range []string{"constant", "linear:5", "sine:10s:3"} {
		if _, err := ParsePacing(s); err != nil {
			t.Errorf("ParsePacing(%q): %v", s, err)
		}
	}
	for _, s := range []string{"linear", "sine:10s", "burst"} {
		if _, err := ParsePacing(s); !errors.Is(err, ErrConfig) {
			t.Errorf("ParsePacing(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"none", "fixed:30s", "exp:10s", "uniform:1s-5s"} {
		if _, err := ParseLifetime(s); err != nil {
			t.Errorf("ParseLifetime(%q): %v", s, err)
		}
	}
	for _, s := range []string{"fixed:1ms", "uniform:5s-1s", "exp"} {
		if _, err := ParseLifetime(s); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseLifetime(%q) = %v", s, err)
		}
	}
}
