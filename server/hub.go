package server

import (
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"iter"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/server/broker"
)

// channel is a channel with local subscribers.
type channel struct {
	name  string
	shard *shard
	subs  atomic.Pointer[[]*subscriber] // copy-on-write; the fan-out reads it without locks
	stats deliveryCounters

	// mu serialises joins and the broker subscription; it is held across
	// broker calls, so the fan-out never takes it. subsMu only guards the
	// copy-on-write of subs.
	mu         sync.Mutex
	subscribed bool // the broker delivers this channel to the node
	removed    bool // swept from the hub; joiners must look again
	subsMu     sync.Mutex
	idleSince  atomic.Int64 // unix nanos when the last subscriber left
	// events counts the events the channel's shard fanned out (only that
	// goroutine touches it): it picks where each fan-out starts.
	events uint64
}

// fanStart is where the fan-out of a channel's seq-th event starts among
// its n subscribers. A fan-out on one core writes one subscriber after the
// other, so the last of a thousand gets the event ~1,000 writes after the
// first; starting every event at a different place (multiplicative
// hashing spreads consecutive events over the list) makes that wait every
// subscriber's equally, instead of always the same subscribers'.
func fanStart(n int, seq uint64) int {
	if n <= 1 {
		return 0
	}
	return int((seq * 0x9E3779B97F4A7C15 >> 32) % uint64(n))
}

// fanOrder is the channel's subscribers in the order of its next event's
// fan-out: from fanStart, wrapping around. Only the channel's shard calls
// it.
func (ch *channel) fanOrder() iter.Seq[*subscriber] {
	subs := *ch.subs.Load()
	at := fanStart(len(subs), ch.events)
	ch.events++
	return func(yield func(*subscriber) bool) {
		for range subs {
			if !yield(subs[at]) {
				return
			}
			if at++; at == len(subs) {
				at = 0
			}
		}
	}
}

// hub owns the channels, the subscribers and the fan-out shards.
type hub struct {
	cfg        Config
	log        *slog.Logger
	broker     broker.Broker
	brokerName string
	started    time.Time
	stats      nodeStats
	seed       maphash.Seed

	mu       sync.RWMutex
	channels map[string]*channel
	subs     map[*subscriber]struct{}
	closed   bool

	shards []*shard
	wg     sync.WaitGroup // every goroutine the hub starts
	stop   chan struct{}
}

// shard fans events out, in order, for the channels that hash to it.
type shard struct {
	h     *hub
	q     chan *frame
	batch []*frame
	dirty []*subscriber
}

func newHub(cfg Config, log *slog.Logger) *hub {
	h := &hub{
		cfg:      cfg,
		log:      log,
		started:  time.Now(),
		seed:     maphash.MakeSeed(),
		channels: map[string]*channel{},
		subs:     map[*subscriber]struct{}{},
		stop:     make(chan struct{}),
	}
	for i := 0; i < cfg.Shards; i++ {
		h.shards = append(h.shards, &shard{h: h, q: make(chan *frame, cfg.ShardQueue)})
	}
	return h
}

// start launches the shards and housekeeping once the broker is set.
func (h *hub) start() {
	for _, sh := range h.shards {
		h.wg.Add(1)
		go sh.run()
	}
	h.wg.Add(1)
	go h.housekeeping()
}

// dispatch is the broker's Handler: it frames the event once and hands it
// to the channel's shard.
func (h *hub) dispatch(d broker.Delivery) {
	h.mu.RLock()
	ch := h.channels[d.Channel]
	h.mu.RUnlock()
	if ch == nil {
		return
	}
	f := newFrame(ch, d.ID, d.Body)
	ch.stats.received.Add(1)
	h.stats.received.Add(1)
	if d.CaughtUp {
		h.stats.caughtUp.Add(1)
	}
	select {
	case ch.shard.q <- f:
	case <-h.stop:
	}
}

