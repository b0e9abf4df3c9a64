package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrOutcomeUnknown is wrapped (with ErrUnavailable) by an EnqueueKeyed
// error after which nobody knows whether the jobs were added: the command
// was sent and no answer came (Redis stalled, the connection broke). A
// retry with the same keys adds them once.
var ErrOutcomeUnknown = errors.New("queue: outcome unknown")

// KeyedJob is a job with an idempotency key.
type KeyedJob struct {
	Payload []byte
	// Key makes the enqueue idempotent: a job whose key was enqueued
	// within the window is not added again; its first id is returned.
	Key string
}

// DefaultKeyWindow is how long EnqueueKeyed remembers a key by default.
const DefaultKeyWindow = 10 * time.Minute

// KEYS: stream, stats, then one dedupe key per job. ARGV: maxlen, key ttl
// ms, payload per job. Returns the ids (the first id for a key seen
// before) and, last, how many jobs were added; nil when the new ones do
// not fit under maxlen.
var enqueueKeyedScript = redis.NewScript(`
local maxlen, ttl = tonumber(ARGV[1]), ARGV[2]
local ids, fresh = {}, 0
for i = 3, #KEYS do
  local seen = redis.call('GET', KEYS[i])
  if seen then ids[i - 2] = seen else fresh = fresh + 1 end
end
if fresh > 0 and maxlen > 0 and redis.call('XLEN', KEYS[1]) + fresh > maxlen then
  return false
end
for i = 3, #KEYS do
  if not ids[i - 2] then
    local id = redis.call('XADD', KEYS[1], '*', 'p', ARGV[i])
    redis.call('SET', KEYS[i], id, 'PX', ttl)
    ids[i - 2] = id
  end
end
if fresh > 0 then redis.call('HINCRBY', KEYS[2], 'enqueued', fresh) end
ids[#ids + 1] = tostring(fresh)
return ids
`)

// EnqueueKeyed adds jobs idempotently, in one round trip and one atomic
// step: every job whose key is new is added, or, with ErrFull, none. It
// returns every job's id (for a repeated key, the id it was first enqueued
// with) and how many were added. window is how long a key is remembered
// (DefaultKeyWindow when 0). An error wrapping ErrOutcomeUnknown means the
// jobs may have been added: retry with the same keys.
func (q *Queue) EnqueueKeyed(ctx context.Context, jobs []KeyedJob, window time.Duration) ([]string, int, error) {
	if q.closed.Load() {
		return nil, 0, ErrClosed
	}
	if len(jobs) == 0 {
		return nil, 0, nil
	}
	if window <= 0 {
		window = DefaultKeyWindow
	}
	keys := make([]string, 0, len(jobs)+2)
	keys = append(keys, q.keys.Stream, q.keys.Stats)
	args := make([]any, 0, len(jobs)+2)
	args = append(args, q.maxLen, strconv.FormatInt(window.Milliseconds(), 10))
	for _, j := range jobs {
		if j.Key == "" {
			return nil, 0, errors.New("queue: EnqueueKeyed needs a key for every job (Enqueue takes jobs without)")
		}
		keys = append(keys, q.keyOf(j.Key))
		args = append(args, j.Payload)
	}
	res, err := enqueueKeyedScript.Run(ctx, q.client, keys, args...).StringSlice()
	if errors.Is(err, redis.Nil) {
		q.metrics.rejected.Add(float64(len(jobs)))
		return nil, 0, fmt.Errorf("%w: %d jobs refused", ErrFull, len(jobs))
	}
	if err != nil {
		return nil, 0, q.outcomeErr("enqueue", err)
	}
	if len(res) != len(jobs)+1 {
		return nil, 0, fmt.Errorf("queue: enqueue script returned %d values for %d jobs: %w", len(res), len(jobs), ErrOutcomeUnknown)
	}
	fresh, _ := strconv.Atoi(res[len(jobs)])
	q.metrics.enqueued.Add(float64(fresh))
	return res[:len(jobs)], fresh, nil
}

// keyOf is the Redis key remembering an idempotency key (the queue's hash
// tag, so every key of a script is in one cluster slot).
func (q *Queue) keyOf(key string) string {
	return q.keys.Stream[:len(q.keys.Stream)-len(":stream")] + ":k:" + key
}

// outcomeErr classifies a failed command that changes state: refused or
// never sent (ErrUnavailable alone: nothing happened) against sent and not
// answered (also ErrOutcomeUnknown). When in doubt it says unknown.
func (q *Queue) outcomeErr(op string, err error) error {
	var opErr *net.OpError
	var redisErr redis.Error
	switch {
	case errors.As(err, &redisErr),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		errors.As(err, &opErr) && opErr.Op == "dial":
		return q.redisErr(op, err)
	}
	q.metrics.redisErrors.Inc()
	return fmt.Errorf("queue: %s on %s: %w: %w: %w", op, q.keys.Stream, ErrOutcomeUnknown, ErrUnavailable, err)
}
