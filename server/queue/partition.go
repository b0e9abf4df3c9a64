package queue

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/hashslot"
)

// Partition counts.
const (
	// DefaultClusterPartitions is Config.Partitions' default on a Redis
	// Cluster (*redis.ClusterClient); on one Redis it is 1.
	DefaultClusterPartitions = 16
	// MaxPartitions bounds Config.Partitions: each partition needs a slot
	// range of its own wide enough to place its hash tag in the middle.
	MaxPartitions = 256
)

// ErrPartitionMismatch is returned by New when the queue in Redis was
// created with another number of partitions than Config.Partitions: every
// server and worker of one queue must use the same --queue-partitions.
var ErrPartitionMismatch = errors.New("queue: partition count differs from the one the queue was created with")

// ErrBadID wraps the error for an id that is not a job or dead-letter id
// of this queue (a stream entry id "<ms>-<seq>", with its partition's
// prefix "<p>/" when the queue has several partitions).
var ErrBadID = errors.New("queue: not a job id of this queue")

// partition is one reliable queue on Redis Streams: its three keys share
// one hash tag, so every script of a partition runs on one slot.
type partition struct {
	index  int
	keys   Keys
	prefix string // "" with one partition, else "<index>/"

	mu        sync.Mutex
	cursor    string    // XAUTOCLAIM resumes here, so a long PEL is scanned round-robin
	reclaimed time.Time // last sweep that reclaimed here (several partitions only)
}

func newPartition(index int, tag, prefix string) *partition {
	return &partition{
		index:  index,
		keys:   Keys{Stream: tag + ":stream", Dead: tag + ":dead", Stats: tag + ":stats"},
		prefix: prefix,
		cursor: "0-0",
	}
}

// keyOf is the Redis key remembering an idempotency key, in the
// partition's hash tag so the enqueue script's keys share one slot.
func (p *partition) keyOf(key string) string {
	return strings.TrimSuffix(p.keys.Stream, ":stream") + ":k:" + key
}

// legacyTag is the hash tag of a single-partition queue: {Name}, or Name
// itself when it has a tag of its own. The meta key lives there whatever
// the partition count, so every process finds it.
func legacyTag(name string) string {
	if strings.Contains(name, "{") {
		return name
	}
	return "{" + name + "}"
}

// partitionTag returns the hash tag of partition i of n: {name:i:s}, s the
// first of 0, 1, 2, … that puts the tag's slot in the middle half of the
// i-th of n equal slot ranges. Redis Cluster gives each master contiguous
// slot ranges, so partitions spread over the masters as evenly as n
// allows, and the middle half keeps a tag off the edges where redis-cli
// rounds its ranges. Every process computes the same tags.
func partitionTag(name string, i, n int) (string, error) {
	lo, hi := i*hashslot.Count/n, (i+1)*hashslot.Count/n
	w := hi - lo
	lo, hi = lo+w/4, hi-w/4
	base := name + ":" + strconv.Itoa(i) + ":"
	for s := 0; s < 1<<20; s++ {
		tag := base + strconv.Itoa(s)
		if slot := hashslot.Of(tag); lo <= slot && slot < hi {
			return "{" + tag + "}", nil
		}
	}
	return "", fmt.Errorf("queue: no hash tag for partition %d of %d in slots [%d, %d)", i, n, lo, hi)
}

// partitionOf routes a job: FNV-1a of its routing key modulo n. Jobs with
// one routing key (one object's hooks) land in one partition and keep
// their order.
func partitionOf(key string, n int) int {
	if n == 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// parseID splits an id made by partition.prefix + entry id into the
// partition index and the stream entry id ("<ms>" or "<ms>-<seq>"). With
// one partition the prefix is optional ("0/" is accepted); with several it
// is required.
func parseID(id string, n int) (int, string, error) {
	part, entry := 0, id
	if pre, rest, ok := strings.Cut(id, "/"); ok {
		p, err := strconv.Atoi(pre)
		if err != nil || p < 0 || p >= n || strconv.Itoa(p) != pre {
			return 0, "", fmt.Errorf("%w: %q: partition %q is not one of 0..%d", ErrBadID, truncateID(id), truncateID(pre), n-1)
		}
		part, entry = p, rest
	} else if n > 1 {
		return 0, "", fmt.Errorf("%w: %q has no partition prefix; ids of a queue with %d partitions look like 3/1733000000000-0", ErrBadID, truncateID(id), n)
	}
	if !isEntryID(entry) {
		return 0, "", fmt.Errorf("%w: %q: want a stream entry id <ms>-<seq>", ErrBadID, truncateID(id))
	}
	return part, entry, nil
}

// isEntryID checks "<ms>" or "<ms>-<seq>", both unsigned 64-bit decimals.
func isEntryID(s string) bool {
	ms, seq, dash := strings.Cut(s, "-")
	if !isUint64(ms) {
		return false
	}
	return !dash || isUint64(seq)
}

func isUint64(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64) // no sign, no base prefix
	return err == nil
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// CheckID reports whether id names a job or dead letter of this queue, in
// the form Claim, EnqueueKeyed and Dead return (error wraps ErrBadID).
func (q *Queue) CheckID(id string) error {
	_, _, err := parseID(id, len(q.parts))
	return err
}

// PartitionOf returns the partition (an index into Keys) of jobs with
// routing key route (KeyedJob.Partition).
func (q *Queue) PartitionOf(route string) int { return partitionOf(route, len(q.parts)) }

// Partitions is how many partitions the queue has.
func (q *Queue) Partitions() int { return len(q.parts) }

// byPartition groups ids per partition, in the order they first appear,
// as stream entry ids.
func (q *Queue) byPartition(ids []string) (map[int][]string, []int, error) {
	groups := map[int][]string{}
	var order []int
	for _, id := range ids {
		p, entry, err := parseID(id, len(q.parts))
		if err != nil {
			return nil, nil, err
		}
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], entry)
	}
	return groups, order, nil
}
