package queue

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// TestInvariantRandomOps drives a queue with a seeded random mix of every
// operation, including abandoned claims that time out, and checks after
// each step that enqueued + replayed = acked + dead_lettered + depth +
// in_flight.
func TestInvariantRandomOps(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{VisibilityTimeout: 20 * time.Millisecond, MaxAttempts: 3, MaxLen: 200})
	ctx := testCtx(t)
	rng := rand.New(rand.NewPCG(1, 2))
	consumers := []string{"a", "b", "c"}
	held := map[string][]Job{} // claimed, not yet settled, per consumer

	for step := 0; step < 400; step++ {
		c := consumers[rng.IntN(len(consumers))]
		switch op := rng.IntN(8); op {
		case 0, 1:
			batch := make([][]byte, 1+rng.IntN(20))
			for i := range batch {
				batch[i] = []byte{byte(step), byte(i)}
			}
			if _, err := q.EnqueueBatch(ctx, batch); err != nil && !errors.Is(err, ErrFull) {
				t.Fatalf("step %d: enqueue: %v", step, err)
			}
		case 2, 3:
			jobs, err := q.Claim(ctx, c, 1+rng.IntN(10), 0)
			if err != nil {
				t.Fatalf("step %d: claim: %v", step, err)
			}
			held[c] = append(held[c], jobs...)
		case 4:
			if len(held[c]) == 0 {
				continue
			}
			var ids []string
			for _, j := range held[c] {
				ids = append(ids, j.ID)
			}
			if _, err := q.Ack(ctx, ids...); err != nil {
				t.Fatalf("step %d: ack: %v", step, err)
			}
			held[c] = nil
		case 5:
			for _, j := range held[c] {
				err := q.Fail(ctx, j, errors.New("random failure"), rng.IntN(4) != 0)
				if err != nil && !errors.Is(err, ErrNotClaimed) {
					t.Fatalf("step %d: fail: %v", step, err)
				}
			}
			held[c] = nil
		case 6:
			if rng.IntN(3) == 0 {
				if _, err := q.ReplayDead(ctx); err != nil {
					t.Fatalf("step %d: replay: %v", step, err)
				}
			} else if dead, err := q.Dead(ctx, 3); err != nil {
				t.Fatalf("step %d: dead: %v", step, err)
			} else if len(dead) > 0 {
				if _, err := q.ReplayDead(ctx, dead[0].ID); err != nil {
					t.Fatalf("step %d: replay: %v", step, err)
				}
			}
		case 7:
			// The consumer crashes: its jobs time out and are reclaimed
			// (or dead-lettered) by whoever claims next.
			held[c] = nil
			time.Sleep(25 * time.Millisecond)
		}
		checkBalanced(t, q, "random step")
	}

	// Drain: ack everything that is left.
	tstest.WaitFor(t, 10*time.Second, "drained queue", func() bool {
		jobs := mustClaim(t, q, "drain", 100)
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if _, err := q.Ack(ctx, ids...); err != nil {
			t.Fatal(err)
		}
		s := checkBalanced(t, q, "draining")
		return s.Depth == 0 && s.InFlight == 0
	})
	s := checkBalanced(t, q, "at rest")
	t.Logf("at rest: %+v", s)
	if s.Enqueued == 0 || s.Acked == 0 || s.Retried == 0 || s.DeadLettered == 0 || s.Replayed == 0 {
		t.Fatalf("the random mix did not exercise every transition: %+v", s)
	}
}

// TestConcurrentWorkers runs producers and workers in parallel, some of
// them failing jobs, and checks every job ends up acked or dead exactly
// once in the counters.
func TestConcurrentWorkers(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{VisibilityTimeout: time.Second, MaxAttempts: 2})
	ctx := testCtx(t)
	const producers, perProducer = 4, 500
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := 0; i < perProducer; i += 50 {
				batch := make([][]byte, 50)
				for k := range batch {
					batch[k] = []byte{byte(p), byte(i + k)}
				}
				if _, err := q.EnqueueBatch(ctx, batch); err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var workers sync.WaitGroup
	for w := range 3 {
		workers.Go(func() {
			name := string(rune('a' + w))
			for {
				select {
				case <-done:
					return
				default:
				}
				jobs, err := q.Claim(ctx, name, 64, 20*time.Millisecond)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				var ids []string
				for _, j := range jobs {
					if j.Payload[1]%10 == 0 {
						if err := q.Fail(ctx, j, errors.New("every tenth fails"), true); err != nil {
							t.Errorf("fail: %v", err)
						}
						continue
					}
					ids = append(ids, j.ID)
				}
				if _, err := q.Ack(ctx, ids...); err != nil {
					t.Errorf("ack: %v", err)
				}
			}
		})
	}
	wg.Wait()
	tstest.WaitFor(t, 10*time.Second, "all jobs settled", func() bool {
		s := checkBalanced(t, q, "while running")
		return s.Acked+s.DeadLettered == producers*perProducer
	})
	close(done)
	workers.Wait()
	s := checkBalanced(t, q, "at rest")
	if s.Depth != 0 || s.InFlight != 0 || s.Enqueued != producers*perProducer || s.DeadLettered == 0 {
		t.Fatalf("at rest: %+v", s)
	}
}
