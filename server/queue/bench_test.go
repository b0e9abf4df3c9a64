package queue

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// benchLayouts runs bench on one Redis with one partition and with 16,
// and on a 3-master Redis Cluster with 16 (the cluster's default) and 1,
// each run on a queue of its own.
func benchLayouts(b *testing.B, bench func(*testing.B, *Queue)) {
	srv := redistest.Start(b)
	var cluster *redistest.Cluster
	if !testing.Short() {
		cluster = redistest.StartCluster(b, 3, 0)
	}
	runs := 0
	for _, l := range []struct {
		name       string
		cluster    bool
		partitions int
	}{
		{"redis/1", false, 1},
		{"redis/16", false, 16},
		{"cluster/1", true, 1},
		{"cluster/16", true, 16},
	} {
		b.Run(l.name, func(b *testing.B) {
			var client redis.UniversalClient = srv.Client()
			if l.cluster {
				if cluster == nil {
					b.Skip("-short: no Redis Cluster")
				}
				client = cluster.Client()
			}
			runs++
			q, err := New(Config{Client: client, Name: fmt.Sprintf("bench%d", runs), Partitions: l.partitions})
			if err != nil {
				b.Fatal(err)
			}
			bench(b, q)
		})
	}
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
func BenchmarkClaimAck(b *testing.B) { benchLayouts(b, benchClaimAck) }

func benchClaimAck(b *testing.B, q *Queue) {
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
func BenchmarkEndToEnd(b *testing.B) { benchLayouts(b, benchEndToEnd) }

func benchEndToEnd(b *testing.B, q *Queue) {
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
