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
	// *redis.ClusterClient or *redis.Ring shard all work: every key of a
	// partition shares one hash tag.
	Client redis.UniversalClient
	// Name prefixes the keys; default "darktime:jobs". With one partition
	// it becomes the hash tag {Name} unless it already contains a '{';
	// with several, each partition has a tag of its own and Name may not
	// contain braces.
	Name string
	// Partitions spreads the queue over that many partition streams, each
	// on a hash slot of its own, so on a Redis Cluster the queue spreads
	// over the shards; a job's routing key picks its partition (see
	// KeyedJob.Partition). Default 1 on one Redis (the single-partition
	// layout of earlier versions, keys unchanged) and
	// DefaultClusterPartitions on a *redis.ClusterClient; at most
	// MaxPartitions. Every process of one queue must use the same count:
	// New records it in Redis and refuses another with
	// ErrPartitionMismatch. On a cluster an idle Claim holds one
	// connection per partition (see Claim), out of go-redis's pool of each
	// master.
	Partitions int
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
	// ErrFull beyond it. 0 means unbounded. With several partitions each
	// partition holds at most MaxLen/Partitions (rounded up): a partition
	// with a hot object fills, and refuses, before the others.
	MaxLen int64
	// Logger receives warnings about dead-lettered jobs and a recreated
	// consumer group; default discards.
	Logger *slog.Logger
	// Registerer, when set, gets the queue's collector (see Collector).
	Registerer prometheus.Registerer
}

// Keys names the Redis keys of one partition of a queue.
type Keys struct {
	Stream string // the jobs, with the consumer group
	Dead   string // dead letters
	Stats  string // shared counters
}

// Job is one delivery of a job to a consumer.
type Job struct {
	// ID names this delivery's stream entry; it changes when Fail re-adds
	// the job. With several partitions it is prefixed with the
	// partition's index ("3/1733000000000-0"); pass it to Ack and Fail.
	ID         string
	OriginalID string    // id the job was first enqueued with (prefixed as ID is)
	Payload    []byte    //
	Attempts   int       // 1 on the first delivery, MaxAttempts on the last
	EnqueuedAt time.Time // first Enqueue, kept across retries and replays
	LastError  string    // the cause given to the previous Fail, if any

	consumer string
}

// Queue is a reliable job queue on Redis Streams, in one or more
// partitions. It is safe for concurrent use. Its only goroutines are the
// blocking reads an idle Claim of a partitioned queue on a Redis Cluster
// leaves running; Close waits for them.
type Queue struct {
	client      redis.UniversalClient
	name        string
	meta        string // key recording the partition count
	parts       []*partition
	group       string
	visibility  time.Duration
	maxAttempts int
	maxLen      int64 // per partition
	log         *slog.Logger
	metrics     *metrics
	closed      atomic.Bool
	byStream    map[string]*partition
	// reclaimEvery is how often a sweep reclaims in each partition (of
	// several): a reclaim finds only jobs claimed a visibility timeout ago,
	// and running one per partition on every Claim would double its
	// commands.
	reclaimEvery time.Duration
	next         atomic.Uint64 // rotates Claim's first partition and EnqueueBatch's partition
	warned       atomic.Int64  // unix ms of the last warning about partitions failing a Claim

	mu    sync.Mutex
	idles map[string]*idle // per consumer: what its idle Claims left running
	wg    sync.WaitGroup   // those blocking reads
}

// Defaults of Config, used by its zero value and by the flags of the
// commands that set them.
const (
	DefaultName              = "darktime:jobs"
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultMaxAttempts       = 5
)

