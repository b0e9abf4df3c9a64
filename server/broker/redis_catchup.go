package broker

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/eventid"
)

// Catching up after a lost pub/sub connection.
//
// While a node's pub/sub connection is down (Redis restarted, a network
// blip), events are still appended to the channels' streams and published,
// only not to this node. go-redis reconnects and resubscribes every channel
// in one command; the receive loop notices the fresh connection at its first
// confirmation, reads each channel's stream after the newest event it had
// received there, and hands the missed events to the Handler before it reads
// on, so they come before the live ones, and drops live events the streams
// had already given.

// redisSub is the node's subscription to one channel as the receive loop
// sees it. Fields are guarded by Redis.subsMu.
type redisSub struct {
	channel   string
	confirmed bool // Redis confirmed the subscription at least once
	// last is the newest event handed to the Handler or, before the first,
	// the channel's newest event when the node subscribed: a catch-up reads
	// the history after it.
	last eventid.ID
	// After a catch-up, live events up to skipUpTo (already delivered from
	// history) are dropped; the first newer one ends skipping.
	skipUpTo eventid.ID
	skipping bool
	// Cluster only: while the channel moves to another shard's link and
	// catches up, its live events wait in pending (delivered after the
	// caught-up ones).
	catching bool
	pending  []Delivery
	rehoming bool // a rehome of the channel is under way (at most one)
}

// Catch-up reads the histories of this many channels at once, and retries
// a failed read this many times in all before reporting a Gap.
const (
	catchUpParallel = 16
	catchUpAttempts = 4
)

// confirmed records Redis's confirmation of a subscription. The first
// confirmation on a fresh connection (Count 1: go-redis resubscribes every
// channel in one command, before anything else) while some channels were
// confirmed before means the connection was lost and restored; it returns
// those channels, which may have missed events.
func (r *Redis) confirmed(m *redis.Subscription) []*redisSub {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	var stale []*redisSub
	if m.Count == 1 {
		for _, s := range r.subs {
			if s.confirmed {
				stale = append(stale, s)
			}
		}
	}
	if s := r.subs[m.Channel]; s != nil {
		s.confirmed = true
	}
	return stale
}

// admit reports whether a live event is to be delivered (not one that a
// catch-up already delivered) and records it as the channel's newest.
func (r *Redis) admit(name string, id eventid.ID) bool {
	r.subsMu.Lock()
	defer r.subsMu.Unlock()
	s := r.subs[name]
	if s == nil {
		return true
	}
	if s.skipping {
		if !s.skipUpTo.Less(id) {
			return false
		}
		s.skipping = false
	}
	if s.last.Less(id) {
		s.last = id
	}
	return true
}

// catchUp runs on the receive loop once a lost pub/sub connection is back
// and every channel resubscribed: it reads each channel's history after the
// newest event the node received and hands the missed events to the
// Handler before any event that arrived live on the new connection (the
// loop reads nothing meanwhile; those that history also held are dropped by
// admit).
func (r *Redis) catchUp(ctx context.Context, subs []*redisSub, lostAt time.Time) {
	rd, ok := r.readCatchUp(ctx, subs, lostAt)
	if ok {
		r.deliverCatchUp(rd)
	}
}

// caughtUp is what readCatchUp read, for deliverCatchUp.
type caughtUp struct {
	subs   []*redisSub
	hs     []History
	cu     CatchUp
	lostAt time.Time
}

// readCatchUp reads the histories a catch-up delivers; false when closing.
func (r *Redis) readCatchUp(ctx context.Context, subs []*redisSub, lostAt time.Time) (caughtUp, bool) {
	if lostAt.IsZero() {
		lostAt = time.Now() // lost without a receive error: just now
	}
	after := make([]eventid.ID, len(subs))
	r.subsMu.Lock()
	for i, s := range subs {
		after[i] = s.last
	}
	r.subsMu.Unlock()

	hs := make([]History, len(subs))
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, catchUpParallel)
	for i, s := range subs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			hs[i], errs[i] = r.readMissed(ctx, s.channel, after[i])
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return caughtUp{}, false // closing
	}

	cu := CatchUp{Channels: len(subs)}
	for i, s := range subs {
		gap := Gap{Channel: s.channel, After: after[i], Reason: hs[i].Reason}
		switch {
		case errs[i] != nil:
			gap.Reason = MissUnavailable
			r.log.Warn("redis pub/sub catch-up: cannot read history; events published while the link was down are lost for this node",
				"channel", s.channel, "after", after[i].String(), "err", errs[i])
		case !hs[i].Missed:
			gap.Reason = ""
		case hs[i].Reason == MissTooOld && time.Since(lostAt) < r.cfg.MaxAge:
			// The channel was quiet for longer than MaxAge, but whatever was
			// published while the link was down is younger than that.
			gap.Reason = ""
		}
		if gap.Reason != "" {
			cu.Gaps = append(cu.Gaps, gap)
		}
		cu.Events += len(hs[i].Events)
	}
	return caughtUp{subs: subs, hs: hs, cu: cu, lostAt: lostAt}, true
}

// deliverCatchUp reports a catch-up and hands its events to the Handler.
func (r *Redis) deliverCatchUp(rd caughtUp) {
	subs, hs, cu, lostAt := rd.subs, rd.hs, rd.cu, rd.lostAt
	if r.cfg.OnCatchUp != nil {
		r.cfg.OnCatchUp(cu)
	}
	for i, s := range subs {
		events := hs[i].Events
		if len(events) == 0 {
			continue
		}
		r.subsMu.Lock()
		current := r.subs[r.pubsubChannel(s.channel)] == s
		newest := events[len(events)-1].ID
		if current {
			if s.last.Less(newest) {
				s.last = newest
			}
			s.skipUpTo, s.skipping = newest, true
		}
		r.subsMu.Unlock()
		if !current {
			continue // unsubscribed meanwhile
		}
		for _, d := range events {
			d.CaughtUp = true
			r.cfg.Handler(d)
		}
	}
	r.log.Info("redis pub/sub link restored; caught up from history",
		"channels", cu.Channels, "events", cu.Events, "gaps", len(cu.Gaps), "down", time.Since(lostAt).Round(time.Millisecond))
}

// readMissed reads a channel's history for catchUp, retrying with backoff:
// the pub/sub connection is back, so Redis most likely answers.
func (r *Redis) readMissed(ctx context.Context, channel string, after eventid.ID) (History, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h, err := r.History(actx, channel, after)
		cancel()
		if err == nil || attempt == catchUpAttempts {
			return h, err
		}
		select {
		case <-ctx.Done():
			return h, err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}
