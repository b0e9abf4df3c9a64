package queue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/redis/go-redis/v9"
)

func TestNewConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without Client: want error")
	}
	q, srv := newTestQueue(t, Config{})
	if q.visibility != 30*time.Second || q.maxAttempts != 5 || q.group != "workers" || q.maxLen != 0 {
		t.Fatalf("defaults: visibility %v, max attempts %d, group %q, maxlen %d", q.visibility, q.maxAttempts, q.group, q.maxLen)
	}
	want := Keys{Stream: "{darktime:jobs}:stream", Dead: "{darktime:jobs}:dead", Stats: "{darktime:jobs}:stats"}
	if keys := q.Keys(); len(keys) != 1 || keys[0] != want || q.Partitions() != 1 {
		t.Fatalf("Keys() = %+v, want one partition with %+v", keys, want)
	}
	// A second New on the same keys finds the group (BUSYGROUP is fine).
	q2, err := New(Config{Client: srv.Client(), Name: "{custom}.jobs"})
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if q2.Keys()[0].Stream != "{custom}.jobs:stream" {
		t.Fatalf("a Name with its own hash tag is kept: %q", q2.Keys()[0].Stream)
	}
	if _, err := New(Config{Client: srv.Client()}); err != nil {
		t.Fatalf("New on an existing group: %v", err)
	}
}

func TestEnqueueClaimAck(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{})
	ctx := testCtx(t)
	before := time.Now().Add(-time.Second)

	id, err := q.Enqueue(ctx, []byte("one"))
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	ids := mustEnqueue(t, q, "two", "three", "four")
	if len(ids) != 3 {
		t.Fatalf("EnqueueBatch returned %d ids, want 3", len(ids))
	}
	if s := checkBalanced(t, q, "after enqueue"); s.Depth != 4 || s.Enqueued != 4 {
		t.Fatalf("after enqueue: %+v", s)
	}

	jobs := mustClaim(t, q, "w1", 3)
	if len(jobs) != 3 {
		t.Fatalf("claimed %d, want 3", len(jobs))
	}
	j := jobs[0]
	if j.ID != id || string(j.Payload) != "one" || j.Attempts != 1 || j.OriginalID != id || j.LastError != "" {
		t.Fatalf("first job = %+v", j)
	}
	if j.EnqueuedAt.Before(before) || j.EnqueuedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("EnqueuedAt = %v", j.EnqueuedAt)
	}
	if s := checkBalanced(t, q, "after claim"); s.Depth != 1 || s.InFlight != 3 {
		t.Fatalf("after claim: %+v", s)
	}

	n, err := q.Ack(ctx, jobs[0].ID, jobs[1].ID, jobs[2].ID)
	if err != nil || n != 3 {
		t.Fatalf("Ack = %d, %v; want 3", n, err)
	}
	// Acking again is harmless and not counted twice.
	if n, err := q.Ack(ctx, jobs[0].ID); err != nil || n != 0 {
		t.Fatalf("second Ack = %d, %v; want 0", n, err)
	}
	rest := mustClaim(t, q, "w2", 10)
	if len(rest) != 1 || string(rest[0].Payload) != "four" {
		t.Fatalf("second claim = %+v", rest)
	}
	if _, err := q.Ack(ctx, rest[0].ID); err != nil {
		t.Fatal(err)
	}
	s := checkBalanced(t, q, "at rest")
	if s != (Stats{Enqueued: 4, Acked: 4}) {
		t.Fatalf("at rest: %+v", s)
	}
	// Acked jobs are deleted, so the stream does not grow with finished work.
	if n := q.client.XLen(ctx, q.parts[0].keys.Stream).Val(); n != 0 {
		t.Fatalf("XLEN after acking everything = %d", n)
	}
	if jobs := mustClaim(t, q, "w1", 10); len(jobs) != 0 {
		t.Fatalf("claim on an empty queue = %+v", jobs)
	}
}

