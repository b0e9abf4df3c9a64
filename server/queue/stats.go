package queue

import (
	"context"
	"errors"
	"fmt"
)

// Stats is a snapshot of a queue, shared by every process: of its one
// partition, atomic; of several, the sum of each partition's atomic
// snapshot (taken in one pipeline, so at about the same moment).
type Stats struct {
	Depth    int64 `json:"depth"`     // unclaimed jobs
	InFlight int64 `json:"in_flight"` // claimed jobs, in consumers' PELs
	Dead     int64 `json:"dead"`      // entries in the dead-letter streams

	// Counters since the queue's keys were created; they only grow.
	Enqueued     int64 `json:"enqueued"`
	Acked        int64 `json:"acked"`
	Retried      int64 `json:"retried"` // redeliveries after a timeout, and retrying Fails
	DeadLettered int64 `json:"dead_lettered"`
	Replayed     int64 `json:"replayed"`
}

// Imbalance is (Enqueued + Replayed) - (Acked + DeadLettered + Depth +
// InFlight): every job that entered the queue has left it or is still in
// it. Each transition updates streams and counters atomically, so it is
// zero in every snapshot of a partition, and a job never moves between
// partitions, so it is zero in every sum of such snapshots too, taken at
// whatever moments; anything else means keys were edited by hand or lost
// (a Redis restart without persistence, which keeps no counters either,
// still balances at zero).
func (s Stats) Imbalance() int64 {
	return s.Enqueued + s.Replayed - (s.Acked + s.DeadLettered + s.Depth + s.InFlight)
}

// Add returns the field-by-field sum of s and o (of two partitions, say).
func (s Stats) Add(o Stats) Stats {
	s.Depth += o.Depth
	s.InFlight += o.InFlight
	s.Dead += o.Dead
	s.Enqueued += o.Enqueued
	s.Acked += o.Acked
	s.Retried += o.Retried
	s.DeadLettered += o.DeadLettered
	s.Replayed += o.Replayed
	return s
}

// Stats reads the queue's state: each partition in one atomic step, all
// partitions in one pipeline, summed.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	if q.closed.Load() {
		return Stats{}, ErrClosed
	}
	return q.stats(ctx)
}

// PartitionStats reads each partition's state (by index) as Stats does.
func (q *Queue) PartitionStats(ctx context.Context) ([]Stats, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	return q.partitionStats(ctx)
}

func (q *Queue) stats(ctx context.Context) (Stats, error) {
	parts, err := q.partitionStats(ctx)
	if err != nil {
		return Stats{}, err
	}
	var sum Stats
	for _, s := range parts {
		sum = sum.Add(s)
	}
	return sum, nil
}

func (q *Queue) partitionStats(ctx context.Context) ([]Stats, error) {
	calls := make([]*call, len(q.parts))
	for i, p := range q.parts {
		calls[i] = &call{p: p, keys: []string{p.keys.Stream, p.keys.Dead, p.keys.Stats}, args: []any{q.group}}
	}
	q.evalAll(ctx, statsScript, calls)
	out := make([]Stats, len(q.parts))
	var errs []error
	for i, c := range calls {
		v, err := c.cmd.Int64Slice()
		if err == nil && len(v) != 8 {
			err = errors.New("unexpected reply " + fmt.Sprint(v))
		}
		if err != nil {
			errs = append(errs, q.redisErr(c.p, "stats", err))
			continue
		}
		out[i] = Stats{
			Depth:        v[0] - v[1],
			InFlight:     v[1],
			Dead:         v[2],
			Enqueued:     v[3],
			Acked:        v[4],
			Retried:      v[5],
			DeadLettered: v[6],
			Replayed:     v[7],
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
