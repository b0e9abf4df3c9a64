package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadJob is an entry of a dead-letter stream.
type DeadJob struct {
	// ID names the dead-letter entry ("<p>/<ms>-<seq>" with several
	// partitions, as Job.ID); pass it to ReplayDead.
	ID         string
	OriginalID string    // id the job was first enqueued with
	Payload    []byte    //
	Attempts   int       // deliveries before it died
	Error      string    // the last error
	EnqueuedAt time.Time // first Enqueue
	DiedAt     time.Time //
}

// Dead lists up to limit dead letters, oldest first across the
// partitions; limit <= 0 lists all.
func (q *Queue) Dead(ctx context.Context, limit int) ([]DeadJob, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	cmds := make([]*redis.XMessageSliceCmd, len(q.parts))
	_, _ = q.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range q.parts {
			if limit > 0 {
				cmds[i] = pipe.XRangeN(ctx, p.keys.Dead, "-", "+", int64(limit))
			} else {
				cmds[i] = pipe.XRange(ctx, p.keys.Dead, "-", "+")
			}
		}
		return nil
	})
	var dead []DeadJob
	var errs []error
	for i, p := range q.parts {
		msgs, err := cmds[i].Result()
		if err != nil {
			errs = append(errs, q.redisErr(p, "list dead letters", err))
			continue
		}
		for _, m := range msgs {
			dead = append(dead, deadJob(p, m))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortStableFunc(dead, func(a, b DeadJob) int { return cmp.Compare(a.DiedAt.UnixMilli(), b.DiedAt.UnixMilli()) })
	if limit > 0 && len(dead) > limit {
		dead = dead[:limit]
	}
	return dead, nil
}

func deadJob(p *partition, m redis.XMessage) DeadJob {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	d := DeadJob{
		ID:      p.prefix + m.ID,
		Payload: []byte(str("p")),
		Error:   str("e"),
		DiedAt:  time.UnixMilli(idMillis(m.ID)),
	}
	if o := str("o"); o != "" {
		d.OriginalID = p.prefix + o
	}
	d.Attempts, _ = strconv.Atoi(str("a"))
	ms, err := strconv.ParseInt(str("t"), 10, 64)
	if err != nil {
		ms = idMillis(str("o"))
	}
	d.EnqueuedAt = time.UnixMilli(ms)
	return d
}

// replayChunk bounds how many dead letters one ReplayDead script moves, so
// replaying a large dead-letter stream does not stall Redis.
const replayChunk = 500

// ReplayDead moves the dead letters with the given ids (DeadJob.ID) back to
// their partitions with attempts reset, or all of them when ids is empty;
// unknown ids are skipped, an id that is not one of this queue's is an
// error (ErrBadID) before anything moves. It returns how many moved.
// Replays ignore MaxLen: they are an operator's decision. Each chunk of
// replayChunk jobs of one partition moves atomically.
func (q *Queue) ReplayDead(ctx context.Context, ids ...string) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	total := 0
	replay := func(p *partition, args ...any) (int, error) {
		n, err := replayScript.Run(ctx, q.client, []string{p.keys.Stream, p.keys.Dead, p.keys.Stats}, args...).Int()
		if err != nil {
			return 0, q.outcomeErr(p, "replay dead letters", err)
		}
		total += n
		q.metrics.replayed.Add(float64(n))
		return n, nil
	}
	if len(ids) == 0 {
		for _, p := range q.parts {
			for {
				n, err := replay(p, replayChunk)
				if err != nil {
					return total, err
				}
				if n < replayChunk {
					break
				}
			}
		}
		return total, nil
	}
	groups, order, err := q.byPartition(ids)
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	for _, pi := range order {
		entries := groups[pi]
		for start := 0; start < len(entries); start += replayChunk {
			chunk := entries[start:min(start+replayChunk, len(entries))]
			args := make([]any, 0, len(chunk)+1)
			args = append(args, 0)
			for _, e := range chunk {
				args = append(args, e)
			}
			if _, err := replay(q.parts[pi], args...); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}
