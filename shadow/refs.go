package shadow

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The reference log of a channel (LEDGER.md, "Cohorts"): where the proxy
// did not send an event's publish to a stream's world itself (the publish
// clock, pubclock.go, gives the other delays), it does not know when the
// event was published, so the event's delay on a stream is its arrival
// there minus its first sighting on any reference stream of the same
// channel (the request path) — the primary streams of the mirrored users
// in mirror mode, of the control cohort in divert mode. Both delays are
// kept for every event that has them; the document shows one rule
// (epoch.delayRule).
// Diverted streams are also reconciled against it: what the references
// saw while the diverted stream was open and it did not get within the
// settle window is missing; what it got and no reference saw is extra.

// maxChannels bounds the channels whose reference logs are kept; streams
// of channels beyond it are not observed (counted).
const maxChannels = 10000

// maxFirstSightings bounds the events of one channel's settle window
// whose first sighting is remembered; beyond it events are not observed
// (counted with the channels).
const maxFirstSightings = 100000

// tracker holds the channels' reference logs.
type tracker struct {
	p     *Proxy
	mu    sync.Mutex
	chans map[string]*chanLog
}

type sighting struct {
	id uint64
	at int64
}

// chanLog is one channel: the first reference sighting of each event in
// the last settle window, and the other streams observed against it.
type chanLog struct {
	name     string
	mu       sync.Mutex
	first    map[uint64]int64
	order    []sighting // first sightings, oldest first, for pruning
	refs     int        // reference streams open
	refSince int64      // since when refs > 0
	streams  map[*cstream]struct{}
}

// cstream is one observed stream. Its fields are guarded by its
// channel's mutex.
type cstream struct {
	t      *tracker
	ch     *chanLog
	role   cohortRole
	start  int64 // the request reached the proxy (for the first event)
	opened int64 // the stream's answer reached the proxy
	closed int64 // 0 while open
	gotAny bool
	// What every event needs, looked up once.
	maxPending int
	edge       int64
	delays     prometheus.Observer
	events     prometheus.Counter
	// divert: reconciled against the reference log (diverted streams).
	divert bool
	early  map[uint64]int64 // got before any reference sighting
	owed   map[uint64]int64 // sighted by a reference, not yet got (divert)
	seen   map[uint64]int64 // got within the settle window
}

func newTracker(p *Proxy) *tracker { return &tracker{p: p, chans: map[string]*chanLog{}} }

// open starts observing a stream of channel in a cohort; nil (observing
// nothing) when too many channels are tracked.
func (t *tracker) open(role cohortRole, channel string, start, opened int64, divert bool) *cstream {
	t.mu.Lock()
	ch := t.chans[channel]
	if ch == nil {
		if len(t.chans) >= maxChannels {
			t.mu.Unlock()
			t.p.m.cohortChannelsFull.Inc()
			return nil
		}
		ch = &chanLog{name: channel, first: map[uint64]int64{}, streams: map[*cstream]struct{}{}}
		t.chans[channel] = ch
	}
	cfg := &t.p.state.Load().cfg
	cs := &cstream{t: t, ch: ch, role: role, start: start, opened: opened, divert: divert,
		maxPending: cfg.Mirror.MaxPending, edge: int64(cfg.Ledger.Edge), delays: t.p.m.cohortDelay.WithLabelValues(role.String()),
		events: t.p.m.cohort.WithLabelValues(role.String(), "events")}
	ch.mu.Lock()
	t.mu.Unlock()
	defer ch.mu.Unlock()
	if role == cohortPrimary {
		if ch.refs == 0 {
			ch.refSince = opened
		}
		ch.refs++
		return cs
	}
	cs.early, cs.seen = map[uint64]int64{}, map[uint64]int64{}
	if divert {
		cs.owed = map[uint64]int64{}
	}
	ch.streams[cs] = struct{}{}
	return cs
}