func TestClaimBlocksUntilEnqueue(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{})
	ctx := testCtx(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = q.Enqueue(ctx, []byte("late"))
	}()
	start := time.Now()
	jobs, err := q.Claim(ctx, "w1", 10, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || string(jobs[0].Payload) != "late" {
		t.Fatalf("Claim = %+v", jobs)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("Claim returned after %v, want soon after the enqueue", time.Since(start))
	}
	// With nothing to claim, a short block returns empty, not an error.
	jobs, err = q.Claim(ctx, "w1", 10, 50*time.Millisecond)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("Claim on empty queue = %v, %v", jobs, err)
	}
}

func TestVisibilityTimeoutRedelivery(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{VisibilityTimeout: 200 * time.Millisecond})
	ctx := testCtx(t)
	id := mustEnqueue(t, q, "stalls")[0]

	got := mustClaim(t, q, "crashy", 1)
	if len(got) != 1 || got[0].Attempts != 1 {
		t.Fatalf("first claim = %+v", got)
	}
	// Before the timeout nobody else gets it.
	if again := mustClaim(t, q, "healthy", 1); len(again) != 0 {
		t.Fatalf("claimed before the visibility timeout: %+v", again)
	}
	var re []Job
	tstest.WaitFor(t, 3*time.Second, "redelivery", func() bool {
		re = mustClaim(t, q, "healthy", 1)
		return len(re) == 1
	})
	if re[0].ID != id || re[0].Attempts != 2 || string(re[0].Payload) != "stalls" {
		t.Fatalf("redelivered job = %+v, want id %s with Attempts 2", re[0], id)
	}
	if s := checkBalanced(t, q, "after redelivery"); s.Retried != 1 || s.InFlight != 1 {
		t.Fatalf("after redelivery: %+v", s)
	}
	// The stalled worker lost the job: it may not fail it...
	if err := q.Fail(ctx, got[0], errors.New("late"), true); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Fail by the stalled worker = %v, want ErrNotClaimed", err)
	}
	// ...but the new owner acks it once.
	if n, err := q.Ack(ctx, re[0].ID); err != nil || n != 1 {
		t.Fatalf("Ack = %d, %v", n, err)
	}
	checkBalanced(t, q, "at rest")
}

func TestRedeliveryAloneEndsDead(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{VisibilityTimeout: 50 * time.Millisecond, MaxAttempts: 3})
	id := mustEnqueue(t, q, "poison")[0]

	// A worker that crashes on the job every time: claims, never acks.
	deliveries := 0
	tstest.WaitFor(t, 5*time.Second, "dead letter", func() bool {
		for _, j := range mustClaim(t, q, "crashy", 1) {
			deliveries++
			if j.Attempts != deliveries {
				t.Fatalf("delivery %d has Attempts %d", deliveries, j.Attempts)
			}
		}
		return mustStats(t, q).Dead == 1
	})
	if deliveries != 3 {
		t.Fatalf("delivered %d times, want MaxAttempts = 3", deliveries)
	}
	dead, err := q.Dead(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].OriginalID != id || dead[0].Attempts != 3 || !strings.Contains(dead[0].Error, "without Ack or Fail") {
		t.Fatalf("dead letters = %+v", dead)
	}
	if s := checkBalanced(t, q, "at rest"); s.DeadLettered != 1 || s.Depth+s.InFlight != 0 {
		t.Fatalf("at rest: %+v", s)
	}
}

func TestFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retry      bool
		wantDeaths int // Fail calls before the job is dead
	}{
		{name: "retry until MaxAttempts", retry: true, wantDeaths: 3},
		{name: "reject dies at once", retry: false, wantDeaths: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, _ := newTestQueue(t, Config{MaxAttempts: 3})
			ctx := testCtx(t)
			id := mustEnqueue(t, q, "flaky")[0]
			enqueuedAt := time.UnixMilli(idMillis(id))

			var last Job
			for i := 1; i <= tt.wantDeaths; i++ {
				jobs := mustClaim(t, q, "w", 1)
				if len(jobs) != 1 {
					t.Fatalf("attempt %d: claimed %d jobs", i, len(jobs))
				}
				last = jobs[0]
				if last.Attempts != i || last.OriginalID != id || string(last.Payload) != "flaky" || !last.EnqueuedAt.Equal(enqueuedAt) {
					t.Fatalf("attempt %d: job = %+v", i, last)
				}
				if i > 1 && last.LastError != "boom "+string(rune('0'+i-1)) {
					t.Fatalf("attempt %d: LastError = %q", i, last.LastError)
				}
				if err := q.Fail(ctx, last, errors.New("boom "+string(rune('0'+i))), tt.retry); err != nil {
					t.Fatalf("attempt %d: Fail: %v", i, err)
				}
				checkBalanced(t, q, "after Fail")
			}
			if jobs := mustClaim(t, q, "w", 1); len(jobs) != 0 {
				t.Fatalf("dead job was delivered again: %+v", jobs)
			}
			dead, err := q.Dead(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			want := "boom " + string(rune('0'+tt.wantDeaths))
			if len(dead) != 1 || dead[0].Error != want || dead[0].Attempts != tt.wantDeaths ||
				dead[0].OriginalID != id || string(dead[0].Payload) != "flaky" || !dead[0].EnqueuedAt.Equal(enqueuedAt) {
				t.Fatalf("dead letters = %+v, want one with error %q and %d attempts", dead, want, tt.wantDeaths)
			}
			s := checkBalanced(t, q, "at rest")
			if s.DeadLettered != 1 || s.Retried != int64(tt.wantDeaths-1) || s.Dead != 1 {
				t.Fatalf("at rest: %+v", s)
			}
			// Failing it again: it is gone.
			if err := q.Fail(ctx, last, nil, true); !errors.Is(err, ErrNotClaimed) {
				t.Fatalf("Fail on a dead job = %v, want ErrNotClaimed", err)
			}
		})
	}
}

func TestReplayDead(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{MaxAttempts: 2})
	ctx := testCtx(t)
	mustEnqueue(t, q, payloads(5, "job")...)
	for _, j := range mustClaim(t, q, "w", 5) {
		if err := q.Fail(ctx, j, errors.New("bad input"), false); err != nil {
			t.Fatal(err)
		}
	}
	dead, err := q.Dead(ctx, 0)
	if err != nil || len(dead) != 5 {
		t.Fatalf("Dead = %d, %v; want 5", len(dead), err)
	}
	if limited, _ := q.Dead(ctx, 2); len(limited) != 2 {
		t.Fatalf("Dead(limit 2) = %d entries", len(limited))
	}

	// Replay two by id (plus one unknown id, skipped).
	n, err := q.ReplayDead(ctx, dead[0].ID, dead[3].ID, "1-1")
	if err != nil || n != 2 {
		t.Fatalf("ReplayDead(ids) = %d, %v; want 2", n, err)
	}
	jobs := mustClaim(t, q, "w", 10)
	if len(jobs) != 2 || string(jobs[0].Payload) != "job-0" || string(jobs[1].Payload) != "job-3" {
		t.Fatalf("replayed jobs = %+v", jobs)
	}
	for i, j := range jobs {
		if j.Attempts != 1 || j.OriginalID != dead[[]int{0, 3}[i]].OriginalID {
			t.Fatalf("replayed job %d = %+v: want attempts reset and the original id kept", i, j)
		}
	}
	if _, err := q.Ack(ctx, jobs[0].ID, jobs[1].ID); err != nil {
		t.Fatal(err)
	}

	// Replay the rest.
	n, err = q.ReplayDead(ctx)
	if err != nil || n != 3 {
		t.Fatalf("ReplayDead() = %d, %v; want 3", n, err)
	}
	s := checkBalanced(t, q, "after replay")
	if s.Dead != 0 || s.Depth != 3 || s.Replayed != 5 || s.DeadLettered != 5 {
		t.Fatalf("after replay: %+v", s)
	}
}

