package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server/broker"
)

// cutter is a memory broker that has the subscriber being set up cut as a
// slow consumer at one step: it publishes an event too big for the
// subscriber's queue while events are held for it, and waits for the cut.
type cutter struct {
	*broker.Memory
	srv atomic.Pointer[Server]
	// at is "history" (cut while history is read, before the handler took
	// over the connection) or "subscribe" (cut while joining the second of
	// two channels, a and b).
	at string
}

func (b *cutter) cut(ctx context.Context, channel string) error {
	big := sse.AppendBody(nil, "message", bytes.Repeat([]byte("x"), 200))
	if _, err := b.Publish(ctx, []broker.Message{{Channel: channel, Body: big}}); err != nil {
		return err
	}
	for {
		if srv := b.srv.Load(); srv != nil && srv.Stats().Totals.DisconnectsByReason[reasonSlowConsumer] > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *cutter) Subscribe(ctx context.Context, channel string) error {
	if b.at == "subscribe" && channel == "b" {
		if err := b.cut(ctx, "a"); err != nil {
			return err
		}
	}
	return b.Memory.Subscribe(ctx, channel)
}

func (b *cutter) History(ctx context.Context, channel string, after eventid.ID) (broker.History, error) {
	if b.at == "history" {
		if err := b.cut(ctx, channel); err != nil {
			return broker.History{}, err
		}
	}
	return b.Memory.History(ctx, channel, after)
}

// TestSlowConsumerCutWhileSettingUp: a subscriber cut before its stream
// started (while it joins its channels or while its history is read) has
// its connection closed or its stream ended, instead of left open and
// never written, and is left in no channel.
func TestSlowConsumerCutWhileSettingUp(t *testing.T) {
	t.Parallel()
	for _, at := range []string{"history", "subscribe"} {
		for _, mode := range writeModes {
			t.Run(at+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				b := &cutter{at: at}
				srv, base := startServer(t, Config{
					MaxQueueBytes: 64, DisableDirectWrites: mode.disable,
					NewBroker: func(h broker.Handler) (broker.Broker, error) {
						m, err := broker.NewMemory(broker.Config{Handler: h})
						b.Memory = m
						return b, err
					},
				})
				b.srv.Store(srv)

				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sub/a/b", nil)
				req.Header.Set("Last-Event-ID", "a=1-0;b=1-0")
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					// The stream path answers before it notices; the stream must end.
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatalf("the cut subscriber's stream did not end: %v", err)
					}
				} else if ctx.Err() != nil {
					t.Fatalf("the cut subscriber's connection was left open: %v", err)
				}
				tstest.WaitFor(t, 2*time.Second, "the subscriber to be gone", func() bool {
					st := srv.Stats()
					return st.Totals.Subscribers == 0 && st.Totals.DisconnectsByReason[reasonSlowConsumer] == 1 && st.Balance == 0 &&
						st.Channels["a"].Subscribers == 0 && st.Channels["b"].Subscribers == 0
				})
			})
		}
	}
}

// staleHistory is a memory broker whose history read is slow: it reads the
// history, then live events arrive (held for the resuming subscriber)
// until it is cut as a slow consumer, and only then is the read answered —
// with what it had read, which does not hold those live events.
type staleHistory struct {
	*broker.Memory
	srv  atomic.Pointer[Server]
	live atomic.Int64 // events published while the read was "slow"
	once atomic.Bool
}

func (b *staleHistory) History(ctx context.Context, channel string, after eventid.ID) (broker.History, error) {
	h, err := b.Memory.History(ctx, channel, after)
	if err != nil || !b.once.CompareAndSwap(false, true) {
		return h, err
	}
	for b.srv.Load().Stats().Totals.DisconnectsByReason[reasonSlowConsumer] == 0 && ctx.Err() == nil {
		body := sse.AppendBody(nil, "message", bytes.Repeat([]byte("x"), 100))
		if _, err := b.Publish(ctx, []broker.Message{{Channel: channel, Body: body}}); err != nil {
			return broker.History{}, err
		}
		b.live.Add(1)
	}
	return h, nil
}

// TestCutWhileResumingKeepsTheBooks: a subscriber cut as a slow consumer
// while its history is read still gets the history it asked for and then
// the end of its stream (so it resumes from there), the history counts as
// replayed only once written, and the live events held for it count as
// fanned out and dropped — nothing the server took vanishes from /stats.
func TestCutWhileResumingKeepsTheBooks(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			b := &staleHistory{}
			srv, base := startServer(t, Config{
				MaxQueueBytes: 256, DisableDirectWrites: mode.disable,
				NewBroker: func(h broker.Handler) (broker.Broker, error) {
					m, err := broker.NewMemory(broker.Config{Handler: h, MaxLen: 10000})
					b.Memory = m
					return b, err
				},
			})
			b.srv.Store(srv)
			first := publish(t, base, "c", "one")
			second := publish(t, base, "c", "two")

			s := subscribe(t, base+"/sub/c", map[string]string{"Last-Event-ID": first})
			got := s.ended(5 * time.Second)
			if len(got) != 1 || got[0].ID != second || string(got[0].Data) != "two" {
				t.Fatalf("the cut subscriber got %+v, want the history event %s and the end of the stream", got, second)
			}
			live := b.live.Load()
			tstest.WaitFor(t, 2*time.Second, "the cut subscriber to be gone and its history counted", func() bool {
				st := srv.Stats().Totals
				return st.Subscribers == 0 && st.HistoryReplayed > 0
			})
			st := srv.Stats().Totals
			// The events held when it was cut (those published until then)
			// were fanned out to it and dropped; none was written live.
			if held := st.DroppedByReason[reasonSlowConsumer]; st.HistoryReplayed != 1 || held == 0 || held > uint64(live) ||
				st.FannedOut != held || st.Written != 0 || st.FannedOut != st.Written+st.Dropped+st.Queued {
				t.Fatalf("history_replayed %d (want 1), dropped slow_consumer %d (want the held ones: 1 to %d), fanned_out %d = written %d (want 0) + dropped %d + queued %d?",
					st.HistoryReplayed, held, live, st.FannedOut, st.Written, st.Dropped, st.Queued)
			}

			// Resuming from the history event gets every held event back.
			again := subscribe(t, base+"/sub/c", map[string]string{"Last-Event-ID": second})
			for i := int64(0); i < live; i++ {
				if ev := again.next(5 * time.Second); ev.Event != "" && ev.Event != "message" {
					t.Fatalf("resumed stream: event %d is %q: %s", i, ev.Event, ev.Data)
				}
			}
			// (Counted once the write returned, which the reader may beat.)
			tstest.WaitFor(t, 2*time.Second, "history_replayed to count the resume's replay", func() bool {
				return srv.Stats().Totals.HistoryReplayed == 1+uint64(live)
			})
		})
	}
}
