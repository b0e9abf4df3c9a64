package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/hashslot"
)

// Health probes.
//
// A node's pub/sub link can be down while publishing works (centrifugo
// #1189: the subscription connection is dropped and nothing notices), so
// the broker does not trust the connection's state alone: every
// ProbeInterval it publishes a probe through Redis on a channel of each
// link (on a cluster, one whose slot that link's master serves) and times
// its return. A probe not back within ProbeTimeout makes the link lagging,
// and Health says so; on a cluster the broker also drops the lagging link
// and subscribes its channels again (catching them up from history), as
// for a link that broke.

// Defaults of RedisConfig's probes.
const (
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = 3 * time.Second
)

// Health is what the broker can vouch for now.
type Health struct {
	OK bool `json:"ok"`
	// Reasons says, when not OK, what is wrong: the broker unreachable, a
	// link down, a link lagging.
	Reasons []string    `json:"reasons,omitempty"`
	Links   []LinkState `json:"links"`
}

// probe is the probe of one link.
type probe struct {
	name    string    // pub/sub channel of the probe
	sentAt  time.Time // oldest probe sent and not back (zero: none pending)
	seq     uint64
	backAt  time.Time // when a probe last came back
	lag     time.Duration
	pubErr  string // the last probe publish failed: why
	started time.Time
	// subscribed: on a single Redis the probe is subscribed once (go-redis
	// resubscribes it with the rest after a reconnect).
	subscribed bool
	link       *shardLink // cluster: the link probed (a new link gets a new probe)
}

// prober keeps the probes, by link address ("" on a single Redis).
type prober struct {
	token string
	mu    sync.Mutex
	byKey map[string]*probe
}

func newProber() *prober {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &prober{token: hex.EncodeToString(b), byKey: map[string]*probe{}}
}

// probeName is the probe channel of a link: on a cluster, its slot is one
// the link's master serves.
func (r *Redis) probeName(ctx context.Context, addr string) (string, error) {
	base := r.cfg.Prefix + "probe:" + r.probes.token
	if r.cluster == nil {
		return base, nil
	}
	seen := map[int]bool{}
	for k := 0; k < 4*hashslot.Count && len(seen) < hashslot.Count; k++ {
		name := base + ":{" + strconv.Itoa(k) + "}"
		slot := hashslot.Of(name)
		if seen[slot] {
			continue
		}
		seen[slot] = true
		node, err := r.cluster.cc.MasterForKey(ctx, name)
		if err != nil {
			return "", err
		}
		if node.Options().Addr == addr {
			return name, nil
		}
	}
	return "", fmt.Errorf("no slot served by %s", addr)
}

// isProbe handles a received probe; false for any other message.
func (r *Redis) isProbe(m *redis.Message) bool {
	if !strings.HasPrefix(m.Channel, r.cfg.Prefix+"probe:") {
		return false
	}
	p := r.probes
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.byKey {
		if pr.name != m.Channel {
			continue
		}
		sent, err := strconv.ParseInt(m.Payload, 10, 64)
		if err == nil && !pr.sentAt.IsZero() && sent >= pr.sentAt.UnixNano() {
			now := time.Now()
			pr.lag = now.Sub(time.Unix(0, sent))
			pr.backAt, pr.sentAt = now, time.Time{}
		}
	}
	return true
}

// probeLoop publishes the probes until ctx ends.
func (r *Redis) probeLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.probeOnce(ctx)
	}
}

// probeResubscribed forgets the pending probe of a single Redis when its
// channel is subscribed again (go-redis made the connection again): a
// probe in flight on the old connection will not come back.
func (r *Redis) probeResubscribed(channel string) {
	if r.cluster != nil || !strings.HasPrefix(channel, r.cfg.Prefix+"probe:") {
		return
	}
	p := r.probes
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr := p.byKey[""]; pr != nil && pr.name == channel {
		pr.sentAt = time.Time{}
	}
}

// probeOnce makes sure each link has its probe subscribed, publishes one
// where none is pending, and drops cluster links whose probe is overdue.
func (r *Redis) probeOnce(ctx context.Context) {
	keys := []string{""}
	links := map[string]*shardLink{}
	if r.cluster != nil {
		keys = keys[:0]
		cl := r.cluster
		cl.mu.Lock()
		for addr, l := range cl.links {
			if !l.dead {
				keys = append(keys, addr)
				links[addr] = l
			}
		}
		cl.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.probeLink(ctx, key, links[key])
		}()
	}
	wg.Wait()
	p := r.probes
	if r.cluster != nil {
		// Forget the probes of links that are gone.
		p.mu.Lock()
		for key := range p.byKey {
			if links[key] == nil {
				delete(p.byKey, key)
			}
		}
		p.mu.Unlock()
	}
}

