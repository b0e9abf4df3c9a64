package swarm

import (
	"strconv"
	"testing"
	"time"
)

// benchClient is the one client of a one-channel run, in session.
func benchClient(b *testing.B) *client {
	b.Helper()
	cfg := Config{Clients: 1, Channels: 1, Seed: 1, ChannelPrefix: "bench"}.withDefaults()
	r, err := newRun(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r.rec = newRecorder(time.Now())
	c := r.clients[0]
	c.shard = &r.rec.shards[0]
	c.beginSession()
	return c
}

// BenchmarkClientEvent is the per-event accounting of one client: the
// part of the 10 µs per event budget spent in user space after the read.
func BenchmarkClientEvent(b *testing.B) {
	c := benchClient(b)
	r := c.r
	now := time.Now().UnixNano()
	datas := make([][]byte, 1024)
	for i := range datas {
		datas[i] = []byte(`{"ch":"bench_0","seq":` + strconv.Itoa(i) + `,"ts":` + strconv.FormatInt(now+int64(i)*int64(time.Millisecond), 10) + `,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	}
	typ := []byte("message")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(datas) == 0 {
			c.beginSession() // the seqs start over
		}
		c.recvNs = now + int64(i%len(datas))*int64(time.Millisecond) + int64(time.Millisecond)
		c.event(typ, datas[i%len(datas)])
	}
	b.StopTimer()
	c.flushDebits()
	if got := r.ledger.Totals().Debit; got != int64(b.N) {
		b.Fatalf("debits %d, want %d", got, b.N)
	}
}
