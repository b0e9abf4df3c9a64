package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
)

// newTestQueue starts a private Redis and returns a queue on it. cfg.Client
// is filled in.
func newTestQueue(t *testing.T, cfg Config, opts ...redistest.Options) (*Queue, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t, opts...)
	cfg.Client = srv.Client()
	q, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q, srv
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustEnqueue(t *testing.T, q *Queue, payloads ...string) []string {
	t.Helper()
	b := make([][]byte, len(payloads))
	for i, p := range payloads {
		b[i] = []byte(p)
	}
	ids, err := q.EnqueueBatch(testCtx(t), b)
	if err != nil {
		t.Fatalf("EnqueueBatch: %v", err)
	}
	return ids
}

func mustClaim(t *testing.T, q *Queue, consumer string, max int) []Job {
	t.Helper()
	jobs, err := q.Claim(testCtx(t), consumer, max, 0)
	if err != nil {
		t.Fatalf("Claim(%s): %v", consumer, err)
	}
	return jobs
}

func mustStats(t *testing.T, q *Queue) Stats {
	t.Helper()
	s, err := q.Stats(testCtx(t))
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// checkBalanced fails the test unless the +1/-1 invariant holds.
func checkBalanced(t *testing.T, q *Queue, when string) Stats {
	t.Helper()
	s := mustStats(t, q)
	if s.Imbalance() != 0 {
		t.Fatalf("%s: enqueued+replayed != acked+dead_lettered+depth+in_flight: %+v (imbalance %d)", when, s, s.Imbalance())
	}
	if s.Dead != s.DeadLettered-s.Replayed {
		t.Fatalf("%s: dead %d != dead_lettered %d - replayed %d", when, s.Dead, s.DeadLettered, s.Replayed)
	}
	return s
}

func payloads(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}