// catchUp is the broker's OnCatchUp: its link to the other nodes was lost
// and is back, and the events published meanwhile follow through dispatch.
// Where some of them are gone from history, the channel's subscribers get a
// darktime.missed notice first, through the channel's shard so that it
// comes after the events before the gap and before those after it.
func (h *hub) catchUp(cu broker.CatchUp) {
	h.stats.catchUps.Add(1)
	for _, g := range cu.Gaps {
		h.mu.RLock()
		ch := h.channels[g.Channel]
		h.mu.RUnlock()
		if ch == nil {
			continue
		}
		data, _ := json.Marshal(missedNotice{Channel: g.Channel, LastEventID: g.After.String(), Reason: string(g.Reason)})
		wire, _ := sse.AppendEvent(nil, sse.Event{Event: "darktime.missed", Data: data})
		select {
		case ch.shard.q <- &frame{ch: ch, wire: wire, notice: true}:
		case <-h.stop:
		}
	}
}

func (sh *shard) run() {
	defer sh.h.wg.Done()
	for {
		select {
		case f := <-sh.q:
			sh.batch = append(sh.batch[:0], f)
		case <-sh.h.stop:
			return
		}
		// Take whatever else is queued: under load a batch grows and each
		// subscriber gets several events in one write.
	drain:
		for len(sh.batch) < 4096 {
			select {
			case f := <-sh.q:
				sh.batch = append(sh.batch, f)
			default:
				break drain
			}
		}
		sh.fanOut()
	}
}

func (sh *shard) fanOut() {
	alone := len(sh.batch) == 1
	for i, f := range sh.batch {
		if f.notice {
			sh.notify(f)
		} else {
			sh.fanFrame(f, alone)
		}
		sh.batch[i] = nil
	}
	for i, s := range sh.dirty {
		s.flush()
		sh.dirty[i] = nil
	}
	sh.dirty = sh.dirty[:0]
}

// fanFrame hands an event to every subscriber of its channel, from
// fanStart around. alone says it is its batch's only event, as it comes at
// moderate load: then each subscriber is written to as the loop reaches it
// (deliver), so the first write leaves at once instead of after every
// subscriber was queued. Otherwise the event is queued (enqueue) and the
// batch's subscribers are flushed once after it, each with every event of
// the batch in one write. The counters are added once per event.
func (sh *shard) fanFrame(f *frame, alone bool) {
	var accepted, wrote uint64
	for s := range f.ch.fanOrder() {
		var out outcome
		if alone {
			out = s.deliver(f)
		} else {
			out = s.enqueue(f)
		}
		switch out {
		case outWritten:
			accepted++
			wrote++
		case outQueued:
			accepted++
			sh.dirty = append(sh.dirty, s)
		case outTaken:
			accepted++
		}
	}
	f.ch.stats.fannedOut.Add(accepted)
	sh.h.stats.fannedOut.Add(accepted)
	if wrote > 0 {
		f.ch.stats.written.Add(wrote)
		sh.h.stats.written.Add(wrote)
	}
}

// notify queues a notice frame for every subscriber of its channel.
func (sh *shard) notify(f *frame) {
	var n uint64
	for _, s := range *f.ch.subs.Load() {
		accepted, schedule := s.enqueueNotice(f)
		if accepted {
			n++
		}
		if schedule {
			sh.dirty = append(sh.dirty, s)
		}
	}
	sh.h.stats.missedNotices.Add(n)
}

var errShuttingDown = errors.New("server is shutting down")

// join adds s to the channel, subscribing the node at the broker first if
// needed; when join returns, every later event of the channel reaches s.
func (h *hub) join(ctx context.Context, name string, s *subscriber) (*channel, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, errShuttingDown
		}
		ch := h.channels[name]
		if ch == nil {
			ch = &channel{name: name, shard: h.shards[maphash.String(h.seed, name)%uint64(len(h.shards))]}
			ch.subs.Store(&[]*subscriber{})
			h.channels[name] = ch
		}
		h.mu.Unlock()

		ch.mu.Lock()
		if ch.removed {
			ch.mu.Unlock()
			continue
		}
		if !ch.subscribed {
			if err := h.broker.Subscribe(ctx, name); err != nil {
				ch.mu.Unlock()
				return nil, err
			}
			ch.subscribed = true
		}
		ch.subsMu.Lock()
		old := *ch.subs.Load()
		next := make([]*subscriber, len(old), len(old)+1)
		copy(next, old)
		next = append(next, s)
		ch.subs.Store(&next)
		ch.subsMu.Unlock()
		ch.mu.Unlock()
		return ch, nil
	}
}

