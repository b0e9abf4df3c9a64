// Package ledger keeps darktime's +1/-1 accounts: "measure everything, and
// express things as +1 and -1". Whatever is expected is credited (+1 for
// every delivery a publish should cause, every event the primary sent),
// whatever is observed is debited (-1 for every event received, every event
// the candidate sent), and each account must balance to zero. When it does
// not, the ledger says where: by scope (a channel, a node, a user bucket)
// and by time window, with what kind of difference it is (lost,
// duplicated, late, out of order).
//
// A Ledger is safe for concurrent use; hot paths credit and debit through
// per-scope shards so that many goroutines do not contend on one lock.
// Ledgers merge exactly (sums), so results from many processes or agents
// add up to the same ledger as one big run.
package ledger

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

// Counts is one account. Credit and Debit are the +1 and -1 sides; the
// other fields classify differences found by whoever keeps the ledger.
type Counts struct {
	Credit     int64 `json:"credit"`     // +1 each: expected
	Debit      int64 `json:"debit"`      // -1 each: observed
	Lost       int64 `json:"lost"`       // expected, never observed
	Duplicated int64 `json:"duplicated"` // observed more than once
	Late       int64 `json:"late"`       // observed after the allowed delay
	Reordered  int64 `json:"reordered"`  // observed out of order
	// Extra: observed, never expected (a delivery no successful publish
	// owed). Balance = Lost − Extra − Duplicated when every difference is
	// classified.
	Extra int64 `json:"extra,omitempty"`
}

// Balance is Credit - Debit: 0 when every expected thing was observed once.
func (c Counts) Balance() int64 { return c.Credit - c.Debit }

// Add returns the sum of two accounts.
func (c Counts) Add(o Counts) Counts {
	return Counts{
		Credit: c.Credit + o.Credit, Debit: c.Debit + o.Debit, Lost: c.Lost + o.Lost,
		Duplicated: c.Duplicated + o.Duplicated, Late: c.Late + o.Late, Reordered: c.Reordered + o.Reordered,
		Extra: c.Extra + o.Extra,
	}
}

// IsZero reports whether nothing was counted.
func (c Counts) IsZero() bool { return c == Counts{} }

// Key names an account: a scope (channel, node, bucket...) in a time
// window (the window's start in unix seconds; 0 when not windowed).
type Key struct {
	Scope  string
	Window int64
}

// Entry is one account in a ledger's serialised form.
type Entry struct {
	Scope  string `json:"scope"`
	Window int64  `json:"window"`
	Counts
}

const shards = 32

// Ledger is a set of accounts.
type Ledger struct {
	window time.Duration
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[Key]*Counts
}

// New returns a ledger whose accounts are split into windows of the given
// length (0: one account per scope for the whole run).
func New(window time.Duration) *Ledger {
	l := &Ledger{window: window, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = map[Key]*Counts{}
	}
	return l
}

// Window is the ledger's window length.
func (l *Ledger) Window() time.Duration { return l.window }

func (l *Ledger) key(scope string, at time.Time) Key {
	if l.window <= 0 || at.IsZero() {
		return Key{Scope: scope}
	}
	w := at.Truncate(l.window).Unix()
	return Key{Scope: scope, Window: w}
}

// Apply adds c to the account of scope at time at.
func (l *Ledger) Apply(scope string, at time.Time, c Counts) {
	k := l.key(scope, at)
	sh := &l.shards[maphash.String(l.seed, scope)%shards]
	sh.mu.Lock()
	acc := sh.m[k]
	if acc == nil {
		acc = &Counts{}
		sh.m[k] = acc
	}
	*acc = acc.Add(c)
	sh.mu.Unlock()
}

// Credit counts n expected things (+1 each).
func (l *Ledger) Credit(scope string, at time.Time, n int64) {
	l.Apply(scope, at, Counts{Credit: n})
}

