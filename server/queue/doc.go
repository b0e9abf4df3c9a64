// Package queue is the reference server's durable job queue: a Thoonk-style
// reliable queue on Redis Streams with one consumer group.
//
// Model hooks (post_save/post_delete) are enqueued by the HTTP layer and
// claimed by workers, which run them through the pipeline and then Ack them,
// or Fail them to retry or dead-letter them.
//
// # Redis layout
//
// Every key of a queue named N (Config.Name, default "darktime:jobs") shares
// the hash tag {N}, so a queue lives in a single Redis Cluster slot and every
// multi-key Lua script is legal in a cluster:
//
//	{N}:stream  stream of jobs; consumer group Config.Group (default "workers")
//	            fields: p = payload; jobs re-added by Fail or ReplayDead also
//	            carry a = deliveries before this entry, t = original enqueue
//	            time (unix ms), o = original entry id, e = last error
//	{N}:dead    stream of dead letters; fields p, t, a (deliveries), o, e
//	            (last error); the entry id's time is when the job died
//	{N}:stats   hash of counters shared by every process: enqueued, acked,
//	            retried, dead_lettered, replayed
//
// A job is unclaimed while it is in {N}:stream but not yet delivered to the
// group, and claimed (in flight) while it is in the pending entries list
// (PEL) of a consumer. Ack removes it from both the PEL and the stream, so
// XLEN is depth + in_flight and the stream never grows with finished work.
//
// # Accounting
//
// Every transition that changes a counter (enqueue, ack, retry, dead-letter,
// replay) is a single Lua script, so counters and streams never disagree and
// every Stats snapshot satisfies
//
//	enqueued + replayed = acked + dead_lettered + depth + in_flight
//
// (Stats.Imbalance returns the difference, which is zero). Retries move a
// job within the queue and count only in retried. The dead-letter stream
// holds dead_lettered - replayed entries unless someone trims it by hand.
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
// Order is FIFO for first deliveries only; retries go to the back. The
// producer side is at-least-once too: when the connection fails after Redis
// ran an Enqueue but before the reply arrived, go-redis' retry (or the
// caller's) adds the job a second time.
//
// What survives a Redis restart depends on Redis persistence, not on this
// package. With AOF (appendonly yes, appendfsync always) every acknowledged
// Enqueue, the group, its PEL and the counters survive a crash; jobs that
// were in flight are redelivered after their visibility timeout. With
// appendfsync everysec up to a second of operations can be lost. Without
// persistence everything is lost; the queue notices the missing consumer
// group on the next Claim, recreates it and carries on with an empty queue.
package queue
