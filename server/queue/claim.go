package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Claim returns up to max jobs for consumer, which must be unique per
// worker and used by one goroutine at a time (a partition's jobs reach a
// consumer in stream order only then). Jobs whose visibility timeout passed
// come first (redelivered with Attempts+1; past MaxAttempts they are
// dead-lettered instead); then new jobs, waiting up to block for some to
// arrive when there is nothing at all (block <= 0 does not wait). A nil
// slice with a nil error means no work.
//
// With several partitions Claim sweeps them, starting from a different one
// each call so none starves: one pipelined round of reclaims (in each
// partition at most every VisibilityTimeout/10, from 10ms to 1s, per
// process: a reclaim only finds jobs claimed a visibility timeout ago),
// then rounds of non-blocking reads in which each partition still in the
// running is asked for its share of what is missing (one that gives less
// than its share is empty for now). Only when every partition is empty
// does it wait, so that a job in any partition is noticed at once. On one
// Redis server that is one XREADGROUP blocking on every partition's
// stream. On a Redis Cluster, where one command cannot name several slots,
// it leaves one blocking read per partition running (at most one per
// partition and consumer: one waiting connection each) and returns as soon
// as one of them brings jobs; jobs the others bring later are kept for
// this consumer's next Claim, which returns them first, and a partition
// with a read outstanding is left out of the sweep until it ends. A
// partition that fails does not fail the Claim while others answer; Claim
// returns an error only when every partition it tried failed.
//
// go-redis does not interrupt a blocked read when ctx is cancelled, so keep
// block short (a second or two) in worker loops that must stop promptly.
// Jobs a blocking read brings after the consumer's last Claim stay claimed
// until their visibility timeout passes and are then redelivered.
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
	if len(q.parts) == 1 {
		return q.claimOne(ctx, q.parts[0], consumer, max, block)
	}
	if jobs := q.takeStash(consumer, max); len(jobs) > 0 {
		return jobs, nil
	}
	parts := q.sweepOrder(consumer)
	jobs, down := q.sweep(ctx, consumer, parts, max)
	if len(down) > 0 {
		var first error
		for _, p := range parts {
			if err := down[p.index]; err != nil {
				first = err
				break
			}
		}
		if len(jobs) == 0 && len(down) == len(q.parts) {
			return nil, first
		}
		q.warnDown(len(down), first)
	}
	if len(jobs) > 0 || block <= 0 {
		return jobs, nil
	}
	if _, oneServer := q.client.(*redis.Client); oneServer {
		return q.waitAll(ctx, consumer, max, block)
	}
	return q.waitIdle(consumer, max, block), nil
}

// waitAll is the wait of an idle Claim on one Redis server: one blocking
// XREADGROUP over every partition's stream (legal there: no slots), in the
// calling goroutine. Jobs beyond max wait in the consumer's stash.
func (q *Queue) waitAll(ctx context.Context, consumer string, max int, block time.Duration) ([]Job, error) {
	streams := make([]string, 0, 2*len(q.parts))
	for _, p := range q.parts {
		streams = append(streams, p.keys.Stream)
	}
	for range q.parts {
		streams = append(streams, ">")
	}
	read := func() ([]redis.XStream, error) {
		res, err := q.client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: q.group, Consumer: consumer, Streams: streams, Count: int64(max), Block: block}).Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return res, err
	}
	res, err := read()
	if isNoGroup(err) {
		// Some partition lost its group (and the read names them all).
		for _, p := range q.parts {
			if err = q.createGroup(ctx, p); err != nil {
				break
			}
		}
		if err == nil {
			res, err = read()
		}
	}
	if err != nil {
		return nil, q.redisErr(q.parts[0], "claim", err)
	}
	var jobs []Job
	for _, stream := range res {
		p := q.byStream[stream.Stream]
		if p == nil {
			continue
		}
		for _, m := range stream.Messages {
			fields := make(map[string]string, len(m.Values))
			for k, v := range m.Values {
				if s, ok := v.(string); ok {
					fields[k] = s
				}
			}
			jobs = append(jobs, newJob(p, consumer, m.ID, fields, 1))
		}
	}
	if len(jobs) > max {
		q.mu.Lock()
		st := q.idles[consumer]
		if st == nil {
			st = &idle{reading: make([]bool, len(q.parts)), wake: make(chan struct{})}
			q.idles[consumer] = st
		}
		st.stash = append(st.stash, jobs[max:]...)
		q.mu.Unlock()
		jobs = jobs[:max:max]
	}
	return jobs, nil
}

