package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/eventid"
)

// Memory is the in-process broker: one node, history in memory.
type Memory struct {
	cfg Config
	now func() time.Time

	mu         sync.Mutex // also serialises Handler calls, so they come in id order
	chans      map[string]*memChannel
	subscribed map[string]bool
	dedupe     map[dedupeKey]dedupeEntry
	closed     bool

	stop chan struct{}
	done chan struct{}
}

type memChannel struct {
	last    eventid.ID // newest id ever assigned
	trimmed eventid.ID // newest id removed by trimming
	events  []memEvent // oldest first
	newest  time.Time  // when the newest event was published
}

type memEvent struct {
	d  Delivery
	at time.Time
}

type dedupeKey struct{ channel, key string }

type dedupeEntry struct {
	id      eventid.ID
	expires time.Time
}

var _ Broker = (*Memory)(nil)

// NewMemory returns an in-process broker.
func NewMemory(cfg Config) (*Memory, error) {
	return newMemory(cfg, time.Now)
}

func newMemory(cfg Config, now func() time.Time) (*Memory, error) {
	if cfg.Handler == nil {
		return nil, fmt.Errorf("broker: Config.Handler is required")
	}
	m := &Memory{
		cfg:        cfg.withDefaults(),
		now:        now,
		chans:      map[string]*memChannel{},
		subscribed: map[string]bool{},
		dedupe:     map[dedupeKey]dedupeEntry{},
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	go m.sweepLoop()
	return m, nil
}

// Publish implements Broker.
func (m *Memory) Publish(_ context.Context, msgs []Message) ([]eventid.ID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.now()
	nowMs := uint64(now.UnixMilli())
	ids := make([]eventid.ID, len(msgs))
	for i, msg := range msgs {
		var dk dedupeKey
		if msg.Key != "" {
			dk = dedupeKey{msg.Channel, msg.Key}
			if e, ok := m.dedupe[dk]; ok && now.Before(e.expires) {
				ids[i] = e.id
				continue
			}
		}
		ch := m.chans[msg.Channel]
		if ch == nil {
			ch = &memChannel{}
			m.chans[msg.Channel] = ch
		}
		id := eventid.ID{Ms: nowMs}
		if !ch.last.Less(id) {
			id = ch.last.Next()
		}
		ch.last = id
		ch.newest = now
		d := Delivery{Channel: msg.Channel, ID: id, Body: msg.Body}
		ch.events = append(ch.events, memEvent{d: d, at: now})
		m.trim(ch, now)
		if msg.Key != "" {
			m.dedupe[dk] = dedupeEntry{id: id, expires: now.Add(m.cfg.DedupeWindow)}
		}
		ids[i] = id
		if m.subscribed[msg.Channel] {
			m.cfg.Handler(d)
		}
	}
	return ids, nil
}

// trim drops events beyond MaxLen or older than MaxAge.
func (m *Memory) trim(ch *memChannel, now time.Time) {
	cut := 0
	if over := len(ch.events) - m.cfg.MaxLen; over > 0 {
		cut = over
	}
	oldest := now.Add(-m.cfg.MaxAge)
	for cut < len(ch.events) && ch.events[cut].at.Before(oldest) {
		cut++
	}
	if cut == 0 {
		return
	}
	ch.trimmed = ch.events[cut-1].d.ID
	// Copy rather than reslice so the backing array does not grow forever.
	n := copy(ch.events, ch.events[cut:])
	for i := n; i < len(ch.events); i++ {
		ch.events[i] = memEvent{}
	}
	ch.events = ch.events[:n]
}

// Subscribe implements Broker.
func (m *Memory) Subscribe(_ context.Context, channel string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.subscribed[channel] = true
	return nil
}

// Unsubscribe implements Broker.
func (m *Memory) Unsubscribe(_ context.Context, channel string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.subscribed, channel)
	return nil
}

// History implements Broker.
func (m *Memory) History(_ context.Context, channel string, after eventid.ID) (History, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return History{}, ErrClosed
	}
	now := m.now()
	var h History
	ch := m.chans[channel]
	if ch != nil {
		m.trim(ch, now)
		if after.Less(ch.trimmed) {
			h.Missed, h.Reason = true, MissTrimmed
		}
		for _, e := range ch.events {
			if after.Less(e.d.ID) {
				h.Events = append(h.Events, e.d)
			}
		}
	}
	if !h.Missed && tooOld(after, now, m.cfg.MaxAge) {
		h.Missed, h.Reason = true, MissTooOld
	}
	return h, nil
}

// tooOld reports whether events following after may have expired.
func tooOld(after eventid.ID, now time.Time, maxAge time.Duration) bool {
	return !after.IsZero() && int64(after.Ms) < now.Add(-maxAge).UnixMilli()
}

// Last implements Broker.
func (m *Memory) Last(_ context.Context, channel string) (eventid.ID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch := m.chans[channel]; ch != nil {
		return ch.last, nil
	}
	return eventid.ID{}, nil
}

// Close implements Broker.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	return nil
}

// sweepLoop forgets channels whose history has expired and old dedupe keys,
// so arbitrary channel names do not accumulate.
func (m *Memory) sweepLoop() {
	defer close(m.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

func (m *Memory) sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for name, ch := range m.chans {
		if now.Sub(ch.newest) > m.cfg.MaxAge {
			delete(m.chans, name)
		}
	}
	for k, e := range m.dedupe {
		if !now.Before(e.expires) {
			delete(m.dedupe, k)
		}
	}
}
