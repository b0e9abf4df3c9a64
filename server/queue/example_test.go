package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/darktime/darktime/server/queue"
	"github.com/redis/go-redis/v9"
)

// A worker loop: claim a batch, run each job, ack the successes in one
// round trip, fail the rest. It needs a Redis at localhost:6379, so it is
// compiled but not run by go test.
func Example_worker() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	q, err := queue.New(queue.Config{Client: client, MaxLen: 100_000})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	// The HTTP layer enqueues; ErrFull and ErrUnavailable both mean 503.
	if _, err := q.Enqueue(ctx, []byte(`{"model":"post","event":"post_save","id":42}`)); err != nil {
		log.Fatal(err)
	}

	run := func(j queue.Job) error { return nil } // the pipeline
	for {
		jobs, err := q.Claim(ctx, "worker-1", 256, 2*time.Second)
		if errors.Is(err, queue.ErrClosed) {
			return
		}
		if err != nil {
			log.Print(err)
			time.Sleep(time.Second)
			continue
		}
		var done []string
		for _, j := range jobs {
			if err := run(j); err != nil {
				_ = q.Fail(ctx, j, err, true)
				continue
			}
			done = append(done, j.ID)
		}
		if _, err := q.Ack(ctx, done...); err != nil {
			log.Print(err)
		}
	}
}

// Stats.Imbalance checks the queue's accounting: every job that entered
// the queue has been acked, dead-lettered, or is still in it.
func ExampleStats_Imbalance() {
	s := queue.Stats{
		Depth: 3, InFlight: 2, Dead: 2,
		Enqueued: 100, Acked: 93, Retried: 7, DeadLettered: 4, Replayed: 2,
	}
	fmt.Println("imbalance:", s.Imbalance())
	// Output: imbalance: 0
}
