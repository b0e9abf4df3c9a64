package queue

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadJob is an entry of the dead-letter stream.
type DeadJob struct {
	ID         string    // dead-letter entry id; pass it to ReplayDead
	OriginalID string    // id the job was first enqueued with
	Payload    []byte    //
	Attempts   int       // deliveries before it died
	Error      string    // the last error
	EnqueuedAt time.Time // first Enqueue
	DiedAt     time.Time //
}

// Dead lists up to limit dead letters, oldest first; limit <= 0 lists all.
func (q *Queue) Dead(ctx context.Context, limit int) ([]DeadJob, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	var msgs []redis.XMessage
	var err error
	if limit > 0 {
		msgs, err = q.client.XRangeN(ctx, q.keys.Dead, "-", "+", int64(limit)).Result()
	} else {
		msgs, err = q.client.XRange(ctx, q.keys.Dead, "-", "+").Result()
	}
	if err != nil {
		return nil, q.redisErr("list dead letters", err)
	}
	dead := make([]DeadJob, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { s, _ := m.Values[k].(string); return s }
		d := DeadJob{
			ID:         m.ID,
			OriginalID: str("o"),
			Payload:    []byte(str("p")),
			Error:      str("e"),
			DiedAt:     time.UnixMilli(idMillis(m.ID)),
		}
		d.Attempts, _ = strconv.Atoi(str("a"))
		ms, err := strconv.ParseInt(str("t"), 10, 64)
		if err != nil {
			ms = idMillis(d.OriginalID)
		}
		d.EnqueuedAt = time.UnixMilli(ms)
		dead = append(dead, d)
	}
	return dead, nil
}

// replayChunk bounds how many dead letters one ReplayDead script moves, so
// replaying a large dead-letter stream does not stall Redis.
const replayChunk = 500

// ReplayDead moves the dead letters with the given ids (DeadJob.ID) back to
// the queue with attempts reset, or all of them when ids is empty; unknown
// ids are skipped. It returns how many moved. Replays ignore MaxLen: they
// are an operator's decision. Each chunk of replayChunk jobs moves
// atomically.
func (q *Queue) ReplayDead(ctx context.Context, ids ...string) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	keys := []string{q.keys.Stream, q.keys.Dead, q.keys.Stats}
	total := 0
	if len(ids) == 0 {
		for {
			n, err := replayScript.Run(ctx, q.client, keys, replayChunk).Int()
			if err != nil {
				return total, q.outcomeErr("replay dead letters", err)
			}
			total += n
			q.metrics.replayed.Add(float64(n))
			if n < replayChunk {
				return total, nil
			}
		}
	}
	for start := 0; start < len(ids); start += replayChunk {
		chunk := ids[start:min(start+replayChunk, len(ids))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, 0)
		for _, id := range chunk {
			args = append(args, id)
		}
		n, err := replayScript.Run(ctx, q.client, keys, args...).Int()
		if err != nil {
			return total, q.outcomeErr("replay dead letters", err)
		}
		total += n
		q.metrics.replayed.Add(float64(n))
	}
	return total, nil
}
