package queue

import (
	"context"
	"errors"
	"fmt"
)

// Stats is a consistent snapshot of a queue, shared by every process.
type Stats struct {
	Depth    int64 `json:"depth"`     // unclaimed jobs
	InFlight int64 `json:"in_flight"` // claimed jobs, in consumers' PELs
	Dead     int64 `json:"dead"`      // entries in the dead-letter stream

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
// zero in every snapshot; anything else means keys were edited by hand or
// lost (a Redis restart without persistence, which keeps no counters
// either, still balances at zero).
func (s Stats) Imbalance() int64 {
	return s.Enqueued + s.Replayed - (s.Acked + s.DeadLettered + s.Depth + s.InFlight)
}

// Stats reads the queue's state in one atomic step.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	if q.closed.Load() {
		return Stats{}, ErrClosed
	}
	return q.stats(ctx)
}

func (q *Queue) stats(ctx context.Context) (Stats, error) {
	v, err := statsScript.Run(ctx, q.client,
		[]string{q.keys.Stream, q.keys.Dead, q.keys.Stats}, q.group).Int64Slice()
	if err != nil {
		return Stats{}, q.redisErr("stats", err)
	}
	if len(v) != 8 {
		return Stats{}, q.redisErr("stats", errors.New("unexpected reply "+fmt.Sprint(v)))
	}
	return Stats{
		Depth:        v[0] - v[1],
		InFlight:     v[1],
		Dead:         v[2],
		Enqueued:     v[3],
		Acked:        v[4],
		Retried:      v[5],
		DeadLettered: v[6],
		Replayed:     v[7],
	}, nil
}