// claimOne is Claim on a single-partition queue: reclaim, then read,
// blocking when there is nothing at all — two round trips, as always.
func (q *Queue) claimOne(ctx context.Context, p *partition, consumer string, max int, block time.Duration) ([]Job, error) {
	jobs, err := q.reclaim(ctx, p, consumer, max)
	if isNoGroup(err) {
		if err = q.recreateGroup(ctx, p); err == nil {
			jobs, err = q.reclaim(ctx, p, consumer, max)
		}
	}
	if err != nil {
		return nil, q.redisErr(p, "reclaim", err)
	}
	if len(jobs) == max {
		return jobs, nil
	}
	if len(jobs) > 0 || block <= 0 {
		block = -1 // no BLOCK argument: return what is there now
	}
	fresh, err := q.readNew(ctx, p, consumer, max-len(jobs), block)
	if isNoGroup(err) {
		if err = q.recreateGroup(ctx, p); err == nil {
			fresh, err = q.readNew(ctx, p, consumer, max-len(jobs), block)
		}
	}
	if err != nil {
		if len(jobs) > 0 {
			// The reclaimed jobs are ours now; hand them out rather than
			// leave them to time out again.
			return jobs, nil
		}
		return nil, q.redisErr(p, "claim", err)
	}
	return append(jobs, fresh...), nil
}

// shares splits budget over the first min(k, budget) of k partitions, as
// evenly as it goes; the others get 0.
func shares(k, budget int) []int {
	out := make([]int, k)
	n := min(k, budget)
	if n <= 0 {
		return out
	}
	for i := range n {
		out[i] = budget / n
		if i < budget%n {
			out[i]++
		}
	}
	return out
}

// sweep claims up to max jobs from parts without blocking. down has the
// error of each partition that failed (recreating a lost group is not a
// failure).
func (q *Queue) sweep(ctx context.Context, consumer string, parts []*partition, max int) ([]Job, map[int]error) {
	down := map[int]error{}
	if len(parts) == 0 {
		return nil, down
	}
	var jobs []Job
	// Reclaims: one script per partition due for one, in one pipeline.
	now := time.Now()
	var due []*partition
	for _, p := range parts {
		p.mu.Lock()
		if now.Sub(p.reclaimed) >= q.reclaimEvery {
			p.reclaimed = now
			due = append(due, p)
		}
		p.mu.Unlock()
	}
	asks := shares(len(due), max)
	var calls []*call
	for i, p := range due {
		if asks[i] > 0 {
			calls = append(calls, q.reclaimCall(p, consumer, asks[i]))
		}
	}
	q.evalAll(ctx, reclaimScript, calls)
	cands := make([]*partition, 0, len(parts))
	for i, c := range calls {
		got, err := q.reclaimed(c.p, consumer, c.cmd)
		if isNoGroup(err) {
			err = q.recreateGroup(ctx, c.p)
		}
		if err != nil {
			down[c.p.index] = q.redisErr(c.p, "reclaim", err)
			continue
		}
		if len(got) == asks[i] {
			// There may be more: reclaim here again on the next sweep.
			c.p.mu.Lock()
			c.p.reclaimed = time.Time{}
			c.p.mu.Unlock()
		}
		jobs = append(jobs, got...)
	}
	for _, p := range parts {
		if _, failed := down[p.index]; !failed {
			cands = append(cands, p)
		}
	}
	// Reads: rounds over the partitions that may have more.
	for budget := max - len(jobs); budget > 0 && len(cands) > 0; budget = max - len(jobs) {
		asks := shares(len(cands), budget)
		cmds := make([]*redis.XStreamSliceCmd, len(cands))
		_, _ = q.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, p := range cands {
				if asks[i] > 0 {
					cmds[i] = pipe.XReadGroup(ctx, q.readArgs(p, consumer, asks[i], -1))
				}
			}
			return nil
		})
		var next, full []*partition
		for i, p := range cands {
			if asks[i] == 0 {
				next = append(next, p) // not asked this round
				continue
			}
			got, err := q.readJobs(p, consumer, cmds[i])
			if isNoGroup(err) {
				err = q.recreateGroup(ctx, p) // read again by the next Claim
			}
			if err != nil {
				down[p.index] = q.redisErr(p, "claim", err)
				continue
			}
			jobs = append(jobs, got...)
			if len(got) == asks[i] {
				full = append(full, p)
			}
		}
		cands = append(next, full...)
	}
	return jobs, down
}

