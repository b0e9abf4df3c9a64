package swarm

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/sse"
)

// BenchmarkClientEventFromWire is BenchmarkClientEvent plus the decoding
// in front of it: the darktime server's chunked wire bytes (one event per
// chunk, id, event and data lines) fed to the client's stream in reads of
// the client's buffer size, as its read loop does.
func BenchmarkClientEventFromWire(b *testing.B) {
	c := benchClient(b)
	r := c.r
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	stream, err := sse.NewStream(head, sse.Limits{}, func(m sse.Message) { c.event(m.Type, m.Data) }) // as connect does
	if err != nil {
		b.Fatal(err)
	}
	c.stream = stream
	const events = 1024
	now := time.Now().UnixNano()
	var wire []byte
	for i := range events {
		ev := fmt.Appendf(nil, "id: 1795628608000-%d\nevent: message\ndata: %s\n\n", i,
			`{"ch":"bench_0","seq":`+strconv.Itoa(i)+`,"ts":`+strconv.FormatInt(now+int64(i)*int64(time.Millisecond), 10)+`,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
		wire = fmt.Appendf(wire, "%x\r\n%s\r\n", len(ev), ev)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		c.beginSession() // the seqs start over
		c.recvNs = now + int64(time.Millisecond)
		for i := 0; i < len(wire); i += readBufferSize {
			if err := c.stream.Feed(wire[i:min(i+readBufferSize, len(wire))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*events), "cpu-ns/event")
	c.flushDebits()
	if got := r.ledger.Totals().Debit; got != int64(b.N)*events {
		b.Fatalf("debits %d, want %d", got, int64(b.N)*events)
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
