package shadow

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/darktime/darktime/internal/sse"
)

type scanned struct {
	typ string
	id  uint64
}

// viaReader identifies events with internal/sse's Reader, the reference.
func viaReader(stream []byte, byID bool) []scanned {
	var out []scanned
	r := sse.NewReader(bytes.NewReader(stream), 1<<20)
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		body := hashBytes(fnvOffset, ev.Data)
		if byID && ev.ID != "" {
			body = hashBytes(fnvOffset, []byte(ev.ID))
		}
		out = append(out, scanned{ev.Event, mixIdentity(hashBytes(fnvOffset, []byte(ev.Event)), body)})
	}
}

// viaScanner feeds the stream in chunks of n bytes.
func viaScanner(stream []byte, byID bool, n int) []scanned {
	var out []scanned
	sc := newScanner(byID, func(typ []byte, id uint64) { out = append(out, scanned{string(typ), id}) })
	for len(stream) > 0 {
		k := min(n, len(stream))
		_, _ = sc.Write(stream[:k])
		stream = stream[k:]
	}
	return out
}

func checkSame(t *testing.T, stream []byte) {
	t.Helper()
	if len(stream) > 0 && !bytes.ContainsAny(stream[len(stream)-1:], "\r\n") {
		stream = append(stream[:len(stream):len(stream)], '\n') // the Reader drops an unterminated tail
	}
	for _, byID := range []bool{false, true} {
		want := viaReader(stream, byID)
		for _, n := range []int{1, 3, 4096} {
			got := viaScanner(stream, byID, n)
			if len(got) != len(want) {
				t.Fatalf("byID=%v chunks of %d: %d events, the Reader %d\nstream %q\n%v\n%v", byID, n, len(got), len(want), stream, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("byID=%v chunks of %d: event %d %+v, the Reader %+v\nstream %q", byID, n, i, got[i], want[i], stream)
				}
			}
		}
	}
}

func TestScannerMatchesReader(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"id: 1\nevent: post\ndata: a\ndata: b\n\n",
		"\xEF\xBB\xBFdata:x\r\n\r\ndata\n\n: comment\n\nretry: 5\nid: 7\n\ndata: after id-only\n\n",
		"data: one\rdata: two\r\rid: a\x00b\ndata: nul id ignored\n\n",
		"event: darktime.reconnect\ndata: {}\n\nevent:\ndata:  two spaces\n\n",
		"\xEFdata: x\n\n",
		"data: no blank line at the end\n",
		"verylongfieldname: x\ndata: y\n\n",
	} {
		checkSame(t, []byte(s))
	}
}

func FuzzScanner(f *testing.F) {
	f.Add([]byte("id: 1\nevent: post\ndata: a\ndata: b\n\n"))
	f.Add([]byte("\xEF\xBB\xBFdata:x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		checkSame(t, stream)
	})
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
			for b.Loop() {
				for i := 0; i < len(stream); i += 16 << 10 {
					_, _ = sc.Write(stream[i:min(i+16<<10, len(stream))])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
			if n != b.N*events {
				b.Fatalf("%d events, want %d", n, b.N*events)
			}
		})
	}
}
