package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/server/broker"
)

// BenchmarkFanOut publishes 100-byte events to one channel with 1,000
// loopback subscribers and reports the cost per delivery (server and
// readers share this process: use scripts/bench-fanout.sh for the pinned,
// per-process figures).
func BenchmarkFanOut(b *testing.B) {
	for _, mode := range writeModes {
		b.Run(mode.name, func(b *testing.B) {
			const subs = 1000
			srv, err := New(Config{Logger: slog.New(slog.DiscardHandler), DisableDirectWrites: mode.disable})
			if err != nil {
				b.Fatal(err)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = srv.Serve(l, "", "") }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			for i := 0; i < subs; i++ {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "GET /sub/bench HTTP/1.1\r\nHost: x\r\n\r\n")
				go func() { _, _ = io.Copy(io.Discard, c) }()
			}
			// Subscribers count from the moment they connect; wait until
			// every one has joined the channel too.
			for srv.Stats().Channels["bench"].Subscribers < subs {
				time.Sleep(time.Millisecond)
			}
			data := []byte(strings.Repeat("x", 100))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Keep at most 64 events in flight, a rate the in-process
				// readers sustain; beyond it they would be cut off as slow
				// consumers, which is what the queue bound is for.
				for uint64(i)*subs-srv.hub.stats.written.Load() > 64*subs {
					time.Sleep(20 * time.Microsecond)
				}
				if _, err := srv.Publish(ctx, []PublishMessage{{Channel: "bench", Data: data}}); err != nil {
					b.Fatal(err)
				}
			}
			want := uint64(b.N) * subs
			stuck := time.Now().Add(30 * time.Second)
			for {
				st := srv.Stats().Totals
				if time.Now().After(stuck) {
					b.Fatalf("stuck: want %d, totals %+v", want, st)
				}
				if st.Written+st.Dropped >= want {
					if st.Dropped > 0 {
						b.Fatalf("%d of %d deliveries dropped: %v", st.Dropped, want, st.DroppedByReason)
					}
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/delivery")
		})
	}
}

// BenchmarkHubFanOut measures the node's own per-event work without
// sockets: frame an event from the broker, fan it out to 100 subscribers of
// its channel and hand each its bytes (stream mode, to a writer that drops
// them). It is steadier than BenchmarkFanOut for comparing changes to the
// hot path.
func BenchmarkHubFanOut(b *testing.B) {
	const subs = 100
	cfg := Config{Shards: 1, Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	h := newHub(cfg, cfg.Logger)
	m, err := broker.NewMemory(broker.Config{Handler: h.dispatch})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	h.broker = m
	ctx := context.Background()
	var all []*subscriber
	for i := 0; i < subs; i++ {
		s := &subscriber{hub: h, done: make(chan struct{}), chans: make([]*channel, 1), wake: make(chan struct{}, 1)}
		h.register(s)
		ch, err := h.join(ctx, "bench", s)
		if err != nil {
			b.Fatal(err)
		}
		s.setChannel(0, ch)
		s.goLive(nil)
		all = append(all, s)
	}
	sh := h.shards[0]
	body := sse.AppendBody(nil, "message", []byte(strings.Repeat("x", 100)))
	discard := func(b []byte) (int, error) { return len(b), nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.dispatch(broker.Delivery{Channel: "bench", ID: eventid.ID{Ms: uint64(i + 1)}, Body: body})
		sh.batch = append(sh.batch[:0], <-sh.q)
		sh.fanOut()
		for _, s := range all {
			s.drainStream(discard)
		}
	}
	b.StopTimer()
	if st := h.snapshot().Totals; st.Written != uint64(b.N)*subs {
		b.Fatalf("written %d of %d", st.Written, uint64(b.N)*subs)
	}
}
