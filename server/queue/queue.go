package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Sentinel errors callers branch on.
var (
	// ErrFull is returned by Enqueue when the queue holds Config.MaxLen
	// jobs (claimed or not). The HTTP layer answers 503 with Retry-After.
	ErrFull = errors.New("queue: full (Config.MaxLen reached); retry later or add workers")
	// ErrUnavailable is wrapped, next to the Redis error, in every error
	// caused by Redis failing or being unreachable; answer 503.
	ErrUnavailable = errors.New("queue: redis unavailable")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrNotClaimed is returned by Fail when the job is no longer claimed by
	// the consumer that got it: it was acked already, or its visibility
	// timeout passed and another consumer reclaimed it.
	ErrNotClaimed = errors.New("queue: job is no longer claimed by this consumer (acked already, or reclaimed after its visibility timeout)")
)

// Config configures a Queue. The zero value, plus Client, is a usable queue.
type Config struct {
	// Client is the Redis connection (required). A *redis.Client,
	// *redis.ClusterClient or *redis.Ring shard all work: every key of the
	// queue shares one hash tag.
	Client redis.UniversalClient
	// Name prefixes the keys; default "darktime:jobs". It becomes the hash
	// tag {Name} unless it already contains a '{'.
	Name string
	// Group is the consumer group; default "workers".
	Group string
	// VisibilityTimeout is how long a claimed job may go without Ack or
	// Fail before another consumer may reclaim it; default 30s. Set it
	// well above the slowest job's run time.
	VisibilityTimeout time.Duration
	// MaxAttempts is how many times a job is delivered before it is
	// dead-lettered; default 5.
	MaxAttempts int
	// MaxLen bounds the jobs held (unclaimed + in flight); Enqueue returns
	// ErrFull beyond it. 0 means unbounded.
	MaxLen int64
	// Logger receives warnings about dead-lettered jobs and a recreated
	// consumer group; default discards.
	Logger *slog.Logger
	// Registerer, when set, gets the queue's collector (see Collector).
	Registerer prometheus.Registerer
}

// Keys names the Redis keys of a queue.
type Keys struct {
	Stream string // the jobs, with the consumer group
	Dead   string // dead letters
	Stats  string // shared counters
}

// Job is one delivery of a job to a consumer.
type Job struct {
	ID         string    // stream entry id; changes when Fail re-adds the job
	OriginalID string    // id the job was first enqueued with
	Payload    []byte    //
	Attempts   int       // 1 on the first delivery, MaxAttempts on the last
	EnqueuedAt time.Time // first Enqueue, kept across retries and replays
	LastError  string    // the cause given to the previous Fail, if any

	consumer string
}

// Queue is a reliable job queue on Redis Streams. It is safe for concurrent
// use; it starts no goroutines.
type Queue struct {
	client      redis.UniversalClient
	keys        Keys
	group       string
	visibility  time.Duration
	maxAttempts int
	maxLen      int64
	log         *slog.Logger
	metrics     *metrics
	closed      atomic.Bool

	mu     sync.Mutex
	cursor string // XAUTOCLAIM resumes here, so a long PEL is scanned round-robin
}

// Defaults of Config, used by its zero value and by the flags of the
// commands that set them.
const (
	DefaultName              = "darktime:jobs"
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultMaxAttempts       = 5
)

