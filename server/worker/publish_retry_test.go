package worker

import (
	"context"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/queue"
)

// TestPublishRetriedInTheLane: the broker's Redis is down when a job is
// processed and comes back a moment later. The lane publishes again until
// it succeeds: the job is published and acked on its first delivery —
// no attempt spent, nothing re-added to the queue — as a Redis Cluster
// failover needs (every shard's failover would otherwise burn a job's
// attempts in a burst and dead-letter it).
func TestPublishRetriedInTheLane(t *testing.T) {
	t.Parallel()
	queueRedis, brokerRedis := redistest.Start(t), redistest.Start(t)
	q, err := queue.New(queue.Config{Client: queueRedis.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	b, err := broker.NewRedis(broker.RedisConfig{Config: broker.Config{Handler: func(broker.Delivery) {}}, URL: brokerRedis.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	pool, err := New(Config{Queue: q, Publisher: b, Block: 100 * time.Millisecond, PublishRetry: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	brokerRedis.Stop()
	if _, err := q.Enqueue(ctx, []byte(`{"model":"post","action":"post_save","id":1,"thread":4,"forum":"f","author":"a","message":"m"}`)); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, 20*time.Second, "a failed publish", func() bool { return pool.Stats().PublishErrors >= 2 })
	brokerRedis.StartAgain()
	tstest.WaitFor(t, 30*time.Second, "the job acked", func() bool { return pool.Stats().Acked == 1 })
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps := pool.Stats(); st.Retried != 0 || st.Acked != 1 || ps.Retried != 0 || ps.Claimed != 1 {
		t.Fatalf("queue %+v, pool %+v: want one delivery, acked", st, ps)
	}
	h, err := b.History(ctx, "thread:4", eventid.ID{})
	if err != nil || len(h.Events) != 1 {
		t.Fatalf("thread:4 history %+v, %v: want the event once", h, err)
	}
}
