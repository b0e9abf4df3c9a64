package resultfile

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/ledger"
)

// syntheticResult builds a part's result from recorded values, as Run
// does: latencies into histograms and series, deliveries into the ledger.
func syntheticResult(runID string, part Part, lat []int64, owed map[string]int64, got map[string]int64) *Result {
	h := NewHistogram()
	sec := NewHistogram()
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
		Histograms: map[string]string{HistDelivery: EncodeHistogram(h)},
		Clients:    Totals{Planned: int64(len(lat))}, Events: EventCounts{Events: int64(len(lat))},
		Series: []Second{{T: at.Unix(), Events: int64(len(lat)), Histograms: map[string]string{HistDelivery: EncodeHistogram(sec)}}},
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
	big := syntheticResult("run1", Part{Index: 0, Count: 1}, all, map[string]int64{"a": 30, "b": 60}, map[string]int64{"a": 29, "b": 60})
	var results []*Result
	owed := []map[string]int64{{"a": 10}, {"a": 20, "b": 15}, {"b": 45}}
	got := []map[string]int64{{"a": 10}, {"a": 19, "b": 15}, {"b": 45}}
	for i, p := range parts {
		results = append(results, syntheticResult("run1", Part{Index: i, Count: 3}, p, owed[i], got[i]))
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
	if merged.Series[0].Events != int64(len(all)) || merged.Summary[HistDelivery].P99 != Summarise(want).P99 {
		t.Errorf("series %+v, summary %+v", merged.Series[0], merged.Summary[HistDelivery])
	}
	// Refusals.
	other := syntheticResult("run2", Part{Index: 1, Count: 3}, nil, nil, nil)
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
	good := writeResult(t, syntheticResult("r", Part{Index: 0, Count: 1}, []int64{5, 7, 900}, map[string]int64{"a": 3}, map[string]int64{"a": 3}))
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
	f.Add(writeResult(f, syntheticResult("r", Part{Index: 0, Count: 1}, []int64{5, 7, 900}, map[string]int64{"a": 3}, map[string]int64{"a": 2})))
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
