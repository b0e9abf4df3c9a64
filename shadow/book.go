package shadow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/shadow/ledgerfile"
)

// Schema names the version of the ledger's JSON form (LEDGER.md).
const Schema = ledgerfile.Schema

// book is the reconciliation ledger of one mirror target (the candidate
// or the baseline): the shared +1/-1 ledgers by channel and by user
// bucket, and beside them what internal/ledger has no field for.
type book struct {
	name, role, url string
	channels        *ledger.Ledger
	buckets         *ledger.Ledger

	mu           sync.Mutex
	aux          map[string]*auxCounts // "c:"+channel, "b:"+bucket
	mirrored     int64                 // streams mirrored
	active       int64                 // open now
	unreconciled int64                 // streams that overflowed MaxPending
	failed       int64                 // streams whose mirror failed or ended early
	resumed      int64                 // streams whose user resumed from an event id
	unmirrored   int64                 // publishes the primary accepted that this target was not sent
	skips        map[string]*skipLog   // their times, per label with mirrored streams
}

type auxCounts struct {
	matched, extra                      int64
	edgeMissing, edgeExtra, lateSettled int64
	unmirrored                          int64
	delaySum, delayMax                  time.Duration
}

func (a *auxCounts) add(o auxCounts) {
	a.matched += o.matched
	a.extra += o.extra
	a.edgeMissing += o.edgeMissing
	a.edgeExtra += o.edgeExtra
	a.lateSettled += o.lateSettled
	a.unmirrored += o.unmirrored
	a.delaySum += o.delaySum
	a.delayMax = max(a.delayMax, o.delayMax)
}

func newBook(name, role, url string) *book {
	return &book{name: name, role: role, url: url, channels: ledger.New(0), buckets: ledger.New(0), aux: map[string]*auxCounts{},
		skips: map[string]*skipLog{}}
}

// apply adds one stream's findings to the channel's and bucket's accounts.
func (b *book) apply(channel string, bucket int, t tally) {
	c := ledger.Counts{Credit: t.Primary, Debit: t.Candidate, Lost: t.Missing, Duplicated: t.Duplicated, Late: t.Late, Reordered: t.Reordered}
	bk := "nokey"
	if bucket != noBucket {
		bk = strconv.Itoa(bucket)
	}
	b.channels.Apply(channel, time.Time{}, c)
	b.buckets.Apply(bk, time.Time{}, c)
	ac := auxCounts{matched: t.Matched, extra: t.Extra, edgeMissing: t.EdgeMissing, edgeExtra: t.EdgeExtra,
		lateSettled: t.LateSettled, unmirrored: t.Unmirrored, delaySum: t.DelaySum, delayMax: t.DelayMax}
	if ac == (auxCounts{}) {
		return
	}
	b.mu.Lock()
	for _, k := range [2]string{"c:" + channel, "b:" + bk} {
		a := b.aux[k]
		if a == nil {
			a = &auxCounts{}
			b.aux[k] = a
		}
		a.add(ac)
	}
	b.mu.Unlock()
}

func (b *book) resumedStream() {
	b.mu.Lock()
	b.resumed++
	b.mu.Unlock()
}

func (b *book) streamEvent(mirrored, active, unreconciled, failed int64) {
	b.mu.Lock()
	b.mirrored += mirrored
	b.active += active
	b.unreconciled += unreconciled
	b.failed += failed
	b.mu.Unlock()
}

// The ledger's JSON form (package ledgerfile, a leaf that readers of
// ledger files import without the proxy).
type (
	// Report is the ledger's JSON form, version Schema (see LEDGER.md).
	Report = ledgerfile.Report
	// TargetReport is the ledger of one mirror target.
	TargetReport = ledgerfile.TargetReport
	// StreamCounts counts the mirrored streams of a target.
	StreamCounts = ledgerfile.StreamCounts
	// Counts is one account of the report.
	Counts = ledgerfile.Counts
)

func makeCounts(c ledger.Counts, a auxCounts) Counts {
	out := Counts{
		Primary: c.Credit, Candidate: c.Debit, Balance: c.Balance(), Matched: a.matched,
		Missing: c.Lost, Extra: a.extra, Duplicated: c.Duplicated, Late: c.Late, Reordered: c.Reordered,
		DelayMaxMS:  ms(a.delayMax),
		EdgeMissing: a.edgeMissing, EdgeExtra: a.edgeExtra, LateSettled: a.lateSettled, Unmirrored: a.unmirrored,
	}
	out.UnexplainedMissing = max(out.Missing-out.EdgeMissing-out.LateSettled-out.Unmirrored, 0)
	out.UnexplainedExtra = max(out.Extra-out.EdgeExtra-out.LateSettled, 0)
	out.PendingPrimary = out.Primary - out.Matched - out.Missing
	out.PendingCandidate = out.Candidate - out.Matched - out.Extra - out.Duplicated
	if a.matched > 0 {
		out.DelayMeanMS = ms(a.delaySum / time.Duration(a.matched))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (b *book) report() TargetReport {
	b.mu.Lock()
	aux := make(map[string]auxCounts, len(b.aux))
	for k, v := range b.aux {
		aux[k] = *v
	}
	tr := TargetReport{Name: b.name, Role: b.role, URL: b.url,
		Streams:             StreamCounts{Mirrored: b.mirrored, Active: b.active, Unreconciled: b.unreconciled, Failed: b.failed, Resumed: b.resumed},
		UnmirroredPublishes: b.unmirrored}
	b.mu.Unlock()
	var total ledger.Counts
	var totalAux auxCounts
	tr.Channels = map[string]Counts{}
	for scope, c := range b.channels.ByScope() {
		a := aux["c:"+scope]
		tr.Channels[scope] = makeCounts(c, a)
		total = total.Add(c)
		totalAux.add(a)
	}
	tr.Totals = makeCounts(total, totalAux)
	tr.Buckets = map[string]Counts{}
	for scope, c := range b.buckets.ByScope() {
		tr.Buckets[scope] = makeCounts(c, aux["b:"+scope])
	}
	return tr
}

// writeReportFile writes the report atomically (a temporary file renamed).
func writeReportFile(name string, r Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

func sortedTargets(books map[string]*book) []*book {
	out := make([]*book, 0, len(books))
	for _, b := range books {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