// probeLink probes one link (l is nil on a single Redis).
func (r *Redis) probeLink(ctx context.Context, key string, l *shardLink) {
	p := r.probes
	{
		p.mu.Lock()
		pr := p.byKey[key]
		p.mu.Unlock()
		if pr != nil && pr.link != l {
			pr = &probe{name: pr.name, started: time.Now(), link: l}
			p.mu.Lock()
			p.byKey[key] = pr
			p.mu.Unlock()
		}
		if pr == nil {
			name, err := r.probeName(ctx, key)
			if err != nil {
				return
			}
			pr = &probe{name: name, started: time.Now(), link: l}
			p.mu.Lock()
			p.byKey[key] = pr
			p.mu.Unlock()
		}
		p.mu.Lock()
		subscribed := pr.subscribed
		pr.subscribed = true
		p.mu.Unlock()
		switch {
		case l != nil:
			// Subscribed on every round: idempotent, and the probe of a
			// cluster link is its own (a link made again is a new one).
			_ = l.ps.SSubscribe(ctx, pr.name)
		case subscribed:
		case r.cfg.Sharded:
			_ = r.ps.SSubscribe(ctx, pr.name)
		default:
			_ = r.ps.Subscribe(ctx, pr.name)
		}
		p.mu.Lock()
		overdue := !pr.sentAt.IsZero() && time.Since(pr.sentAt) > r.cfg.ProbeTimeout
		pending := !pr.sentAt.IsZero()
		p.mu.Unlock()
		if overdue && l != nil {
			r.log.Warn("redis cluster pub/sub link lagging: probe not back; making it again", "node", key, "timeout", r.cfg.ProbeTimeout)
			_ = l.ps.Close() // its receive loop moves the channels
		}
		if pending {
			return
		}
		// Pending before it is sent: the probe can be back before
		// SPUBLISH answers.
		now := time.Now()
		p.mu.Lock()
		pr.sentAt = now
		p.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
		var err error
		if r.cfg.Sharded {
			err = r.client.SPublish(pctx, pr.name, strconv.FormatInt(now.UnixNano(), 10)).Err()
		} else {
			err = r.client.Publish(pctx, pr.name, strconv.FormatInt(now.UnixNano(), 10)).Err()
		}
		cancel()
		p.mu.Lock()
		if err != nil {
			pr.pubErr = err.Error()
			if pr.sentAt.Equal(now) {
				pr.sentAt = time.Time{} // not sent: not pending
			}
		} else {
			pr.pubErr = ""
			pr.seq++
		}
		p.mu.Unlock()
		r.reloadOn(err)
	}
}

// Health reports whether the node can deliver: every link up, and its
// probe back within ProbeTimeout.
func (r *Redis) Health() Health {
	h := Health{OK: true, Links: r.Links()}
	if r.cfg.ProbeInterval < 0 {
		for _, l := range h.Links {
			if !l.Up {
				h.OK = false
				h.Reasons = append(h.Reasons, fmt.Sprintf("pub/sub link to %s is down", l.Addr))
			}
		}
		return h
	}
	now := time.Now()
	p := r.probes
	p.mu.Lock()
	for i := range h.Links {
		l := &h.Links[i]
		key := l.Addr
		if r.cluster == nil {
			key = ""
		}
		pr := p.byKey[key]
		if pr == nil {
			continue
		}
		l.Lag = pr.lag
		if !pr.backAt.IsZero() {
			l.ProbeAge = now.Sub(pr.backAt)
		}
		switch {
		case pr.pubErr != "":
			l.Reason = "broker unreachable: probe publish failed: " + pr.pubErr
		case !pr.sentAt.IsZero() && now.Sub(pr.sentAt) > r.cfg.ProbeTimeout:
			l.Reason = fmt.Sprintf("pub/sub link lagging: probe sent %v ago not received (bound %v)", now.Sub(pr.sentAt).Round(time.Millisecond), r.cfg.ProbeTimeout)
		case pr.backAt.IsZero() && now.Sub(pr.started) > r.cfg.ProbeTimeout+r.cfg.ProbeInterval:
			l.Reason = "pub/sub link lagging: no probe came back yet"
		}
	}
	p.mu.Unlock()
	for i := range h.Links {
		l := &h.Links[i]
		if !l.Up && l.Reason == "" {
			l.Reason = "pub/sub link down"
			if l.LastError != "" {
				l.Reason += ": " + l.LastError
			}
		}
		if l.Reason != "" {
			h.OK = false
			h.Reasons = append(h.Reasons, l.Addr+": "+l.Reason)
		}
	}
	if r.cluster != nil {
		r.subsMu.Lock()
		n, moving := len(r.subs), 0
		for _, s := range r.subs {
			if s.rehoming {
				moving++
			}
		}
		r.subsMu.Unlock()
		switch {
		case len(h.Links) == 0 && n > 0:
			h.OK = false
			h.Reasons = append(h.Reasons, "no pub/sub link while channels are subscribed")
		case moving > 0:
			// Their link was lost: until they are subscribed again on a
			// live link (a new one may look up while it still dials a
			// dead master) and caught up, they are not delivered.
			h.OK = false
			h.Reasons = append(h.Reasons, fmt.Sprintf("%d channel(s) being subscribed again after a lost pub/sub link", moving))
		}
	}
	sort.Strings(h.Reasons)
	return h
}
