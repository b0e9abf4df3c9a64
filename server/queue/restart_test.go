package queue

import (
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// TestRedisRestartAppendOnly kills Redis (SIGKILL) mid-way and starts it
// again from its AOF: enqueued jobs, claimed jobs and counters survive, the
// client reconnects, and claiming works again.
func TestRedisRestartAppendOnly(t *testing.T) {
	t.Parallel()
	q, srv := newTestQueue(t, Config{VisibilityTimeout: 300 * time.Millisecond}, redistest.Options{AppendOnly: true})
	ctx := testCtx(t)
	mustEnqueue(t, q, payloads(10, "before")...)
	claimed := mustClaim(t, q, "doomed", 3) // in flight when Redis dies; never acked
	if len(claimed) != 3 {
		t.Fatalf("claimed %d", len(claimed))
	}
	before := checkBalanced(t, q, "before restart")

	srv.Restart()

	// The pool's connections died with the server; go-redis dials anew.
	var after Stats
	tstest.WaitFor(t, 5*time.Second, "Redis to answer again", func() bool {
		s, err := q.Stats(ctx)
		after = s
		return err == nil
	})
	if after != before {
		t.Fatalf("state changed across the restart:\n before %+v\n after  %+v", before, after)
	}
	if _, err := q.Enqueue(ctx, []byte("after")); err != nil {
		t.Fatalf("Enqueue after restart: %v", err)
	}
	// The 7 unclaimed jobs plus the new one come first; the 3 that were in
	// flight come back after their visibility timeout.
	got := map[string]int{}
	tstest.WaitFor(t, 5*time.Second, "every job claimed after the restart", func() bool {
		jobs, err := q.Claim(ctx, "survivor", 100, 0)
		if err != nil {
			t.Fatalf("Claim after restart: %v", err)
		}
		for _, j := range jobs {
			got[string(j.Payload)] = j.Attempts
			if _, err := q.Ack(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		return len(got) == 11
	})
	for _, j := range claimed {
		if got[string(j.Payload)] != 2 {
			t.Fatalf("job in flight at the restart %q came back with Attempts %d, want 2", j.Payload, got[string(j.Payload)])
		}
	}
	if s := checkBalanced(t, q, "at rest"); s.Acked != 11 || s.Depth+s.InFlight != 0 {
		t.Fatalf("at rest: %+v", s)
	}
}

// TestRedisRestartWithoutPersistence: the data is gone, but the queue
// recreates its consumer group and keeps working.
func TestRedisRestartWithoutPersistence(t *testing.T) {
	t.Parallel()
	q, srv := newTestQueue(t, Config{})
	ctx := testCtx(t)
	mustEnqueue(t, q, payloads(5, "lost")...)
	srv.Restart()

	// Enqueue first: XADD recreates the stream but not the group.
	tstest.WaitFor(t, 5*time.Second, "enqueue after restart", func() bool {
		_, err := q.Enqueue(ctx, []byte("new"))
		return err == nil
	})
	jobs, err := q.Claim(ctx, "w", 10, 0)
	if err != nil {
		t.Fatalf("Claim after losing the group: %v", err)
	}
	if len(jobs) != 1 || string(jobs[0].Payload) != "new" {
		t.Fatalf("Claim = %+v, want the one job enqueued after the restart", jobs)
	}
	if _, err := q.Ack(ctx, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	if s := checkBalanced(t, q, "at rest"); s.Enqueued != 1 || s.Acked != 1 {
		t.Fatalf("at rest: %+v", s)
	}
}
