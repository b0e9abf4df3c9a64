package ledger

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestBalanceAndWindows(t *testing.T) {
	t.Parallel()
	l := New(time.Second)
	t0 := time.Unix(1000, 0)
	l.Credit("a", t0, 10)
	l.Debit("a", t0.Add(300*time.Millisecond), 10)
	l.Credit("a", t0.Add(1500*time.Millisecond), 5)
	l.Debit("a", t0.Add(1600*time.Millisecond), 4)
	l.Apply("a", t0.Add(1600*time.Millisecond), Counts{Lost: 1})
	l.Credit("b", t0, 3)
	l.Debit("b", t0, 3)
	if tot := l.Totals(); tot.Balance() != 1 || tot.Credit != 18 || tot.Lost != 1 {
		t.Fatalf("totals %+v", tot)
	}
	un := l.Unbalanced()
	if len(un) != 1 || un[0].Scope != "a" || un[0].Window != 1001 || un[0].Balance() != 1 {
		t.Fatalf("unbalanced %+v", un)
	}
	if by := l.ByScope(); by["b"].Balance() != 0 || by["a"].Credit != 15 {
		t.Fatalf("by scope %+v", by)
	}
}

func TestMergeEqualsOneBigLedger(t *testing.T) {
	t.Parallel()
	big, parts := New(time.Second), []*Ledger{New(time.Second), New(time.Second), New(time.Second)}
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				at := time.Unix(int64(j%7), 0)
				scope := string(rune('a' + (i+j)%5))
				p.Credit(scope, at, 2)
				p.Debit(scope, at, 1)
				big.Credit(scope, at, 2)
				big.Debit(scope, at, 1)
			}
		}()
	}
	wg.Wait()
	merged := New(time.Second)
	for _, p := range parts {
		if err := merged.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := json.Marshal(merged)
	b, _ := json.Marshal(big)
	if string(a) != string(b) {
		t.Fatalf("merged ledger differs from the big one:\n%s\n%s", a, b)
	}
	if err := merged.Merge(New(time.Minute)); err == nil {
		t.Fatal("merging different windows succeeded")
	}
}

func TestJSONRoundTripAndCorruption(t *testing.T) {
	t.Parallel()
	l := New(time.Second)
	l.Credit("x", time.Unix(5, 0), 3)
	l.Apply("x", time.Unix(5, 0), Counts{Debit: 2, Duplicated: 1})
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back Ledger
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Totals() != l.Totals() || back.Window() != time.Second {
		t.Fatalf("round trip: %+v vs %+v", back.Totals(), l.Totals())
	}
	for _, bad := range []string{
		`{"window_seconds":1,"entries":[{"scope":"x","window":5,"credit":3}],"totals":{"credit":4}}`,
		`{"window_seconds":1,"entries":[{"scope":"x","window":5,"credit":-3}],"totals":{"credit":-3}}`,
		`{"window_seconds":-1,"entries":[],"totals":{}}`,
		`{"entries":`,
	} {
		var l Ledger
		if err := json.Unmarshal([]byte(bad), &l); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"window_seconds":1,"entries":[{"scope":"x","window":5,"credit":3,"debit":3}],"totals":{"credit":3,"debit":3}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Ledger
		if err := json.Unmarshal(data, &l); err != nil {
			return
		}
		again, err := json.Marshal(&l)
		if err != nil {
			t.Fatal(err)
		}
		var l2 Ledger
		if err := json.Unmarshal(again, &l2); err != nil || l2.Totals() != l.Totals() {
			t.Fatalf("re-read failed: %v", err)
		}
	})
}

func BenchmarkDebitParallel(b *testing.B) {
	l := New(time.Second)
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Debit("channel-7", now, 1)
		}
	})
}