// leave removes s from the channel.
func (h *hub) leave(ch *channel, s *subscriber) {
	ch.subsMu.Lock()
	defer ch.subsMu.Unlock()
	old := *ch.subs.Load()
	next := make([]*subscriber, 0, len(old))
	for _, o := range old {
		if o != s {
			next = append(next, o)
		}
	}
	ch.subs.Store(&next)
	if len(next) == 0 {
		ch.idleSince.Store(time.Now().UnixNano())
	}
}

// track counts a goroutine that a request handler is about to start among
// those shutdown waits for. Once shutdown has begun it returns false and the
// goroutine must not start: an Add racing shutdown's Wait could be missed.
func (h *hub) track() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// register records a new open subscriber.
func (h *hub) register(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.subs[s] = struct{}{}
	h.stats.subscribers.Add(1)
	h.stats.connections.Add(1)
	return true
}

// detach unregisters a closed subscriber.
func (h *hub) detach(s *subscriber) {
	for _, ch := range s.joined() {
		if ch != nil {
			h.leave(ch, s)
		}
	}
	h.mu.Lock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		h.stats.subscribers.Add(-1)
		h.stats.disconnects[reasonIndex(s.reason)].Add(1)
	}
	h.mu.Unlock()
}

func (h *hub) subscribers() []*subscriber {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*subscriber, 0, len(h.subs))
	for s := range h.subs {
		out = append(out, s)
	}
	return out
}

func (h *hub) channelList() []*channel {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// housekeeping sends keep-alives and sweeps channels left without
// subscribers (unsubscribing the node at the broker).
func (h *hub) housekeeping() {
	defer h.wg.Done()
	keepAlive := time.NewTicker(h.cfg.KeepAlive / 2) // see subscriber.keepAlive
	defer keepAlive.Stop()
	sweep := time.NewTicker(h.cfg.ChannelIdle)
	defer sweep.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-keepAlive.C:
			h.keepAlive()
		case <-sweep.C:
			h.sweep()
		}
	}
}

// keepAlive is the half-interval keep-alive tick: streams silent since the
// last tick get a comment (subscriber.keepAlive).
func (h *hub) keepAlive() {
	for _, s := range h.subscribers() {
		s.keepAlive(sseComment)
	}
}

func (h *hub) sweep() {
	now := time.Now()
	for _, ch := range h.channelList() {
		ch.mu.Lock()
		idle := len(*ch.subs.Load()) == 0 && now.Sub(time.Unix(0, ch.idleSince.Load())) >= h.cfg.ChannelIdle
		if idle {
			ch.removed = true
			if ch.subscribed {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := h.broker.Unsubscribe(ctx, ch.name); err != nil {
					h.log.Warn("unsubscribe idle channel", "channel", ch.name, "err", err)
				}
				cancel()
				ch.subscribed = false
			}
		}
		ch.mu.Unlock()
		if idle {
			h.mu.Lock()
			if h.channels[ch.name] == ch {
				delete(h.channels, ch.name)
			}
			h.mu.Unlock()
		}
	}
}

// shutdown tells every subscriber to reconnect elsewhere (notice is drawn
// per subscriber: each gets its own retry hint), waits until the
// notices are written or ctx ends, then closes what is left.
func (h *hub) shutdown(ctx context.Context, notice func() []byte) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	for _, s := range h.subscribers() {
		s.goodbye(notice())
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for len(h.subscribers()) > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	for _, s := range h.subscribers() {
		s.close(reasonShutdown)
	}
	close(h.stop)
	h.wg.Wait()
}
