package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/batcherr"
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
	// Partition is the job's routing key: jobs with the same one land in
	// the same partition, in the order they were enqueued (the hooks of
	// one object: model and id). Empty routes by Key. The key's record
	// lives in the job's partition, so a retry must route the same way.
	Partition string
}

// PartialError is EnqueueKeyed's error when the jobs spanned partitions
// and some partitions took their part and others did not (each part is
// atomic). IDs has the id of every job in a partition that succeeded (its
// first id, for a repeated key), "" for the others; Errs[i] is nil for a
// job in a partition that succeeded, else that partition's error (wrapping
// ErrFull, ErrUnavailable, or ErrOutcomeUnknown as a whole batch's error
// would). errors.Is sees through it to those errors. A retry of the whole
// batch with the same keys adds only what is missing.
type PartialError struct {
	IDs  []string
	Errs []error
}

func (e *PartialError) Error() string {
	failed, first := batcherr.Summary(e.Errs)
	return fmt.Sprintf("queue: %d of %d jobs not enqueued: %v", failed, len(e.Errs), first)
}

// Unwrap returns the distinct errors of the failed partitions.
func (e *PartialError) Unwrap() []error {
	var out []error
	for _, err := range e.Errs {
		if err != nil && !slices.Contains(out, err) {
			out = append(out, err)
		}
	}
	return out
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

// EnqueueKeyed adds jobs idempotently: every job whose key is new is
// added, or, with ErrFull, none. It returns every job's id (for a repeated
// key, the id it was first enqueued with) and how many were added. window
// is how long a key is remembered (DefaultKeyWindow when 0). An error
// wrapping ErrOutcomeUnknown means the jobs may have been added: retry
// with the same keys.
//
// Jobs of one partition (see KeyedJob.Partition) are one round trip and
// one atomic step; a batch over several partitions is one script per
// partition, all in one pipeline. When some partitions fail and others
// not, the error is a *PartialError saying job by job; when all fail, it is
// the error a single partition would return (outcome unknown if any
// partition's outcome is).
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
	ttl := strconv.FormatInt(window.Milliseconds(), 10)
	type group struct {
		call
		idx []int // indexes in jobs
	}
	var groups []*group
	byPart := map[int]*group{}
	for i, j := range jobs {
		if j.Key == "" {
			return nil, 0, errors.New("queue: EnqueueKeyed needs a key for every job (Enqueue takes jobs without)")
		}
		route := j.Partition
		if route == "" {
			route = j.Key
		}
		pi := partitionOf(route, len(q.parts))
		g := byPart[pi]
		if g == nil {
			p := q.parts[pi]
			g = &group{call: call{p: p, keys: []string{p.keys.Stream, p.keys.Stats}, args: []any{q.maxLen, ttl}}}
			byPart[pi] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
		g.keys = append(g.keys, g.p.keyOf(j.Key))
		g.args = append(g.args, j.Payload)
	}
	calls := make([]*call, len(groups))
	for i, g := range groups {
		calls[i] = &g.call
	}
	q.evalAll(ctx, enqueueKeyedScript, calls)
	ids := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	fresh, failed := 0, 0
	var firstErr, unknown error
	for _, g := range groups {
		n, err := q.enqueued(g.p, g.cmd, len(g.idx))
		if err != nil {
			for _, i := range g.idx {
				errs[i] = err
			}
			failed += len(g.idx)
			if firstErr == nil {
				firstErr = err
			}
			if unknown == nil && errors.Is(err, ErrOutcomeUnknown) {
				unknown = err
			}
			continue
		}
		fresh += n
		res, _ := g.cmd.StringSlice()
		for k, i := range g.idx {
			ids[i] = g.p.prefix + res[k]
		}
	}
	switch {
	case failed == 0:
		return ids, fresh, nil
	case failed == len(jobs):
		if unknown != nil {
			return nil, 0, unknown
		}
		return nil, 0, firstErr
	}
	return ids, fresh, &PartialError{IDs: ids, Errs: errs}
}

// enqueued checks one partition's enqueue script answer and counts it.
func (q *Queue) enqueued(p *partition, cmd *redis.Cmd, jobs int) (int, error) {
	res, err := cmd.StringSlice()
	if errors.Is(err, redis.Nil) {
		q.metrics.rejected.Add(float64(jobs))
		return 0, fmt.Errorf("%w: %d jobs refused by %s", ErrFull, jobs, p.keys.Stream)
	}
	if err != nil {
		return 0, q.outcomeErr(p, "enqueue", err)
	}
	if len(res) != jobs+1 {
		return 0, fmt.Errorf("queue: enqueue script returned %d values for %d jobs: %w", len(res), jobs, ErrOutcomeUnknown)
	}
	fresh, _ := strconv.Atoi(res[jobs])
	q.metrics.enqueued.Add(float64(fresh))
	return fresh, nil
}

// outcomeErr classifies a failed command that changes state: refused or
// never sent (ErrUnavailable alone: nothing happened) against sent and not
// answered (also ErrOutcomeUnknown). When in doubt it says unknown.
func (q *Queue) outcomeErr(p *partition, op string, err error) error {
	var opErr *net.OpError
	var redisErr redis.Error
	switch {
	case errors.As(err, &redisErr),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		errors.As(err, &opErr) && opErr.Op == "dial":
		return q.redisErr(p, op, err)
	}
	q.failed()
	return fmt.Errorf("queue: %s on %s: %w: %w: %w", op, p.keys.Stream, ErrOutcomeUnknown, ErrUnavailable, err)
}
