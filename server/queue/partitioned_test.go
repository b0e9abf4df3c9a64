package queue

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// objectJobs is jobs jobs for each of objects objects, batch k holding
// the k-th job of every object: payload and key "o<object>-<k>", routed
// by "obj:<object>".
func objectJobs(objects, k int) []KeyedJob {
	batch := make([]KeyedJob, objects)
	for o := range objects {
		p := fmt.Sprintf("o%d-%d", o, k)
		batch[o] = KeyedJob{Payload: []byte(p), Key: p, Partition: fmt.Sprintf("obj:%d", o)}
	}
	return batch
}

// exercisePartitioned runs a partitioned queue through its life: keyed
// batches over many objects, claims by two consumers, acks, dead letters
// and replays in several partitions. It checks routing (ids carry the
// partition the object's key picks), per-object order, the summed ledger
// and the per-partition one.
func exercisePartitioned(t *testing.T, q *Queue) {
	t.Helper()
	ctx := testCtx(t)
	n := q.Partitions()
	const objects, perObject = 40, 10
	want := make([]int64, n) // jobs per partition
	firstIDs := map[string]string{}
	for k := range perObject {
		batch := objectJobs(objects, k)
		ids, fresh, err := q.EnqueueKeyed(ctx, batch, 0)
		if err != nil || fresh != objects {
			t.Fatalf("batch %d: %d fresh, %v", k, fresh, err)
		}
		for i, id := range ids {
			p := partitionOf(batch[i].Partition, n)
			if !strings.HasPrefix(id, fmt.Sprintf("%d/", p)) {
				t.Fatalf("job %s: id %q, want partition %d's prefix", batch[i].Key, id, p)
			}
			if err := q.CheckID(id); err != nil {
				t.Fatalf("CheckID(%q): %v", id, err)
			}
			firstIDs[batch[i].Key] = id
			want[p]++
		}
	}
	// A retry adds nothing and answers the first ids.
	again, fresh, err := q.EnqueueKeyed(ctx, objectJobs(objects, 0), 0)
	if err != nil || fresh != 0 {
		t.Fatalf("retry: %d fresh, %v", fresh, err)
	}
	for i, id := range again {
		if k := objectJobs(objects, 0)[i].Key; firstIDs[k] != id {
			t.Fatalf("retry of %s answered %s, first %s", k, id, firstIDs[k])
		}
	}
	parts, err := q.PartitionStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for p, s := range parts {
		if s.Depth != want[p] || s.Enqueued != want[p] || s.Imbalance() != 0 {
			t.Errorf("partition %d: %+v, want %d jobs", p, s, want[p])
		}
		if s.Depth > 0 {
			used++
		}
	}
	if used < 2 {
		t.Fatalf("the jobs used %d of %d partitions", used, n)
	}
	if s := checkBalanced(t, q, "after enqueue"); s.Depth != objects*perObject {
		t.Fatalf("after enqueue: %+v", s)
	}

	// Claims by two consumers in turn: every object's jobs come in order,
	// whichever consumer gets them. Every seventh job dies.
	next := make([]int, objects)
	claimed, died := 0, 0
	for round := 0; claimed < objects*perObject; round++ {
		if round > 10*objects*perObject {
			t.Fatalf("claimed %d of %d jobs", claimed, objects*perObject)
		}
		consumer := []string{"a", "b"}[round%2]
		jobs := mustClaim(t, q, consumer, 7)
		if len(jobs) > 7 {
			t.Fatalf("Claim(max 7) returned %d jobs", len(jobs))
		}
		var ack []string
		for _, j := range jobs {
			var o, k int
			if _, err := fmt.Sscanf(string(j.Payload), "o%d-%d", &o, &k); err != nil {
				t.Fatalf("payload %q: %v", j.Payload, err)
			}
			if k != next[o] {
				t.Fatalf("object %d: job %d claimed when %d was next (id %s)", o, k, next[o], j.ID)
			}
			if j.ID != firstIDs[string(j.Payload)] || j.OriginalID != j.ID || j.Attempts != 1 {
				t.Fatalf("job %+v, enqueued as %s", j, firstIDs[string(j.Payload)])
			}
			next[o]++
			claimed++
			if claimed%7 == 0 {
				if err := q.Fail(ctx, j, errors.New("poison"), false); err != nil {
					t.Fatal(err)
				}
				died++
				continue
			}
			ack = append(ack, j.ID)
		}
		if got, err := q.Ack(ctx, ack...); err != nil || got != len(ack) {
			t.Fatalf("Ack(%d) = %d, %v", len(ack), got, err)
		}
	}
	if jobs := mustClaim(t, q, "a", 10); len(jobs) != 0 {
		t.Fatalf("an empty queue gave %+v", jobs)
	}
	s := checkBalanced(t, q, "after the claims")
	if s.Acked != int64(claimed-died) || s.DeadLettered != int64(died) || s.Dead != int64(died) {
		t.Fatalf("after the claims: %+v, want %d acked, %d dead", s, claimed-died, died)
	}

	// The dead letters of every partition, oldest first; replay two by id,
	// then the rest.
	dead, err := q.Dead(ctx, 0)
	if err != nil || len(dead) != died {
		t.Fatalf("Dead: %d, %v; want %d", len(dead), err, died)
	}
	deadParts := map[string]bool{}
	for i, d := range dead {
		if i > 0 && d.DiedAt.Before(dead[i-1].DiedAt) {
			t.Fatalf("dead letters out of order: %v after %v", d.DiedAt, dead[i-1].DiedAt)
		}
		if err := q.CheckID(d.ID); err != nil || d.OriginalID != firstIDs[string(d.Payload)] || d.Error != "poison" {
			t.Fatalf("dead letter %+v (%v), enqueued as %s", d, err, firstIDs[string(d.Payload)])
		}
		p, _, _ := strings.Cut(d.ID, "/")
		deadParts[p] = true
	}
	if len(deadParts) < 2 {
		t.Fatalf("dead letters in %d partitions, want several", len(deadParts))
	}
	if limited, err := q.Dead(ctx, 2); err != nil || len(limited) != 2 || limited[0].ID != dead[0].ID {
		t.Fatalf("Dead(2) = %+v, %v", limited, err)
	}
	if n, err := q.ReplayDead(ctx, dead[0].ID, dead[len(dead)-1].ID, dead[0].ID); err != nil || n != 2 {
		t.Fatalf("ReplayDead by id = %d, %v", n, err)
	}
	if _, err := q.ReplayDead(ctx, "1-1"); !errors.Is(err, ErrBadID) {
		t.Fatalf("ReplayDead of an id without its partition: %v, want ErrBadID", err)
	}
	if n, err := q.ReplayDead(ctx); err != nil || n != died-2 {
		t.Fatalf("ReplayDead all = %d, %v; want %d", n, err, died-2)
	}
	replayed := 0
	for range 100 {
		jobs := mustClaim(t, q, "a", 100)
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			if j.OriginalID != firstIDs[string(j.Payload)] {
				t.Fatalf("replayed job %+v lost its original id %s", j, firstIDs[string(j.Payload)])
			}
			if _, err := q.Ack(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
			replayed++
		}
	}
	if replayed != died {
		t.Fatalf("claimed %d replayed jobs, want %d", replayed, died)
	}
	s = checkBalanced(t, q, "at rest")
	if s != (Stats{Enqueued: objects * perObject, Acked: objects * perObject, DeadLettered: int64(died), Replayed: int64(died)}) {
		t.Fatalf("at rest: %+v", s)
	}
	if _, err := q.Ack(ctx, "1733000000000-0"); !errors.Is(err, ErrBadID) {
		t.Fatalf("Ack of an id without its partition: %v, want ErrBadID", err)
	}
}

