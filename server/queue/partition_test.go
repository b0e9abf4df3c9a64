package queue

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/hashslot"
)

// TestPartitionTags: each partition's tag has a slot of its own, in the
// middle half of its share of the slot space, the same on every call;
// over the three contiguous ranges redis-cli gives three masters (and
// over four and six) the partitions spread as evenly as the count allows.
func TestPartitionTags(t *testing.T) {
	t.Parallel()
	// redis-cli --cluster create's ranges: 16384/masters slots each, the
	// remainder spread from the first.
	ranges := func(masters int) []int {
		var ends []int
		end := 0
		for m := range masters {
			end += hashslot.Count / masters
			if m < hashslot.Count%masters {
				end++
			}
			ends = append(ends, end)
		}
		return ends
	}
	masterOf := func(ends []int, slot int) int {
		for m, end := range ends {
			if slot < end {
				return m
			}
		}
		return -1
	}
	for _, n := range []int{2, 3, 4, 6, 7, 16, 64, MaxPartitions} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			seen := map[int]int{}
			slots := make([]int, n)
			for i := range n {
				tag, err := partitionTag(DefaultName, i, n)
				if err != nil {
					t.Fatal(err)
				}
				again, _ := partitionTag(DefaultName, i, n)
				if again != tag || !strings.HasPrefix(tag, "{"+DefaultName+":") || !strings.HasSuffix(tag, "}") {
					t.Fatalf("partition %d: tag %q, again %q", i, tag, again)
				}
				slot := hashslot.Of(tag + ":stream")
				lo, hi := i*hashslot.Count/n, (i+1)*hashslot.Count/n
				if w := hi - lo; slot < lo+w/4 || slot >= hi-w/4 {
					t.Errorf("partition %d: slot %d outside the middle of [%d, %d)", i, slot, lo, hi)
				}
				if j, dup := seen[slot]; dup {
					t.Errorf("partitions %d and %d share slot %d", j, i, slot)
				}
				seen[slot], slots[i] = i, slot
			}
			for _, masters := range []int{3, 4, 6} {
				ends := ranges(masters)
				count := make([]int, masters)
				for _, s := range slots {
					count[masterOf(ends, s)]++
				}
				for m, c := range count {
					if want := float64(n) / float64(masters); float64(c) < want-1 || float64(c) > want+1 {
						t.Errorf("%d masters: master %d has %d of %d partitions, want %.1f±1 (%v)", masters, m, c, n, want, count)
					}
				}
			}
		})
	}
}

// TestPartitionOf: a routing key always lands in the same partition, and
// many keys spread evenly.
func TestPartitionOf(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3, 16, MaxPartitions} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			const keys = 64000
			count := make([]int, n)
			for k := range keys {
				key := fmt.Sprintf("post:%d", k)
				p := partitionOf(key, n)
				if p < 0 || p >= n || partitionOf(key, n) != p {
					t.Fatalf("partitionOf(%q, %d) = %d, then %d", key, n, p, partitionOf(key, n))
				}
				count[p]++
			}
			want := keys / n
			for p, c := range count {
				if c < want*3/4 || c > want*5/4 {
					t.Errorf("partition %d of %d got %d keys, want %d±25%%", p, n, c, want)
				}
			}
		})
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id    string
		n     int
		part  int
		entry string
		ok    bool
	}{
		{"1733000000000-0", 1, 0, "1733000000000-0", true},
		{"1733000000000", 1, 0, "1733000000000", true},
		{"0/1733000000000-5", 1, 0, "1733000000000-5", true},
		{"3/1733000000000-0", 16, 3, "1733000000000-0", true},
		{"15/1-1", 16, 15, "1-1", true},
		{"1733000000000-0", 16, 0, "", false}, // no prefix with 16 partitions
		{"16/1-1", 16, 0, "", false},          // no partition 16
		{"03/1-1", 16, 0, "", false},          // one spelling per id
		{"-1/1-1", 16, 0, "", false},
		{"+3/1-1", 16, 0, "", false},
		{"3/", 16, 0, "", false},
		{"/1-1", 16, 0, "", false},
		{"3/1-", 16, 0, "", false},
		{"3/-1", 16, 0, "", false},
		{"3/1-1-1", 16, 0, "", false},
		{"3/1-x", 16, 0, "", false},
		{"3/3/1-1", 16, 0, "", false},
		{"1-18446744073709551616", 1, 0, "", false}, // seq beyond 64 bits
		{"", 1, 0, "", false},
		{"1/1-1", 1, 0, "", false},
	} {
		part, entry, err := parseID(tc.id, tc.n)
		if ok := err == nil; ok != tc.ok || part != tc.part || entry != tc.entry {
			t.Errorf("parseID(%q, %d) = %d, %q, %v; want %d, %q, ok %v", tc.id, tc.n, part, entry, err, tc.part, tc.entry, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadID) {
			t.Errorf("parseID(%q, %d): %v does not wrap ErrBadID", tc.id, tc.n, err)
		}
	}
}

// FuzzParseID: parseID never panics, and what it accepts is a partition
// in range and an entry id that formats back to an id it accepts the same
// way.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1-0", "0/1-0", "3/1733000000000-0", "255/18446744073709551615-18446744073709551615", "03/1-1", "1/", "/", "1-1-1", "9/9/9"} {
		f.Add(s, 16)
		f.Add(s, 1)
	}
	f.Fuzz(func(t *testing.T, id string, n int) {
		if n < 1 || n > MaxPartitions {
			return
		}
		part, entry, err := parseID(id, n)
		if err != nil {
			if !errors.Is(err, ErrBadID) {
				t.Fatalf("parseID(%q, %d): %v does not wrap ErrBadID", id, n, err)
			}
			return
		}
		if part < 0 || part >= n || !isEntryID(entry) || strings.Contains(entry, "/") {
			t.Fatalf("parseID(%q, %d) = %d, %q", id, n, part, entry)
		}
		prefix := ""
		if n > 1 {
			prefix = fmt.Sprintf("%d/", part)
		}
		p2, e2, err := parseID(prefix+entry, n)
		if err != nil || p2 != part || e2 != entry {
			t.Fatalf("parseID(%q, %d) = %d, %q; its canonical form %q parses as %d, %q, %v", id, n, part, entry, prefix+entry, p2, e2, err)
		}
	})
}
