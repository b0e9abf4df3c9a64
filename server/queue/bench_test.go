package queue

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
)

// A model hook is a few hundred bytes of JSON.
var benchPayload = bytes.Repeat([]byte("x"), 256)

func newBenchQueue(b *testing.B) *Queue {
	b.Helper()
	srv := redistest.Start(b)
	q, err := New(Config{Client: srv.Client(), Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return q
}

func fill(b *testing.B, q *Queue, n, batch int) {
	b.Helper()
	payloads := make([][]byte, batch)
	for i := range payloads {
		payloads[i] = benchPayload
	}
	for done := 0; done < n; done += batch {
		if _, err := q.EnqueueBatch(context.Background(), payloads[:min(batch, n-done)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueBatch: one op is one job, enqueued 100 at a time.
func BenchmarkEnqueueBatch(b *testing.B) {
	q := newBenchQueue(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	fill(b, q, b.N, 100)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkClaimAck: one op is one job claimed and acked; two workers
// drain a pre-filled queue, claiming 256 at a time and acking each batch
// in one round trip.
func BenchmarkClaimAck(b *testing.B) {
	q := newBenchQueue(b)
	fill(b, q, b.N, 1000)
	var acked atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, name := range []string{"w1", "w2"} {
		wg.Go(func() {
			ids := make([]string, 0, 256)
			for acked.Load() < int64(b.N) {
				jobs, err := q.Claim(context.Background(), name, 256, 0)
				if err != nil {
					b.Error(err)
					return
				}
				ids = ids[:0]
				for _, j := range jobs {
					ids = append(ids, j.ID)
				}
				n, err := q.Ack(context.Background(), ids...)
				if err != nil {
					b.Error(err)
					return
				}
				acked.Add(int64(n))
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkEndToEnd: one producer enqueueing batches of 100 while two
// workers claim and ack, as in the reference server.
func BenchmarkEndToEnd(b *testing.B) {
	q := newBenchQueue(b)
	var acked atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { fill(b, q, b.N, 100) })
	for _, name := range []string{"w1", "w2"} {
		wg.Go(func() {
			ids := make([]string, 0, 256)
			for acked.Load() < int64(b.N) {
				jobs, err := q.Claim(context.Background(), name, 256, 10*time.Millisecond)
				if err != nil {
					b.Error(err)
					return
				}
				ids = ids[:0]
				for _, j := range jobs {
					ids = append(ids, j.ID)
				}
				n, err := q.Ack(context.Background(), ids...)
				if err != nil {
					b.Error(err)
					return
				}
				acked.Add(int64(n))
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}
