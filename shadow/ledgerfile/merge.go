package ledgerfile

import (
	"errors"
	"fmt"
)

// ErrMerge is wrapped by the errors of Merge: the parts are not of one
// deployment.
var ErrMerge = errors.New("ledgers do not merge")

// Merge adds the ledgers of several proxy instances of one deployment —
// the same schema, identity and windows, the same targets — into one: every
// count is the sum of the parts' (so the invariants of each account hold
// for the sum), DelayMeanMS is the mean weighted by matched events and
// DelayMaxMS the largest, StartedAt the earliest, GeneratedAt the latest,
// Final only when every part is. The users' buckets are the same on every
// instance (the salt is shared), so a bucket's accounts add up across them.
func Merge(parts ...Report) (Report, error) {
	if len(parts) == 0 {
		return Report{}, fmt.Errorf("%w: no ledger", ErrMerge)
	}
	out := parts[0]
	out.Targets = nil
	type key struct{ name, role, url string }
	index := map[key]int{}
	for i, p := range parts {
		if p.Schema != out.Schema || p.Identity != out.Identity || p.SettleMS != out.SettleMS || p.LateMS != out.LateMS || p.EdgeMS != out.EdgeMS {
			return Report{}, fmt.Errorf("%w: part %d has schema %q, identity %q, settle/late/edge %d/%d/%d ms; part 0 %q, %q, %d/%d/%d ms",
				ErrMerge, i, p.Schema, p.Identity, p.SettleMS, p.LateMS, p.EdgeMS, out.Schema, out.Identity, out.SettleMS, out.LateMS, out.EdgeMS)
		}
		if p.StartedAt.Before(out.StartedAt) {
			out.StartedAt = p.StartedAt
		}
		if p.GeneratedAt.After(out.GeneratedAt) {
			out.GeneratedAt = p.GeneratedAt
		}
		out.Final = out.Final && p.Final
		out.RememberMS, out.RememberMax = max(out.RememberMS, p.RememberMS), max(out.RememberMax, p.RememberMax)
		for _, t := range p.Targets {
			k := key{t.Name, t.Role, t.URL}
			j, ok := index[k]
			if !ok {
				j = len(out.Targets)
				index[k] = j
				out.Targets = append(out.Targets, TargetReport{Name: t.Name, Role: t.Role, URL: t.URL,
					Channels: map[string]Counts{}, Buckets: map[string]Counts{}})
			}
			o := &out.Targets[j]
			o.Streams = o.Streams.add(t.Streams)
			o.UnmirroredPublishes += t.UnmirroredPublishes
			o.Totals = o.Totals.Add(t.Totals)
			for ch, c := range t.Channels {
				o.Channels[ch] = o.Channels[ch].Add(c)
			}
			for b, c := range t.Buckets {
				o.Buckets[b] = o.Buckets[b].Add(c)
			}
		}
	}
	return out, nil
}

func (s StreamCounts) add(o StreamCounts) StreamCounts {
	return StreamCounts{Mirrored: s.Mirrored + o.Mirrored, Active: s.Active + o.Active,
		Unreconciled: s.Unreconciled + o.Unreconciled, Failed: s.Failed + o.Failed, Resumed: s.Resumed + o.Resumed}
}

// Add is the account of c and o together.
func (c Counts) Add(o Counts) Counts {
	sum := Counts{
		Primary: c.Primary + o.Primary, Candidate: c.Candidate + o.Candidate, Balance: c.Balance + o.Balance,
		Matched: c.Matched + o.Matched, Missing: c.Missing + o.Missing, Extra: c.Extra + o.Extra,
		Duplicated: c.Duplicated + o.Duplicated, Late: c.Late + o.Late, Reordered: c.Reordered + o.Reordered,
		PendingPrimary: c.PendingPrimary + o.PendingPrimary, PendingCandidate: c.PendingCandidate + o.PendingCandidate,
		DelayMaxMS:  max(c.DelayMaxMS, o.DelayMaxMS),
		EdgeMissing: c.EdgeMissing + o.EdgeMissing, EdgeExtra: c.EdgeExtra + o.EdgeExtra, LateSettled: c.LateSettled + o.LateSettled,
		Unmirrored: c.Unmirrored + o.Unmirrored, UnexplainedMissing: c.UnexplainedMissing + o.UnexplainedMissing,
		UnexplainedExtra: c.UnexplainedExtra + o.UnexplainedExtra,
	}
	if sum.Matched > 0 {
		sum.DelayMeanMS = (c.DelayMeanMS*float64(c.Matched) + o.DelayMeanMS*float64(o.Matched)) / float64(sum.Matched)
	}
	return sum
}