// sweepOrder lists the partitions from the next in turn, leaving out
// those consumer has a blocking read on.
func (q *Queue) sweepOrder(consumer string) []*partition {
	n := len(q.parts)
	start := int(q.next.Add(1) % uint64(n))
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.idles[consumer]
	out := make([]*partition, 0, n)
	for k := range n {
		p := q.parts[(start+k)%n]
		if st != nil && st.reading[p.index] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// warnDown logs, at most every 5 seconds, that some partitions fail.
func (q *Queue) warnDown(n int, err error) {
	now := time.Now().UnixMilli()
	last := q.warned.Load()
	if now-last < 5000 || !q.warned.CompareAndSwap(last, now) {
		return
	}
	q.log.Warn("claim: partitions unavailable; claiming from the others", "down", n, "partitions", len(q.parts), "err", err)
}

func (q *Queue) recreateGroup(ctx context.Context, p *partition) error {
	q.log.Warn("consumer group is missing (Redis restarted without persistence, or the key was deleted); recreating it",
		"stream", p.keys.Stream, "group", q.group)
	return q.createGroup(ctx, p)
}

func (q *Queue) readArgs(p *partition, consumer string, count int, block time.Duration) *redis.XReadGroupArgs {
	return &redis.XReadGroupArgs{
		Group:    q.group,
		Consumer: consumer,
		Streams:  []string{p.keys.Stream, ">"},
		Count:    int64(count),
		Block:    block,
	}
}

func (q *Queue) readNew(ctx context.Context, p *partition, consumer string, count int, block time.Duration) ([]Job, error) {
	return q.readJobs(p, consumer, q.client.XReadGroup(ctx, q.readArgs(p, consumer, count, block)))
}

func (q *Queue) readJobs(p *partition, consumer string, cmd *redis.XStreamSliceCmd) ([]Job, error) {
	streams, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var jobs []Job
	for _, stream := range streams {
		for _, m := range stream.Messages {
			fields := make(map[string]string, len(m.Values))
			for k, v := range m.Values {
				if s, ok := v.(string); ok {
					fields[k] = s
				}
			}
			jobs = append(jobs, newJob(p, consumer, m.ID, fields, 1))
		}
	}
	return jobs, nil
}

func (q *Queue) reclaimCall(p *partition, consumer string, max int) *call {
	p.mu.Lock()
	cursor := p.cursor
	p.mu.Unlock()
	return &call{p: p, keys: []string{p.keys.Stream, p.keys.Dead, p.keys.Stats},
		args: []any{q.group, consumer, q.visibility.Milliseconds(), cursor, max, q.maxAttempts, q.visibility.String()}}
}

// reclaim takes over jobs idle for longer than the visibility timeout.
func (q *Queue) reclaim(ctx context.Context, p *partition, consumer string, max int) ([]Job, error) {
	c := q.reclaimCall(p, consumer, max)
	q.evalAll(ctx, reclaimScript, []*call{c})
	return q.reclaimed(p, consumer, c.cmd)
}

// reclaimed reads the reclaim script's answer.
func (q *Queue) reclaimed(p *partition, consumer string, cmd *redis.Cmd) ([]Job, error) {
	res, err := cmd.Slice()
	if err != nil {
		return nil, err
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("unexpected reclaim reply %v", res)
	}
	next, _ := res[0].(string)
	p.mu.Lock()
	p.cursor = next
	p.mu.Unlock()
	if buried, _ := res[1].([]any); len(buried) > 0 {
		q.metrics.deadLettered.Add(float64(len(buried)))
		q.log.Warn("dead-lettered jobs redelivered MaxAttempts times without Ack or Fail",
			"count", len(buried), "max_attempts", q.maxAttempts, "dead_ids", prefixed(p, buried))
	}
	var jobs []Job
	for i := 2; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		attempts, _ := res[i+1].(int64)
		kv, _ := res[i+2].([]any)
		j := newJob(p, consumer, id, pairs(kv), 0)
		j.Attempts = int(attempts)
		jobs = append(jobs, j)
	}
	q.metrics.retried.Add(float64(len(jobs)))
	return jobs, nil
}

func prefixed(p *partition, ids []any) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		s, _ := id.(string)
		out[i] = p.prefix + s
	}
	return out
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

