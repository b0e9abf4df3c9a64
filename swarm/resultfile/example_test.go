package resultfile_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/swarm/resultfile"
)

// Two parts of a three-part run are written, read back (checksum and all)
// and merged; the merge knows which part is missing.
func ExampleMerge() {
	at := time.Unix(1_800_000_000, 0)
	part := func(index int, owed, got int64) *resultfile.Result {
		l := ledger.New(time.Second)
		l.Credit("news", at, owed)
		l.Debit("news", at, got)
		var buf bytes.Buffer
		r := &resultfile.Result{
			Schema: resultfile.Schema, RunID: "run-1", Ledger: l, Errors: map[string]int64{},
			Parts:  []resultfile.PartInfo{{Part: resultfile.Part{Index: index, Count: 3}}},
			Events: resultfile.EventCounts{Events: got},
		}
		if err := r.Write(&buf); err != nil {
			panic(err)
		}
		back, err := resultfile.ReadResult(&buf)
		if err != nil {
			panic(err)
		}
		return back
	}
	merged, err := resultfile.Merge(part(0, 10, 10), part(2, 5, 5))
	if err != nil {
		panic(err)
	}
	t := merged.Ledger.Totals()
	fmt.Printf("events %d, credit %d, debit %d, missing %v\n", merged.Events.Events, t.Credit, t.Debit, merged.Missing())
	// Output: events 15, credit 15, debit 15, missing [{1 3}]
}