// New checks cfg, fills in defaults and creates the consumer group (and the
// stream) if they do not exist.
func New(cfg Config) (*Queue, error) {
	if cfg.Client == nil {
		return nil, errors.New("queue: Config.Client is required")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Group == "" {
		cfg.Group = "workers"
	}
	if cfg.VisibilityTimeout <= 0 {
		cfg.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if cfg.VisibilityTimeout < time.Millisecond {
		return nil, fmt.Errorf("queue: VisibilityTimeout %v is below Redis' 1ms resolution", cfg.VisibilityTimeout)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxLen < 0 {
		return nil, fmt.Errorf("queue: MaxLen %d is negative; use 0 for unbounded", cfg.MaxLen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tag := cfg.Name
	if !strings.Contains(tag, "{") {
		tag = "{" + tag + "}"
	}
	q := &Queue{
		client: cfg.Client,
		keys: Keys{
			Stream: tag + ":stream",
			Dead:   tag + ":dead",
			Stats:  tag + ":stats",
		},
		group:       cfg.Group,
		visibility:  cfg.VisibilityTimeout,
		maxAttempts: cfg.MaxAttempts,
		maxLen:      cfg.MaxLen,
		log:         cfg.Logger.With("queue", cfg.Name),
		cursor:      "0-0",
	}
	q.metrics = newMetrics(q, cfg.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.createGroup(ctx); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(q.Collector()); err != nil {
			return nil, fmt.Errorf("queue: register metrics: %w", err)
		}
	}
	return q, nil
}

// Keys returns the Redis keys the queue uses.
func (q *Queue) Keys() Keys { return q.keys }

// Close makes every later call return ErrClosed. It does not close the
// Redis client, which the caller owns. It is safe to call more than once.
func (q *Queue) Close() error {
	q.closed.Store(true)
	return nil
}

func (q *Queue) createGroup(ctx context.Context) error {
	// "0", not "$": jobs enqueued before the group existed (after a Redis
	// restart without persistence, say) are still delivered.
	err := q.client.XGroupCreateMkStream(ctx, q.keys.Stream, q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return q.redisErr("create consumer group", err)
	}
	return nil
}

func (q *Queue) redisErr(op string, err error) error {
	q.metrics.redisErrors.Inc()
	return fmt.Errorf("queue: %s on %s: %w: %w", op, q.keys.Stream, ErrUnavailable, err)
}

func isNoGroup(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOGROUP")
}

// Enqueue adds one job and returns its id once Redis has it.
func (q *Queue) Enqueue(ctx context.Context, payload []byte) (string, error) {
	ids, err := q.EnqueueBatch(ctx, [][]byte{payload})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// EnqueueBatch adds jobs in one round trip and one atomic step: either all
// are added (ids in order) or, with ErrFull, none. An error wrapping
// ErrOutcomeUnknown means they may have been added; EnqueueKeyed makes
// the retry safe.
func (q *Queue) EnqueueBatch(ctx context.Context, payloads [][]byte) ([]string, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	if len(payloads) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(payloads)+1)
	args = append(args, q.maxLen)
	for _, p := range payloads {
		args = append(args, p)
	}
	res, err := enqueueScript.Run(ctx, q.client, []string{q.keys.Stream, q.keys.Stats}, args...).StringSlice()
	if errors.Is(err, redis.Nil) {
		q.metrics.rejected.Add(float64(len(payloads)))
		return nil, fmt.Errorf("%w: %d jobs refused", ErrFull, len(payloads))
	}
	if err != nil {
		return nil, q.outcomeErr("enqueue", err)
	}
	q.metrics.enqueued.Add(float64(len(res)))
	return res, nil
}

// Claim returns up to max jobs for consumer, which must be unique per
// worker. Jobs whose visibility timeout passed come first (redelivered with
// Attempts+1; past MaxAttempts they are dead-lettered instead); then new
// jobs, waiting up to block for some to arrive when there is nothing at all
// (block <= 0 does not wait). A nil slice with a nil error means no work.
//
// go-redis does not interrupt a blocked read when ctx is cancelled, so keep
// block short (a second or two) in worker loops that must stop promptly.
func (q *Queue) Claim(ctx context.Context, consumer string, max int, block time.Duration) ([]Job, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	if consumer == "" {
		return nil, errors.New("queue: Claim needs a consumer name unique to the worker")
	}
	if max <= 0 {
		max = 1
	}
	jobs, err := q.reclaim(ctx, consumer, max)
	if isNoGroup(err) {
		if err = q.recreateGroup(ctx); err == nil {
			jobs, err = q.reclaim(ctx, consumer, max)
		}
	}
	if err != nil {
		return nil, q.redisErr("reclaim", err)
	}
	if len(jobs) == max {
		return jobs, nil
	}
	if len(jobs) > 0 || block <= 0 {
		block = -1 // no BLOCK argument: return what is there now
	}
	fresh, err := q.readNew(ctx, consumer, max-len(jobs), block)
	if isNoGroup(err) {
		if err = q.recreateGroup(ctx); err == nil {
			fresh, err = q.readNew(ctx, consumer, max-len(jobs), block)
		}
	}
	if err != nil {
		if len(jobs) > 0 {
			// The reclaimed jobs are ours now; hand them out rather than
			// leave them to time out again.
			return jobs, nil
		}
		return nil, q.redisErr("claim", err)
	}
	return append(jobs, fresh...), nil
}

func (q *Queue) recreateGroup(ctx context.Context) error {
	q.log.Warn("consumer group is missing (Redis restarted without persistence, or the key was deleted); recreating it",
		"stream", q.keys.Stream, "group", q.group)
	return q.createGroup(ctx)
}

func (q *Queue) readNew(ctx context.Context, consumer string, count int, block time.Duration) ([]Job, error) {
	streams, err := q.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    q.group,
		Consumer: consumer,
		Streams:  []string{q.keys.Stream, ">"},
		Count:    int64(count),
		Block:    block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var jobs []Job
	for _, stream := range streams {
		for _, m := range stream.Messages {
			j := Job{ID: m.ID, consumer: consumer}
			fields := make(map[string]string, len(m.Values))
			for k, v := range m.Values {
				if s, ok := v.(string); ok {
					fields[k] = s
				}
			}
			j.fill(fields, 1)
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// reclaim takes over jobs idle for longer than the visibility timeout.
func (q *Queue) reclaim(ctx context.Context, consumer string, max int) ([]Job, error) {
	q.mu.Lock()
	cursor := q.cursor
	q.mu.Unlock()
	res, err := reclaimScript.Run(ctx, q.client,
		[]string{q.keys.Stream, q.keys.Dead, q.keys.Stats},
		q.group, consumer, q.visibility.Milliseconds(), cursor, max, q.maxAttempts, q.visibility.String(),
	).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("unexpected reclaim reply %v", res)
	}
	next, _ := res[0].(string)
	q.mu.Lock()
	q.cursor = next
	q.mu.Unlock()
	if buried, _ := res[1].([]any); len(buried) > 0 {
		q.metrics.deadLettered.Add(float64(len(buried)))
		q.log.Warn("dead-lettered jobs redelivered MaxAttempts times without Ack or Fail",
			"count", len(buried), "max_attempts", q.maxAttempts, "dead_ids", buried)
	}
	var jobs []Job
	for i := 2; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		attempts, _ := res[i+1].(int64)
		kv, _ := res[i+2].([]any)
		j := Job{ID: id, consumer: consumer}
		j.fill(pairs(kv), 0)
		j.Attempts = int(attempts)
		jobs = append(jobs, j)
	}
	q.metrics.retried.Add(float64(len(jobs)))
	return jobs, nil
}

func pairs(kv []any) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		m[k] = v
	}
	return m
}

// fill sets the job's fields from its stream entry; deliveries is added to
// the attempts recorded in the entry.
func (j *Job) fill(f map[string]string, deliveries int) {
	j.Payload = []byte(f["p"])
	prior, _ := strconv.Atoi(f["a"])
	j.Attempts = prior + deliveries
	j.OriginalID = f["o"]
	if j.OriginalID == "" {
		j.OriginalID = j.ID
	}
	j.LastError = f["e"]
	ms, err := strconv.ParseInt(f["t"], 10, 64)
	if err != nil {
		ms = idMillis(j.ID)
	}
	j.EnqueuedAt = time.UnixMilli(ms)
}

// idMillis is the time part of a stream entry id "<ms>-<seq>".
func idMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

// Ack marks jobs done and deletes them, in one round trip. It returns how
// many were still claimed; ids acked before (by a worker whose job was
// reclaimed meanwhile, say) are skipped and not counted again.
func (q *Queue) Ack(ctx context.Context, ids ...string) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, q.group)
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := ackScript.Run(ctx, q.client, []string{q.keys.Stream, q.keys.Stats}, args...).Int()
	if err != nil {
		return 0, q.redisErr("ack", err)
	}
	q.metrics.acked.Add(float64(n))
	return n, nil
}

// Fail reports that a job failed with cause. With retry, and fewer than
// MaxAttempts deliveries so far, the job is re-added at the back of the
// queue at once, keeping cause as its LastError; otherwise it is moved to
// the dead-letter stream with cause, its attempts and original id. Either
// way it leaves the claimer's PEL in the same atomic step.
//
// Re-adding rather than leaving the job in the PEL means an explicit
// failure is retried immediately instead of after VisibilityTimeout, and
// the error travels with the job. Callers wanting a backoff should sleep
// before calling Fail.
//
// Fail returns ErrNotClaimed when the job is no longer claimed by the
// consumer that got it.
func (q *Queue) Fail(ctx context.Context, job Job, cause error, retry bool) error {
	if q.closed.Load() {
		return ErrClosed
	}
	text := "failed"
	if cause != nil {
		text = cause.Error()
	}
	retryArg := "0"
	if retry {
		retryArg = "1"
	}
	res, err := failScript.Run(ctx, q.client,
		[]string{q.keys.Stream, q.keys.Dead, q.keys.Stats},
		q.group, job.consumer, job.ID, q.maxAttempts, retryArg, text,
	).Slice()
	if err != nil {
		return q.redisErr("fail", err)
	}
	q.metrics.failed.Inc()
	outcome, _ := res[0].(int64)
	switch outcome {
	case failNotClaimed:
		return fmt.Errorf("fail job %s: %w", job.ID, ErrNotClaimed)
	case failRetried:
		q.metrics.retried.Inc()
	case failBuried:
		q.metrics.deadLettered.Inc()
		q.log.Warn("dead-lettered job", "id", job.ID, "original_id", job.OriginalID,
			"attempts", job.Attempts, "retry", retry, "error", text)
	}
	return nil
}