// newJob makes a Job of stream entry id of partition p from the entry's
// fields; deliveries is added to the attempts recorded in the entry.
func newJob(p *partition, consumer, id string, f map[string]string, deliveries int) Job {
	j := Job{ID: p.prefix + id, consumer: consumer, Payload: []byte(f["p"]), LastError: f["e"]}
	prior, _ := strconv.Atoi(f["a"])
	j.Attempts = prior + deliveries
	j.OriginalID = j.ID
	if o := f["o"]; o != "" {
		j.OriginalID = p.prefix + o
	}
	ms, err := strconv.ParseInt(f["t"], 10, 64)
	if err != nil {
		ms = idMillis(id)
	}
	j.EnqueuedAt = time.UnixMilli(ms)
	return j
}

// idMillis is the time part of a stream entry id "<ms>-<seq>".
func idMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

// idle is what the idle Claims of one consumer left running: at most one
// blocking read per partition, and the jobs they brought since.
type idle struct {
	reading []bool
	stash   []Job
	wake    chan struct{} // closed (and replaced) whenever a read ends
}

// takeStash returns up to max of the jobs consumer's blocking reads
// brought, oldest first.
func (q *Queue) takeStash(consumer string, max int) []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.idles[consumer]
	if st == nil {
		return nil
	}
	return q.take(consumer, st, max)
}

// take is takeStash with q.mu held; it forgets a consumer with nothing
// left running.
func (q *Queue) take(consumer string, st *idle, max int) []Job {
	n := min(max, len(st.stash))
	jobs := st.stash[:n:n]
	st.stash = st.stash[n:]
	if len(st.stash) == 0 {
		st.stash = nil
		if !anyTrue(st.reading) {
			delete(q.idles, consumer)
		}
	}
	return jobs
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// waitIdle starts a blocking read on every partition consumer has none on
// and waits until one brings jobs, every read has ended, or block (and a
// little) has passed.
func (q *Queue) waitIdle(consumer string, max int, block time.Duration) []Job {
	timer := time.NewTimer(block + 100*time.Millisecond)
	defer timer.Stop()
	q.mu.Lock()
	st := q.idles[consumer]
	if st == nil {
		st = &idle{reading: make([]bool, len(q.parts)), wake: make(chan struct{})}
		q.idles[consumer] = st
	}
	if !q.closed.Load() {
		for i, p := range q.parts {
			if !st.reading[i] {
				st.reading[i] = true
				q.wg.Add(1)
				go q.blockRead(consumer, st, p, max, block)
			}
		}
	}
	for {
		if len(st.stash) > 0 || !anyTrue(st.reading) {
			jobs := q.take(consumer, st, max)
			q.mu.Unlock()
			return jobs
		}
		wake := st.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return nil
		}
		q.mu.Lock()
	}
}

// blockRead is one blocking read of an idle Claim; what it brings waits in
// the consumer's stash.
func (q *Queue) blockRead(consumer string, st *idle, p *partition, max int, block time.Duration) {
	defer q.wg.Done()
	ctx := context.Background()
	jobs, err := q.readNew(ctx, p, consumer, max, block)
	if isNoGroup(err) {
		err = q.recreateGroup(ctx, p)
	}
	if err != nil && !q.closed.Load() {
		q.failed()
		q.log.Debug("blocking read failed", "stream", p.keys.Stream, "err", err)
	}
	q.mu.Lock()
	st.stash = append(st.stash, jobs...)
	st.reading[p.index] = false
	close(st.wake)
	st.wake = make(chan struct{})
	q.mu.Unlock()
}