// New checks cfg, fills in defaults, checks (or records) the partition
// count in Redis, and creates the consumer groups (and the streams) if
// they do not exist.
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
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
		if _, ok := cfg.Client.(*redis.ClusterClient); ok {
			cfg.Partitions = DefaultClusterPartitions
		}
	}
	if cfg.Partitions < 0 || cfg.Partitions > MaxPartitions {
		return nil, fmt.Errorf("queue: Partitions %d: want 1 to %d (0: the default)", cfg.Partitions, MaxPartitions)
	}
	if cfg.Partitions > 1 && strings.ContainsAny(cfg.Name, "{}") {
		return nil, fmt.Errorf("queue: Name %q has a hash tag, but a queue of %d partitions gives each partition a tag of its own: drop the braces", cfg.Name, cfg.Partitions)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		client:      cfg.Client,
		name:        cfg.Name,
		meta:        legacyTag(cfg.Name) + ":meta",
		group:       cfg.Group,
		visibility:  cfg.VisibilityTimeout,
		maxAttempts: cfg.MaxAttempts,
		maxLen:      (cfg.MaxLen + int64(cfg.Partitions) - 1) / int64(cfg.Partitions),
		log:         cfg.Logger.With("queue", cfg.Name),
		idles:       map[string]*idle{},
	}
	if cfg.Partitions == 1 {
		q.parts = []*partition{newPartition(0, legacyTag(cfg.Name), "")}
	} else {
		for i := range cfg.Partitions {
			tag, err := partitionTag(cfg.Name, i, cfg.Partitions)
			if err != nil {
				return nil, err
			}
			q.parts = append(q.parts, newPartition(i, tag, strconv.Itoa(i)+"/"))
		}
	}
	q.byStream = map[string]*partition{}
	for _, p := range q.parts {
		q.byStream[p.keys.Stream] = p
	}
	q.reclaimEvery = min(max(cfg.VisibilityTimeout/10, 10*time.Millisecond), time.Second)
	q.metrics = newMetrics(q, cfg.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.checkPartitions(ctx); err != nil {
		return nil, err
	}
	for _, p := range q.parts {
		if err := q.createGroup(ctx, p); err != nil {
			return nil, err
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(q.Collector()); err != nil {
			return nil, fmt.Errorf("queue: register metrics: %w", err)
		}
	}
	return q, nil
}

// checkPartitions records the partition count in the meta key, or checks
// it against the one recorded.
func (q *Queue) checkPartitions(ctx context.Context) error {
	legacy := legacyTag(q.name)
	n, err := metaScript.Run(ctx, q.client, []string{q.meta, legacy + ":stream", legacy + ":dead"}, len(q.parts)).Int()
	switch {
	case err != nil:
		q.failed()
		return fmt.Errorf("queue: read the partition count from %s: %w: %w", q.meta, ErrUnavailable, err)
	case n == -1:
		return fmt.Errorf("%w: %s still holds jobs or dead letters of the single-partition layout; drain it with workers started with --queue-partitions 1 before using %d partitions", ErrPartitionMismatch, legacy+":stream", len(q.parts))
	case n != len(q.parts):
		return fmt.Errorf("%w: queue %s has %d partitions (recorded in %s) and this process asks for %d: give every server and worker the same --queue-partitions (to change the count, drain the queue and DEL %s)",
			ErrPartitionMismatch, q.name, n, q.meta, len(q.parts), q.meta)
	}
	return nil
}

// VisibilityTimeout is how long a claimed job may go without Ack or Fail
// before it may be reclaimed (Config.VisibilityTimeout).
func (q *Queue) VisibilityTimeout() time.Duration { return q.visibility }

// Keys returns the Redis keys of each partition, by index.
func (q *Queue) Keys() []Keys {
	out := make([]Keys, len(q.parts))
	for i, p := range q.parts {
		out[i] = p.keys
	}
	return out
}

// Close makes every later call return ErrClosed and waits for the
// blocking reads of idle Claims (each ends within the block it was given,
// plus the client's read timeout). It does not close the Redis client,
// which the caller owns. It is safe to call more than once.
func (q *Queue) Close() error {
	q.mu.Lock()
	q.closed.Store(true)
	q.mu.Unlock()
	q.wg.Wait()
	return nil
}

func (q *Queue) createGroup(ctx context.Context, p *partition) error {
	// "0", not "$": jobs enqueued before the group existed (after a Redis
	// restart without persistence, say) are still delivered.
	err := q.client.XGroupCreateMkStream(ctx, p.keys.Stream, q.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return q.redisErr(p, "create consumer group", err)
	}
	return nil
}

func (q *Queue) redisErr(p *partition, op string, err error) error {
	q.failed()
	return fmt.Errorf("queue: %s on %s: %w: %w", op, p.keys.Stream, ErrUnavailable, err)
}

// failed counts a failed Redis operation and, on a cluster, has go-redis
// learn the topology again (it does on MOVED, not when a master stops
// answering: its replica may have taken over). go-redis coalesces the
// reloads.
func (q *Queue) failed() {
	q.metrics.redisErrors.Inc()
	if cc, ok := q.client.(*redis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
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
// are added (ids in order) or, with ErrFull, none. The whole batch goes to
// one partition, taken in turn (jobs without a routing key have no order
// to keep across calls). An error wrapping ErrOutcomeUnknown means they may
// have been added; EnqueueKeyed makes the retry safe.
func (q *Queue) EnqueueBatch(ctx context.Context, payloads [][]byte) ([]string, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	if len(payloads) == 0 {
		return nil, nil
	}
	p := q.parts[q.next.Add(1)%uint64(len(q.parts))]
	args := make([]any, 0, len(payloads)+1)
	args = append(args, q.maxLen)
	for _, pl := range payloads {
		args = append(args, pl)
	}
	res, err := enqueueScript.Run(ctx, q.client, []string{p.keys.Stream, p.keys.Stats}, args...).StringSlice()
	if errors.Is(err, redis.Nil) {
		q.metrics.rejected.Add(float64(len(payloads)))
		return nil, fmt.Errorf("%w: %d jobs refused by %s", ErrFull, len(payloads), p.keys.Stream)
	}
	if err != nil {
		return nil, q.outcomeErr(p, "enqueue", err)
	}
	q.metrics.enqueued.Add(float64(len(res)))
	for i := range res {
		res[i] = p.prefix + res[i]
	}
	return res, nil
}

// Ack marks jobs done and deletes them, in one round trip per partition
// (one pipeline when they span several). It returns how many were still
// claimed; ids acked before (by a worker whose job was reclaimed
// meanwhile, say) are skipped and not counted again. When some partitions
// fail, the others' jobs are still acked: the count is theirs, and the
// error says which failed.
func (q *Queue) Ack(ctx context.Context, ids ...string) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	if len(ids) == 0 {
		return 0, nil
	}
	groups, order, err := q.byPartition(ids)
	if err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	calls := make([]*call, len(order))
	for i, pi := range order {
		p := q.parts[pi]
		args := make([]any, 0, len(groups[pi])+1)
		args = append(args, q.group)
		for _, e := range groups[pi] {
			args = append(args, e)
		}
		calls[i] = &call{p: p, keys: []string{p.keys.Stream, p.keys.Stats}, args: args}
	}
	q.evalAll(ctx, ackScript, calls)
	total := 0
	var errs []error
	for _, c := range calls {
		n, err := c.cmd.Int()
		if err != nil {
			errs = append(errs, q.redisErr(c.p, "ack", err))
			continue
		}
		total += n
	}
	q.metrics.acked.Add(float64(total))
	return total, errors.Join(errs...)
}

// Fail reports that a job failed with cause. With retry, and fewer than
// MaxAttempts deliveries so far, the job is re-added at the back of its
// partition at once, keeping cause as its LastError; otherwise it is moved
// to the partition's dead-letter stream with cause, its attempts and
// original id. Either way it leaves the claimer's PEL in the same atomic
// step.
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
	pi, entry, err := parseID(job.ID, len(q.parts))
	if err != nil {
		return fmt.Errorf("fail: %w", err)
	}
	p := q.parts[pi]
	text := "failed"
	if cause != nil {
		text = cause.Error()
	}
	retryArg := "0"
	if retry {
		retryArg = "1"
	}
	res, err := failScript.Run(ctx, q.client,
		[]string{p.keys.Stream, p.keys.Dead, p.keys.Stats},
		q.group, job.consumer, entry, q.maxAttempts, retryArg, text,
	).Slice()
	if err != nil {
		return q.redisErr(p, "fail", err)
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

// call is one script call on one partition, for evalAll.
type call struct {
	p    *partition
	keys []string
	args []any
	cmd  *redis.Cmd
}

// evalAll runs script once per call: alone when there is one, else all in
// one pipeline (on a cluster go-redis sends each call to its slot's
// master, the masters in parallel). A call whose master lost its script
// cache (a restart, a promoted replica) ran nothing and is run again alone.
func (q *Queue) evalAll(ctx context.Context, script *redis.Script, calls []*call) {
	switch len(calls) {
	case 0:
		return
	case 1:
		c := calls[0]
		c.cmd = script.Run(ctx, q.client, c.keys, c.args...)
		return
	}
	_, _ = q.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, c := range calls {
			c.cmd = script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		return nil
	})
	for _, c := range calls {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			c.cmd = script.Run(ctx, q.client, c.keys, c.args...)
		}
	}
}
