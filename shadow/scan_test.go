package shadow

import (
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

type scanned struct {
	typ string
	id  uint64
}

// scan feeds the stream in chunks of n bytes.
func scan(stream string, byID bool, n int) []scanned {
	var out []scanned
	sc := newScanner(byID, func(typ []byte, id uint64) { out = append(out, scanned{string(typ), id}) })
	for len(stream) > 0 {
		k := min(n, len(stream))
		_, _ = sc.Write([]byte(stream[:k]))
		stream = stream[k:]
	}
	return out
}

// identities scans the stream whole and in pieces and fails unless the
// pieces agree with the whole.
func identities(t *testing.T, stream string, byID bool) []scanned {
	t.Helper()
	whole := scan(stream, byID, len(stream)+1)
	for _, n := range []int{1, 3, 4096} {
		if got := scan(stream, byID, n); fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("byID=%v, chunks of %d: %v, whole: %v\nstream %q", byID, n, got, whole, stream)
		}
	}
	return whole
}

func TestScannerIdentity(t *testing.T) {
	t.Parallel()
	const base = "id: 1\nevent: post\ndata: a\ndata: b\n\nid: 2\ndata: c\n\n"
	for _, tc := range []struct {
		name   string
		stream string
		same   bool // the same events as base for both identities
	}{
		{"CRLF", strings.ReplaceAll(base, "\n", "\r\n"), true},
		{"CR", strings.ReplaceAll(base, "\n", "\r"), true},
		{"BOM, comments and keep-alives", "\xEF\xBB\xBF: hi\n\nid:1\nevent:post\ndata:a\n: between\ndata:b\n\n:\n\nid: 2\nevent: message\ndata: c\n\n", true},
		{"retry and unknown fields", "retry: 5\nid: 1\nevent: post\nfoo: bar\ndata: a\ndata: b\n\nid: 2\ndata: c\n\n", true},
		{"other data", "id: 1\nevent: post\ndata: a\ndata: x\n\nid: 2\ndata: c\n\n", false},
		{"other type", "id: 1\nevent: put\ndata: a\ndata: b\n\nid: 2\ndata: c\n\n", false},
		{"data on one line", "id: 1\nevent: post\ndata: a\\nb\n\nid: 2\ndata: c\n\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, byID := range []bool{false, true} {
				want, got := identities(t, base, byID), identities(t, tc.stream, byID)
				same := fmt.Sprint(got) == fmt.Sprint(want)
				if byID && tc.name == "other data" || byID && tc.name == "data on one line" {
					// By id, the data does not matter.
					if !same {
						t.Errorf("byID: %v, base %v: want the same", got, want)
					}
					continue
				}
				if same != tc.same {
					t.Errorf("byID=%v: %v, base %v: same = %v, want %v", byID, got, want, same, tc.same)
				}
			}
		})
	}
}

func TestScannerEvents(t *testing.T) {
	t.Parallel()
	got := identities(t, "event: darktime.reconnect\ndata: {}\n\nid: 7\n\ndata: no type\n\ndata: unfinished", false)
	if len(got) != 2 || got[0].typ != "darktime.reconnect" || got[1].typ != "message" {
		t.Fatalf("events %v, want darktime.reconnect and message", got)
	}
	// By id, a stream that sent no id yet falls back on the data, and an
	// id persists.
	byID := identities(t, "data: a\n\ndata: b\n\nid: 9\ndata: c\n\ndata: d\n\n", true)
	byData := identities(t, "data: a\n\ndata: b\n\n", false)
	if byID[0] != byData[0] || byID[1] != byData[1] || byID[0] == byID[1] || byID[2] != byID[3] {
		t.Errorf("by id %v, by data %v", byID, byData)
	}
	// An event past the limits is left out; the next one is identified.
	long := "data: " + strings.Repeat("x", scanLimits.MaxLine) + "\n\ndata: after\n\n"
	if got := scan(long, false, 16<<10); len(got) != 1 || got[0] != identities(t, "data: after\n\n", false)[0] {
		t.Errorf("after a line past the limit: %v", got)
	}
}

var _ io.Writer = (*scanner)(nil)

// BenchmarkScanner is the shadow's cost of identifying the events of a
// stream as they pass through: darktime-server-like events fed in 16 KiB
// reads, as the proxy's tee and its candidate legs do.
func BenchmarkScanner(b *testing.B) {
	const events = 1024
	var stream []byte
	for i := range events {
		stream = fmt.Appendf(stream, "id: 1795628608000-%d\nevent: message\ndata: {\"ch\":\"bench_0\",\"seq\":%d,\"ts\":1795628608000000000,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n\n", i, i)
	}
	for _, byID := range []bool{false, true} {
		b.Run(fmt.Sprintf("byID=%v", byID), func(b *testing.B) {
			n := 0
			sc := newScanner(byID, func([]byte, uint64) { n++ })
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			cpu0 := cpuTime()
			for b.Loop() {
				for i := 0; i < len(stream); i += 16 << 10 {
					_, _ = sc.Write(stream[i:min(i+16<<10, len(stream))])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*events), "cpu-ns/event")
			if n != b.N*events {
				b.Fatalf("%d events, want %d", n, b.N*events)
			}
		})
	}
}

// cpuTime is the process's user+system CPU time. On a shared machine it
// counts only the time this process ran, where b.Elapsed also counts the
// time its neighbours held the core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
