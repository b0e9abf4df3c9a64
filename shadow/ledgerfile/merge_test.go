package ledgerfile

import (
	"errors"
	"testing"
	"time"
)

func counts(primary, matched, missing, extra int64, delay float64) Counts {
	return Counts{Primary: primary, Candidate: matched + extra, Balance: primary - matched - extra, Matched: matched,
		Missing: missing, Extra: extra, PendingPrimary: primary - matched - missing, DelayMeanMS: delay, DelayMaxMS: delay * 2,
		EdgeMissing: missing, EdgeExtra: extra}
}

func part(start time.Time, c Counts) Report {
	return Report{Schema: Schema, StartedAt: start, GeneratedAt: start.Add(time.Minute), Final: true, SettleMS: 300, LateMS: 1000, EdgeMS: 150,
		Identity: "data", Targets: []TargetReport{{Name: "candidate", Role: "candidate", URL: "http://c", Streams: StreamCounts{Mirrored: 10},
			Totals: c, Channels: map[string]Counts{"a": c}, Buckets: map[string]Counts{"7": c}}}}
}

// TestMerge: the ledgers of three proxy instances add up to one whose
// every account is the sum of the parts', invariants included.
func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	a, b, c := counts(100, 90, 4, 2, 10), counts(50, 50, 0, 1, 20), counts(10, 5, 5, 0, 0)
	got, err := Merge(part(t0.Add(time.Second), a), part(t0, b), part(t0.Add(2*time.Second), c))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Targets) != 1 || !got.StartedAt.Equal(t0) || !got.GeneratedAt.Equal(t0.Add(2*time.Second+time.Minute)) || !got.Final {
		t.Fatalf("merged %+v", got)
	}
	tr := got.Targets[0]
	sum := tr.Totals
	if sum.Primary != 160 || sum.Matched != 145 || sum.Missing != 9 || sum.Extra != 3 || tr.Streams.Mirrored != 30 ||
		tr.Channels["a"] != sum || tr.Buckets["7"] != sum {
		t.Fatalf("sums %+v, streams %+v, channel %+v", sum, tr.Streams, tr.Channels["a"])
	}
	if sum.Balance != sum.Primary-sum.Candidate || sum.Primary != sum.Matched+sum.Missing+sum.PendingPrimary ||
		sum.Candidate != sum.Matched+sum.Extra+sum.Duplicated+sum.PendingCandidate {
		t.Errorf("the invariants do not hold for the sum: %+v", sum)
	}
	if want := (10*90 + 20*50 + 0*5) / 145.0; sum.DelayMeanMS != want || sum.DelayMaxMS != 40 {
		t.Errorf("delay mean %v max %v, want %v and 40", sum.DelayMeanMS, sum.DelayMaxMS, want)
	}
	other := part(t0, a)
	other.Identity = "id"
	if _, err := Merge(part(t0, a), other); !errors.Is(err, ErrMerge) {
		t.Errorf("ledgers of other identities merged: %v", err)
	}
	if _, err := Merge(); !errors.Is(err, ErrMerge) {
		t.Errorf("no ledger: %v", err)
	}
}
