// Package queue is the reference server's durable job queue: a Thoonk-style
// reliable queue on Redis Streams with one consumer group, in one or more
// partitions.
//
// Model hooks (post_save/post_delete) are enqueued by the HTTP layer and
// claimed by workers, which run them through the pipeline and then Ack them,
// or Fail them to retry or dead-letter them.
//
// # Redis layout
//
// A queue named N (Config.Name, default "darktime:jobs") has
// Config.Partitions partitions (default 1 on one Redis, 16 on a Redis
// Cluster). Each partition is a reliable queue of its own whose keys share
// one hash tag T, so every multi-key Lua script of a partition is legal in
// a cluster:
//
//	T:stream  stream of jobs; consumer group Config.Group (default "workers")
//	          fields: p = payload; jobs re-added by Fail or ReplayDead also
//	          carry a = deliveries before this entry, t = original enqueue
//	          time (unix ms), o = original entry id, e = last error
//	T:dead    stream of dead letters; fields p, t, a (deliveries), o, e
//	          (last error); the entry id's time is when the job died
//	T:stats   hash of counters shared by every process: enqueued, acked,
//	          retried, dead_lettered, replayed
//	T:k:<key> an idempotency key's record (EnqueueKeyed): the job's entry id
//
// With one partition T is {N} (or N itself when it has braces): the layout
// of earlier versions, unchanged. With P > 1 partitions, partition i's T is
// {N:i:s}, s the first of 0, 1, 2, … that puts T's slot in the middle half
// of the i-th of P equal ranges of the 16384 slots. Redis Cluster gives
// each master contiguous ranges, so the partitions spread over the masters
// as evenly as P allows (16 over 3 masters: 5, 6, 5), and every process
// computes the same tags. {N}:meta (a hash, field partitions) records P;
// New refuses a process with another count (ErrPartitionMismatch), and
// refuses P > 1 while {N}:stream still holds single-partition jobs.
//
// A job's partition is FNV-1a of its routing key modulo P
// (KeyedJob.Partition: the server uses the hook's model and id), so one
// object's jobs land in one partition, in order. Jobs enqueued without a
// routing key (EnqueueBatch) go, a batch at a time, to the partitions in
// turn. A job never leaves its partition: Fail re-adds it there and a dead
// letter is replayed there. Job and dead-letter ids of a partitioned queue
// carry the partition's index: "3/1733000000000-0" (Queue.CheckID); a
// single-partition queue's ids are bare stream entry ids, as before.
//
// A job is unclaimed while it is in T:stream but not yet delivered to the
// group, and claimed (in flight) while it is in the pending entries list
// (PEL) of a consumer. Ack removes it from both the PEL and the stream, so
// XLEN is depth + in_flight and the stream never grows with finished work.
//
// # Accounting
//
// Every transition that changes a counter (enqueue, ack, retry, dead-letter,
// replay) is a single Lua script on one partition, so a partition's
// counters and streams never disagree and every snapshot of it satisfies
//
//	enqueued + replayed = acked + dead_lettered + depth + in_flight
//
// (Stats.Imbalance returns the difference, which is zero). Stats sums the
// partitions' snapshots (taken in one pipeline, not at one instant); since
// each balances and jobs do not cross partitions, so does the sum, always.
// Retries move a job within its partition and count only in retried. The
// dead-letter streams hold dead_lettered - replayed entries unless someone
// trims them by hand.
//
// # Guarantees
//
// Delivery is at-least-once. Enqueue returns only after Redis has executed
// the XADD. A claimed job that is neither acked nor failed within
// Config.VisibilityTimeout (the worker died or stalled) is handed to the
// next consumer that calls Claim, with Attempts incremented; a job is
// delivered at most Config.MaxAttempts times, after which it is moved to the
// dead-letter stream, so a job that crashes every worker cannot loop
// forever. A job may therefore run more than once (a stalled worker can
// finish after its job was reclaimed), and handlers must be idempotent.
// Order is FIFO within a partition for first deliveries only (so per
// routing key across partitions); retries go to the back. The producer
// side is at-least-once too: when the connection fails after Redis ran an
// Enqueue but before the reply arrived, go-redis' retry (or the caller's)
// adds the job a second time; EnqueueKeyed's keys make that retry safe.
//
// A batch of EnqueueKeyed jobs in one partition is one atomic script: all
// of its new jobs are added, or none. A batch over several partitions is
// one script per partition, in one pipeline: each part is atomic, and when
// some parts fail the error is a *PartialError saying job by job which
// were enqueued; retrying the whole batch with the same keys adds only the
// missing ones. MaxLen applies per partition (MaxLen/P rounded up), so a
// partition with a hot object refuses (ErrFull) before the others fill.
//
// # Persistence and failover
//
// What survives a Redis restart depends on Redis persistence, not on this
// package. With AOF (appendonly yes, appendfsync always) every acknowledged
// Enqueue, the group, its PEL and the counters survive a crash; jobs that
// were in flight are redelivered after their visibility timeout. With
// appendfsync everysec up to a second of operations can be lost. Without
// persistence everything is lost; the queue notices the missing consumer
// group on the next Claim, recreates it and carries on with an empty queue.
//
// On a Redis Cluster each partition lives on its slot's master. When a
// master dies its partitions refuse (ErrUnavailable) or time out
// (ErrOutcomeUnknown) until its replica is promoted, while the other
// partitions go on. Replication is asynchronous and the queue does not use
// WAIT, so an enqueue (or an ack) the dead master acknowledged in its last
// instant may be missing on the promoted replica: a job answered as
// enqueued can be lost, or an acked job delivered again. AOF does not close
// that window — the promoted replica is another process; AOF on the dead
// master matters only if that master comes back instead. Each script's
// effects replicate as one transaction, so the replica's counters and
// streams still balance.
package queue