// TestPartitionedQueue: four partitions on one Redis.
func TestPartitionedQueue(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{Partitions: 4})
	keys := q.Keys()
	streams := map[string]bool{}
	for i, k := range keys {
		if !strings.HasPrefix(k.Stream, fmt.Sprintf("{darktime:jobs:%d:", i)) || !strings.HasSuffix(k.Stream, "}:stream") || streams[k.Stream] {
			t.Fatalf("keys %+v", keys)
		}
		streams[k.Stream] = true
	}
	if len(keys) != 4 {
		t.Fatalf("keys %+v", keys)
	}
	exercisePartitioned(t, q)
}

// TestPartitionCountRecorded: the first process records the partition
// count; one with another count is refused with a message naming the flag,
// as is a partitioned queue over single-partition jobs not yet drained.
func TestPartitionCountRecorded(t *testing.T) {
	t.Parallel()
	q, srv := newTestQueue(t, Config{Partitions: 4})
	if n, err := q.client.HGet(testCtx(t), "{darktime:jobs}:meta", "partitions").Int(); err != nil || n != 4 {
		t.Fatalf("meta: %d, %v", n, err)
	}
	if _, err := New(Config{Client: srv.Client(), Partitions: 4}); err != nil {
		t.Fatalf("the same count: %v", err)
	}
	_, err := New(Config{Client: srv.Client()})
	if !errors.Is(err, ErrPartitionMismatch) || !strings.Contains(err.Error(), "--queue-partitions") {
		t.Fatalf("one partition over a queue of 4: %v", err)
	}
	legacy, err := New(Config{Client: srv.Client(), Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, legacy, "left over")
	if _, err := New(Config{Client: srv.Client(), Name: "old", Partitions: 4}); !errors.Is(err, ErrPartitionMismatch) {
		t.Fatalf("four partitions over a single-partition queue with jobs: %v", err)
	}
	if _, err := New(Config{Client: srv.Client(), Name: "{tagged}", Partitions: 2}); err == nil {
		t.Fatal("a Name with braces was taken for a partitioned queue")
	}
	if _, err := New(Config{Client: srv.Client(), Name: "big", Partitions: MaxPartitions + 1}); err == nil {
		t.Fatal("too many partitions taken")
	}
}

// blockedReads counts the clients blocked in XREADGROUP on the servers.
func blockedReads(t *testing.T, servers ...*redistest.Server) func() int {
	return func() int {
		n := 0
		for _, s := range servers {
			list, err := s.Client().ClientList(testCtx(t)).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(list, "\n") {
				if strings.Contains(line, " flags=b ") && strings.Contains(line, " cmd=xreadgroup ") {
					n++
				}
			}
		}
		return n
	}
}

// TestIdleClaimWakesOnAnyPartition: on one Redis an idle Claim on a queue
// of eight partitions blocks in one XREADGROUP over them all.
func TestIdleClaimWakesOnAnyPartition(t *testing.T) {
	t.Parallel()
	q, srv := newTestQueue(t, Config{Partitions: 8})
	idleClaimWakes(t, q, blockedReads(t, srv), 1)
}

// idleClaimWakes: an idle Claim returns soon after a job arrives in any
// partition, not after its block; jobs that arrive in every partition at
// once all reach the consumer (those beyond the first read by its next
// Claims); Close waits for what an idle Claim left running. blocked counts
// the consumer's blocking reads, wantBlocked of them when it is idle.
func idleClaimWakes(t *testing.T, q *Queue, blocked func() int, wantBlocked int) {
	t.Helper()
	ctx := testCtx(t)
	n := q.Partitions()
	// One routing key per partition.
	route := make([]string, n)
	for k, found := 0, 0; found < n; k++ {
		if r := fmt.Sprintf("r%d", k); route[q.PartitionOf(r)] == "" {
			route[q.PartitionOf(r)] = r
			found++
		}
	}
	idle := func() chan []Job {
		done := make(chan []Job, 1)
		go func() {
			jobs, err := q.Claim(ctx, "idle", 2*n, 20*time.Second)
			if err != nil {
				t.Error(err)
			}
			done <- jobs
		}()
		tstest.WaitFor(t, 10*time.Second, fmt.Sprintf("the idle claim's %d blocking reads", wantBlocked), func() bool { return blocked() == wantBlocked })
		return done
	}
	for p, r := range route {
		start := time.Now()
		done := idle()
		if _, _, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte(r), Key: r, Partition: r}}, 0); err != nil {
			t.Fatal(err)
		}
		jobs := <-done
		if len(jobs) != 1 || string(jobs[0].Payload) != r || !strings.HasPrefix(jobs[0].ID, fmt.Sprintf("%d/", p)) {
			t.Fatalf("partition %d: claimed %+v", p, jobs)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Fatalf("partition %d: the idle claim took %v, as if it waited out its block", p, took)
		}
		if _, err := q.Ack(ctx, jobs[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	// Jobs in every partition at once, while idle.
	done := idle()
	var batch []KeyedJob
	for _, r := range route {
		for k := range 3 {
			key := fmt.Sprintf("%s-all-%d", r, k)
			batch = append(batch, KeyedJob{Payload: []byte(key), Key: key, Partition: r})
		}
	}
	if _, fresh, err := q.EnqueueKeyed(ctx, batch, 0); err != nil || fresh != len(batch) {
		t.Fatalf("%d %v", fresh, err)
	}
	got := map[string]bool{}
	take := func(jobs []Job) {
		if len(jobs) > 2*n {
			t.Fatalf("Claim(max %d) returned %d jobs", 2*n, len(jobs))
		}
		last := map[string]string{}
		for _, j := range jobs {
			if got[string(j.Payload)] {
				t.Fatalf("job %s claimed twice", j.Payload)
			}
			got[string(j.Payload)] = true
			route, _, _ := strings.Cut(string(j.Payload), "-")
			if prev := last[route]; prev > string(j.Payload) {
				t.Fatalf("%s claimed after %s", j.Payload, prev)
			}
			last[route] = string(j.Payload)
		}
	}
	take(<-done)
	tstest.WaitFor(t, 10*time.Second, "every partition's jobs", func() bool {
		jobs, err := q.Claim(ctx, "idle", 2*n, 0)
		if err != nil {
			t.Fatal(err)
		}
		take(jobs)
		return len(got) == len(batch)
	})
	s := checkBalanced(t, q, "after the idle claims")
	if s.InFlight != int64(len(batch)) || s.Depth != 0 {
		t.Fatalf("%+v, want the %d jobs in flight", s, len(batch))
	}
	// Close waits for the reads an idle Claim leaves behind.
	if jobs, err := q.Claim(ctx, "idle", 10, 200*time.Millisecond); err != nil || len(jobs) != 0 {
		t.Fatalf("idle claim on an empty queue: %v %v", jobs, err)
	}
	closed := make(chan struct{})
	go func() { _ = q.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	tstest.WaitFor(t, 10*time.Second, "no blocking reads after Close", func() bool { return blocked() == 0 })
}

// TestClusterQueue: the queue on a real 3-master Redis Cluster spreads
// its 16 partitions (the default on a cluster) over every master and
// passes the partitioned run; a single-partition queue keeps the legacy
// keys on one slot.
func TestClusterQueue(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster")
	t.Parallel()
	c := redistest.StartCluster(t, 3, 0)
	client := c.Client()
	q, err := New(Config{Client: client, Name: "cq"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	if q.Partitions() != DefaultClusterPartitions {
		t.Fatalf("%d partitions on a cluster, want %d", q.Partitions(), DefaultClusterPartitions)
	}
	perMaster := map[string]int{}
	for _, k := range q.Keys() {
		perMaster[c.MasterOf(k.Stream).Addr]++
		if redistest.Slot(k.Stream) != redistest.Slot(k.Dead) || redistest.Slot(k.Stream) != redistest.Slot(k.Stats) {
			t.Fatalf("keys of one partition on several slots: %+v", k)
		}
	}
	if len(perMaster) != 3 {
		t.Fatalf("partitions per master %v, want all 3 masters", perMaster)
	}
	for m, n := range perMaster {
		if n < 5 || n > 6 {
			t.Errorf("master %s has %d of 16 partitions, want 5 or 6 (%v)", m, n, perMaster)
		}
	}
	exercisePartitioned(t, q)

	single, err := New(Config{Client: client, Name: "one", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = single.Close() })
	if k := single.Keys(); len(k) != 1 || k[0] != (Keys{Stream: "{one}:stream", Dead: "{one}:dead", Stats: "{one}:stats"}) {
		t.Fatalf("single-partition keys on a cluster: %+v", k)
	}
	id, err := single.Enqueue(testCtx(t), []byte("x"))
	if err != nil || strings.Contains(id, "/") {
		t.Fatalf("single-partition id %q, %v", id, err)
	}

	// An idle Claim leaves one blocking read per partition, on the
	// partitions' masters.
	idle, err := New(Config{Client: client, Name: "idle", Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	idleClaimWakes(t, idle, blockedReads(t, c.Masters()...), 8)
}

// TestClusterQueueShardDown: with one master of three dead (not replaced),
// a keyed batch over every partition is taken by the live shards' parts and
// refused, as not done, on the dead one's; a retry with the same keys
// takes nothing twice; Claim goes on serving the live partitions.
func TestClusterQueueShardDown(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster and waits out dials to a dead master")
	t.Parallel()
	c := redistest.StartCluster(t, 3, 0, redistest.ClusterOptions{NodeTimeout: time.Minute})
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	q, err := New(Config{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	ctx := testCtx(t)
	victim := c.MasterOf(q.Keys()[0].Stream)
	onVictim := make([]bool, q.Partitions())
	for i, k := range q.Keys() {
		onVictim[i] = c.MasterOf(k.Stream) == victim
	}
	c.Kill(victim)
	batch := objectJobs(64, 0)
	ids, fresh, err := q.EnqueueKeyed(ctx, batch, 0)
	var partial *PartialError
	if !errors.As(err, &partial) || len(partial.Errs) != len(batch) {
		t.Fatalf("batch over a dead shard: %v", err)
	}
	taken := 0
	for i, j := range batch {
		p := partitionOf(j.Partition, q.Partitions())
		switch e := partial.Errs[i]; {
		case onVictim[p] && (e == nil || ids[i] != "" || !errors.Is(e, ErrUnavailable) || errors.Is(e, ErrOutcomeUnknown)):
			t.Errorf("job %s on the dead shard: id %q, %v; want not done", j.Key, ids[i], e)
		case !onVictim[p] && (e != nil || ids[i] == ""):
			t.Errorf("job %s on a live shard: id %q, %v", j.Key, ids[i], e)
		case !onVictim[p]:
			taken++
		}
	}
	if fresh != taken || taken == 0 || taken == len(batch) {
		t.Fatalf("%d fresh, %d taken of %d", fresh, taken, len(batch))
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("a PartialError does not unwrap to its partitions' errors: %v", err)
	}
	again, fresh, err := q.EnqueueKeyed(ctx, batch, 0)
	if !errors.As(err, &partial) || fresh != 0 {
		t.Fatalf("retry: %d fresh, %v", fresh, err)
	}
	for i := range batch {
		if again[i] != ids[i] {
			t.Fatalf("retry of %s answered %q, first %q", batch[i].Key, again[i], ids[i])
		}
	}
	claimed := 0
	tstest.WaitFor(t, 60*time.Second, "the live partitions' jobs", func() bool {
		jobs, err := q.Claim(ctx, "w", 100, 0)
		if err != nil {
			t.Fatalf("Claim with one shard down: %v", err)
		}
		for _, j := range jobs {
			if onVictim[partitionOf("obj:"+strings.TrimPrefix(strings.Split(string(j.Payload), "-")[0], "o"), q.Partitions())] {
				t.Fatalf("job %s from the dead shard", j.Payload)
			}
		}
		claimed += len(jobs)
		return claimed == taken
	})
}