// Debit counts n observed things (-1 each).
func (l *Ledger) Debit(scope string, at time.Time, n int64) {
	l.Apply(scope, at, Counts{Debit: n})
}

// Entries returns every account, sorted by scope then window.
func (l *Ledger) Entries() []Entry {
	var out []Entry
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			out = append(out, Entry{Scope: k.Scope, Window: k.Window, Counts: *c})
		}
		sh.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Window < out[j].Window
	})
	return out
}

// Totals sums every account.
func (l *Ledger) Totals() Counts {
	var t Counts
	for _, e := range l.Entries() {
		t = t.Add(e.Counts)
	}
	return t
}

// ByScope sums each scope's accounts over all windows.
func (l *Ledger) ByScope() map[string]Counts {
	out := map[string]Counts{}
	for _, e := range l.Entries() {
		out[e.Scope] = out[e.Scope].Add(e.Counts)
	}
	return out
}

// Unbalanced returns the accounts whose balance is not zero or that
// recorded a difference, sorted like Entries.
func (l *Ledger) Unbalanced() []Entry {
	var out []Entry
	for _, e := range l.Entries() {
		if e.Balance() != 0 || e.Lost != 0 || e.Duplicated != 0 || e.Late != 0 || e.Reordered != 0 || e.Extra != 0 {
			out = append(out, e)
		}
	}
	return out
}

// Merge adds every account of o to l. Windows must have the same length.
func (l *Ledger) Merge(o *Ledger) error {
	if l.window != o.window {
		return fmt.Errorf("ledger: cannot merge windows of %v into %v", o.window, l.window)
	}
	for _, e := range o.Entries() {
		l.applyKey(Key{Scope: e.Scope, Window: e.Window}, e.Counts)
	}
	return nil
}

func (l *Ledger) applyKey(k Key, c Counts) {
	sh := &l.shards[maphash.String(l.seed, k.Scope)%shards]
	sh.mu.Lock()
	acc := sh.m[k]
	if acc == nil {
		acc = &Counts{}
		sh.m[k] = acc
	}
	*acc = acc.Add(c)
	sh.mu.Unlock()
}

// wire is the JSON form of a ledger.
type wire struct {
	WindowSeconds float64 `json:"window_seconds"`
	Entries       []Entry `json:"entries"`
	Totals        Counts  `json:"totals"`
}

// MarshalJSON writes {"window_seconds", "entries", "totals"}.
func (l *Ledger) MarshalJSON() ([]byte, error) {
	entries := l.Entries()
	if entries == nil {
		entries = []Entry{}
	}
	var t Counts
	for _, e := range entries {
		t = t.Add(e.Counts)
	}
	return json.Marshal(wire{WindowSeconds: l.window.Seconds(), Entries: entries, Totals: t})
}

// UnmarshalJSON reads what MarshalJSON wrote and checks that the totals
// match the entries (a corrupt or hand-edited file is an error).
func (l *Ledger) UnmarshalJSON(data []byte) error {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if w.WindowSeconds < 0 {
		return fmt.Errorf("ledger: negative window_seconds %v", w.WindowSeconds)
	}
	fresh := New(time.Duration(w.WindowSeconds * float64(time.Second)))
	var t Counts
	for _, e := range w.Entries {
		if e.Credit < 0 || e.Debit < 0 || e.Lost < 0 || e.Duplicated < 0 || e.Late < 0 || e.Reordered < 0 || e.Extra < 0 {
			return fmt.Errorf("ledger: negative count in scope %q window %d", e.Scope, e.Window)
		}
		fresh.applyKey(Key{Scope: e.Scope, Window: e.Window}, e.Counts)
		t = t.Add(e.Counts)
	}
	if t != w.Totals {
		return fmt.Errorf("ledger: totals %+v do not match the entries' sum %+v", w.Totals, t)
	}
	l.window, l.seed = fresh.window, fresh.seed
	for i := range l.shards {
		l.shards[i].m = fresh.shards[i].m
	}
	return nil
}
