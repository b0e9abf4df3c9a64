package broker

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// stallProxy relays TCP to Redis and can silence the connections that
// subscribed: Redis's answers to them stop arriving while the
// connections stay open and every other connection (the publishes) works
// — what centrifugo #1189 saw after a failover.
type stallProxy struct {
	addr    string
	mu      sync.Mutex
	subs    []*stallConn
	stalled int
}

type stallConn struct{ silent atomic.Bool }

func newStallProxy(t *testing.T, upstream string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			sc := &stallConn{}
			conns.Add(2)
			go func() { // client → Redis, watching for SUBSCRIBE
				defer conns.Done()
				defer u.Close()
				buf := make([]byte, 32<<10)
				marked := false
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if !marked && bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
							marked = true
							p.mu.Lock()
							p.subs = append(p.subs, sc)
							p.mu.Unlock()
						}
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() { // Redis → client, dropped silently once stalled
				defer conns.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					if n > 0 && !sc.silent.Load() {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						_, _ = io.Copy(io.Discard, u)
						return
					}
				}
			}()
		}
	}()
	return p
}

// stall silences every subscribed connection so far.
func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, sc := range p.subs {
		sc.silent.Store(true)
	}
	p.stalled = len(p.subs)
}

// TestSilentlyDeadSubscription: on one Redis, a node whose subscription
// connection goes silent while its publishes still succeed is unhealthy
// within seconds, makes the link again by itself, and catches up, so
// every publish that was answered is delivered.
func TestSilentlyDeadSubscription(t *testing.T) {
	tstest.Long(t, "waits for a dead link to be noticed and made again")
	rd := redistest.Start(t)
	px := newStallProxy(t, rd.Addr)
	var (
		mu       sync.Mutex
		got      = map[string]bool{}
		catchUps atomic.Int64
	)
	b, err := NewRedis(RedisConfig{
		URL: "redis://" + px.addr + "/0", Prefix: "silent:", OnError: func(err error) { t.Logf("link error: %v", err) },
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: time.Second,
		// History longer than the silent window's publishes (~250), so the
		// catch-up has them all; a shorter one announces a gap instead.
		Config: Config{MaxLen: 10000, OnCatchUp: func(c CatchUp) {
			t.Logf("catch-up %+v", c)
			catchUps.Add(1)
			if len(c.Gaps) > 0 {
				t.Errorf("the catch-up found gaps %v: history too short for the test", c.Gaps)
			}
		}, Handler: func(d Delivery) {
			mu.Lock()
			got[d.ID.String()] = true
			mu.Unlock()
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, 10*time.Second, "a healthy broker", func() bool { return b.Health().OK })

	var (
		pmu      sync.Mutex
		answered []string
		failed   int
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ids, err := b.Publish(ctx, []Message{{Channel: "c", Body: []byte("data: e")}})
			pmu.Lock()
			if err != nil {
				failed++
			} else {
				answered = append(answered, ids[0].String())
			}
			pmu.Unlock()
			time.Sleep(5 * time.Millisecond) // paces the publisher: not a wait for a negative check
		}
	}()
	count := func() int { pmu.Lock(); defer pmu.Unlock(); return len(answered) }
	tstest.WaitFor(t, 10*time.Second, "100 publishes", func() bool { return count() >= 100 })

	px.stall()
	if px.stalled == 0 {
		t.Fatal("no subscribed connection went through the proxy")
	}
	stalledAt := time.Now()
	var reasons []string
	tstest.WaitFor(t, 5*time.Second, "the node unhealthy", func() bool {
		h := b.Health()
		reasons = h.Reasons
		return !h.OK
	})
	t.Logf("unhealthy %v after the link went silent: %s", time.Since(stalledAt).Round(10*time.Millisecond), strings.Join(reasons, "; "))
	n := count()
	tstest.WaitFor(t, 5*time.Second, "publishes answered while the link is silent", func() bool { return count() >= n+50 })
	tstest.WaitFor(t, 20*time.Second, "the link made again and healthy", func() bool { return b.Health().OK })
	t.Logf("healthy again %v after the link went silent", time.Since(stalledAt).Round(10*time.Millisecond))
	n = count()
	tstest.WaitFor(t, 10*time.Second, "100 publishes after", func() bool { return count() >= n+100 })
	close(stop)
	<-done

	pmu.Lock()
	want := append([]string(nil), answered...)
	pmu.Unlock()
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var m []string
		for _, id := range want {
			if !got[id] {
				m = append(m, id)
			}
		}
		return m
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling for the positive outcome, bounded
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d answered publishes never delivered (first %v, last %v)", len(m), len(want), m[0], m[len(m)-1])
	}
	if catchUps.Load() == 0 {
		t.Error("the link was made again without a catch-up")
	}
	t.Logf("%d publishes answered, %d failed, all delivered", len(want), failed)
}
