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
				waitFor(t, 2*time.Second, "the subscriber to be gone", func() bool {
					st := srv.Stats()
					return st.Totals.Subscribers == 0 && st.Totals.DisconnectsByReason[reasonSlowConsumer] == 1 && st.Balance == 0 &&
						st.Channels["a"].Subscribers == 0 && st.Channels["b"].Subscribers == 0
				})
			})
		}
	}
}