// event records the arrival of event id on the stream at now.
func (cs *cstream) event(id uint64, now int64) {
	if cs == nil {
		return
	}
	p, ch := cs.t.p, cs.ch
	acc := p.epoch.Load().cohort(cs.role)
	// The send of its publish to this stream's world, when the proxy
	// relayed it (pubclock.go): the delay by the send rule.
	sentAt, sent := p.clock.sendTime(cs.role, id)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !cs.gotAny {
		cs.gotAny = true
		acc.addFirst(now - cs.start)
	}
	if cs.role == cohortPrimary {
		acc.events.Add(1)
		cs.events.Inc()
		if sent {
			acc.addSendDelay(now - sentAt)
			cs.delays.Observe(float64(now-sentAt) / 1e9)
		}
		first, ok := ch.first[id]
		if !ok && len(ch.first) >= maxFirstSightings {
			p.m.cohortChannelsFull.Inc() // too busy a channel: this event has no reference
			return
		}
		if !ok {
			ch.first[id] = now
			ch.order = append(ch.order, sighting{id, now})
			first = now
			for o := range ch.streams {
				o.referenced(id, now)
			}
		}
		acc.addDelay(now - first)
		if !sent {
			cs.delays.Observe(float64(now-first) / 1e9)
		}
		return
	}
	if _, dup := cs.seen[id]; dup {
		if cs.divert {
			acc.duplicated.Add(1)
			p.m.cohort.WithLabelValues(cs.role.String(), "duplicated").Inc()
		}
		return
	}
	if len(cs.seen) < cs.maxPending {
		cs.seen[id] = now
	}
	if cs.divert {
		acc.events.Add(1)
		cs.events.Inc()
	}
	if sent {
		acc.addSendDelay(now - sentAt)
		cs.delays.Observe(float64(now-sentAt) / 1e9)
	}
	if first, ok := ch.first[id]; ok {
		delete(cs.owed, id)
		acc.addDelay(now - first)
		if !sent {
			cs.delays.Observe(float64(now-first) / 1e9)
		}
		return
	}
	if len(cs.early) < cs.maxPending {
		cs.early[id] = now
	}
}

// referenced: a reference saw id first at now (the channel is locked).
func (cs *cstream) referenced(id uint64, now int64) {
	if at, ok := cs.early[id]; ok {
		// It came here first: the reference is the later, delay 0.
		delete(cs.early, id)
		cs.t.p.epoch.Load().cohort(cs.role).addDelay(max(0, at-now))
		if _, sent := cs.t.p.clock.sendTime(cs.role, id); !sent {
			cs.delays.Observe(0) // else observed from its send already
		}
		return
	}
	if _, ok := cs.seen[id]; ok {
		return
	}
	if cs.divert && cs.closed == 0 && now >= cs.opened+cs.edge && len(cs.owed) < cs.maxPending {
		cs.owed[id] = now
	}
}

// close ends the stream at now.
func (cs *cstream) close(now int64) {
	if cs == nil {
		return
	}
	ch := cs.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if cs.closed != 0 {
		return
	}
	cs.closed = now
	if cs.role == cohortPrimary {
		ch.refs--
	}
}

// sweep settles what is older than the settle window: owed events become
// missing, events no reference saw extra (both unexplained, diverted
// streams only), and forgets closed streams and idle channels.
func (t *tracker) sweep(now int64) {
	cfg := t.p.Config()
	settle, edge := int64(cfg.Ledger.Settle), int64(cfg.Ledger.Edge)
	t.mu.Lock()
	chans := make([]*chanLog, 0, len(t.chans))
	for _, ch := range t.chans {
		chans = append(chans, ch)
	}
	t.mu.Unlock()
	for _, ch := range chans {
		ch.mu.Lock()
		i := 0
		for ; i < len(ch.order) && now-ch.order[i].at > settle; i++ {
			if ch.first[ch.order[i].id] == ch.order[i].at {
				delete(ch.first, ch.order[i].id)
			}
		}
		ch.order = append(ch.order[:0], ch.order[i:]...)
		for cs := range ch.streams {
			acc := t.p.epoch.Load().cohort(cs.role)
			for id, at := range cs.owed {
				if now-at <= settle {
					continue
				}
				delete(cs.owed, id)
				if cs.closed != 0 && at >= cs.closed-edge {
					continue // at the end edge: it may have been published as the stream closed
				}
				acc.unexplained.Add(1)
				t.p.m.cohort.WithLabelValues(cs.role.String(), "missing").Inc()
			}
			for id, at := range cs.early {
				if now-at <= settle {
					continue
				}
				delete(cs.early, id)
				// Extra only where a reference stream was open all along
				// (since an edge before it came), and past the start edge.
				if cs.divert && ch.refs > 0 && ch.refSince <= at-edge && at >= cs.opened+edge {
					acc.unexplained.Add(1)
					t.p.m.cohort.WithLabelValues(cs.role.String(), "extra").Inc()
				}
			}
			for id, at := range cs.seen {
				if now-at > settle {
					delete(cs.seen, id)
				}
			}
			if cs.closed != 0 && now-cs.closed > settle && len(cs.owed) == 0 && len(cs.early) == 0 {
				delete(ch.streams, cs)
			}
		}
		idle := ch.refs == 0 && len(ch.streams) == 0 && len(ch.first) == 0
		ch.mu.Unlock()
		if idle {
			t.mu.Lock()
			ch.mu.Lock()
			if ch.refs == 0 && len(ch.streams) == 0 && len(ch.first) == 0 && t.chans[ch.name] == ch {
				delete(t.chans, ch.name)
			}
			ch.mu.Unlock()
			t.mu.Unlock()
		}
	}
}