func TestReplayAllInChunks(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{})
	ctx := testCtx(t)
	const n = replayChunk*2 + 7
	mustEnqueue(t, q, payloads(n, "j")...)
	jobs := mustClaim(t, q, "w", n)
	for _, j := range jobs {
		if err := q.Fail(ctx, j, errors.New("x"), false); err != nil {
			t.Fatal(err)
		}
	}
	got, err := q.ReplayDead(ctx)
	if err != nil || got != n {
		t.Fatalf("ReplayDead() = %d, %v; want %d", got, err, n)
	}
	if s := checkBalanced(t, q, "after replay"); s.Depth != n || s.Dead != 0 {
		t.Fatalf("after replay: %+v", s)
	}
}

func TestErrFull(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{MaxLen: 3})
	ctx := testCtx(t)
	mustEnqueue(t, q, "a", "b")
	// A batch that does not fit is refused whole.
	if _, err := q.EnqueueBatch(ctx, [][]byte{[]byte("c"), []byte("d")}); !errors.Is(err, ErrFull) {
		t.Fatalf("EnqueueBatch over MaxLen = %v, want ErrFull", err)
	}
	if _, err := q.Enqueue(ctx, []byte("c")); err != nil {
		t.Fatalf("Enqueue up to MaxLen: %v", err)
	}
	if _, err := q.Enqueue(ctx, []byte("d")); !errors.Is(err, ErrFull) {
		t.Fatalf("Enqueue at MaxLen = %v, want ErrFull", err)
	}
	// Claimed jobs still count: they are not done.
	jobs := mustClaim(t, q, "w", 3)
	if _, err := q.Enqueue(ctx, []byte("d")); !errors.Is(err, ErrFull) {
		t.Fatalf("Enqueue with 3 in flight = %v, want ErrFull", err)
	}
	if _, err := q.Ack(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, []byte("d")); err != nil {
		t.Fatalf("Enqueue after an ack: %v", err)
	}
	if s := checkBalanced(t, q, "at rest"); s.Enqueued != 4 {
		t.Fatalf("refused jobs were counted: %+v", s)
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// No retries, so the test does not wait out go-redis' backoff.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	q, err := New(Config{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx := testCtx(t)
	if _, err := q.Enqueue(ctx, []byte("x")); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrFull) {
		t.Fatalf("Enqueue with Redis down = %v, want ErrUnavailable", err)
	}
	if _, err := q.Claim(ctx, "w", 1, 0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Claim with Redis down = %v, want ErrUnavailable", err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{})
	ctx := testCtx(t)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Enqueue"] = q.Enqueue(ctx, nil)
	_, checks["Claim"] = q.Claim(ctx, "w", 1, 0)
	_, checks["Ack"] = q.Ack(ctx, "1-1")
	checks["Fail"] = q.Fail(ctx, Job{ID: "1-1"}, nil, true)
	_, checks["Dead"] = q.Dead(ctx, 1)
	_, checks["ReplayDead"] = q.ReplayDead(ctx)
	_, checks["Stats"] = q.Stats(ctx)
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
}

func TestBinaryPayload(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{})
	ctx := testCtx(t)
	payload := []byte{0, 1, 2, 0xff, '\n', 0, 'x'}
	if _, err := q.Enqueue(ctx, payload); err != nil {
		t.Fatal(err)
	}
	jobs := mustClaim(t, q, "w", 1)
	if len(jobs) != 1 || string(jobs[0].Payload) != string(payload) {
		t.Fatalf("payload = %q, want %q", jobs[0].Payload, payload)
	}
	// Through a retry too.
	if err := q.Fail(ctx, jobs[0], errors.New("again"), true); err != nil {
		t.Fatal(err)
	}
	jobs = mustClaim(t, q, "w", 1)
	if len(jobs) != 1 || string(jobs[0].Payload) != string(payload) || jobs[0].Attempts != 2 {
		t.Fatalf("retried job = %+v", jobs)
	}
}
