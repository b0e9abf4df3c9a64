package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/hashslot"
)

// On a Redis Cluster the broker keeps one sharded pub/sub connection (a
// link) per shard: a channel's SSUBSCRIBE has to reach the master serving
// its slot, and go-redis resubscribes all of a connection's channels in one
// SSUBSCRIBE, which a cluster refuses across slots (CROSSSLOT). So the
// broker owns its links: each is a go-redis PubSub on one master's client
// that it subscribes channel by channel; when a link breaks (the master
// died, the connection was killed) or Redis moves a channel away (a slot
// migrated: Redis sends SUNSUBSCRIBE), the broker reloads the topology,
// subscribes the link's channels again wherever their slots now live, and
// catches them up from their histories, as one Redis does after a lost
// connection. While a channel catches up, its live events wait, so the
// Handler still sees each channel's events once and in id order.

// clusterLinks is the broker's set of per-shard links.
type clusterLinks struct {
	cc *redis.ClusterClient

	mu    sync.Mutex
	links map[string]*shardLink // by master address
	of    map[string]*shardLink // pub/sub channel name -> its link
	// rehoming counts the rehomes under way; when the last ends, the
	// dead links are forgotten (pruneDead).
	rehoming int

	// handlerMu serializes the Handler across links, so that calls for one
	// channel never overlap while it moves from one link to another.
	handlerMu sync.Mutex
	wg        sync.WaitGroup
}

// shardLink is one sharded pub/sub connection to one master.
type shardLink struct {
	addr string
	ps   *redis.PubSub
	gone chan struct{} // closed when the link is found broken

	// Guarded by clusterLinks.mu.
	dead    bool
	since   time.Time // when it was made
	lastErr string
}

// LinkState is one pub/sub link of a node as /stats shows it.
type LinkState struct {
	// Addr is the Redis node the link is connected to (a shard's master).
	Addr     string    `json:"addr"`
	Up       bool      `json:"up"`
	Channels int       `json:"channels"`
	Since    time.Time `json:"since"`
	// LastError is why the previous link to this node went down, if it did.
	LastError string `json:"last_error,omitempty"`
	// Lag is how long the last health probe took through this link;
	// ProbeAge how long ago it came back.
	Lag      time.Duration `json:"lag_ns"`
	ProbeAge time.Duration `json:"probe_age_ns"`
	// Reason says why the link cannot be trusted now (Health).
	Reason string `json:"reason,omitempty"`
}

func newClusterLinks(cc *redis.ClusterClient) *clusterLinks {
	return &clusterLinks{cc: cc, links: map[string]*shardLink{}, of: map[string]*shardLink{}}
}

// Links reports the node's pub/sub links: one per shard on a cluster, the
// one connection on a single Redis.
func (r *Redis) Links() []LinkState {
	if r.cluster == nil {
		r.subsMu.Lock()
		n := len(r.subs)
		r.subsMu.Unlock()
		// With no subscription the connection is not made: nothing to lose.
		return []LinkState{{Addr: r.addr, Up: r.linkUp.Load() || n == 0, Channels: n}}
	}
	cl := r.cluster
	cl.mu.Lock()
	defer cl.mu.Unlock()
	counts := map[*shardLink]int{}
	for _, l := range cl.of {
		counts[l]++
	}
	var out []LinkState
	for _, l := range cl.links {
		out = append(out, LinkState{Addr: l.addr, Up: !l.dead, Channels: counts[l], Since: l.since, LastError: l.lastErr})
	}
	return out
}

// linkFor returns the live link to the master serving name, making it.
func (r *Redis) linkFor(ctx context.Context, name string) (*shardLink, error) {
	cl := r.cluster
	node, err := cl.cc.MasterForKey(ctx, name)
	if err != nil {
		return nil, err
	}
	addr := node.Options().Addr
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if r.isClosed() {
		return nil, ErrClosed
	}
	if l := cl.links[addr]; l != nil && !l.dead {
		return l, nil
	}
	var lastErr string
	if old := cl.links[addr]; old != nil {
		lastErr = old.lastErr
	}
	l := &shardLink{addr: addr, ps: node.SSubscribe(context.Background()), gone: make(chan struct{}), since: time.Now(), lastErr: lastErr}
	cl.links[addr] = l
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		r.receiveLink(r.ctx, l)
	}()
	return l, nil
}

// subscribeOn subscribes name on its shard's link and waits for Redis's
// confirmation.
func (r *Redis) subscribeOn(ctx context.Context, name string) error {
	l, err := r.linkFor(ctx, name)
	if err != nil {
		return err
	}
	confirmed := make(chan struct{})
	r.mu.Lock()
	r.waiters[name] = append(r.waiters[name], confirmed)
	r.mu.Unlock()
	r.cluster.mu.Lock()
	r.cluster.of[name] = l
	r.cluster.mu.Unlock()
	err = l.ps.SSubscribe(ctx, name)
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		select {
		case <-confirmed:
			return nil
		case <-l.gone:
			err = fmt.Errorf("pub/sub link to redis %s lost before it confirmed", l.addr)
		case <-wctx.Done():
			err = fmt.Errorf("no confirmation from redis %s: %w", l.addr, wctx.Err())
		}
	}
	r.dropWaiter(name, confirmed)
	r.cluster.mu.Lock()
	if r.cluster.of[name] == l {
		delete(r.cluster.of, name) // not on l: its rehome retries
	}
	r.cluster.mu.Unlock()
	return err
}

// dropWaiter forgets a subscriber's wait for a confirmation that did not
// come (single Redis and cluster alike).
func (r *Redis) dropWaiter(name string, confirmed chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.waiters[name]
	for i, w := range ws {
		if w == confirmed {
			r.waiters[name] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(r.waiters[name]) == 0 {
		delete(r.waiters, name)
	}
}

// unsubscribeCluster sends SUNSUBSCRIBE on the channel's link.
func (r *Redis) unsubscribeCluster(ctx context.Context, name string) error {
	cl := r.cluster
	cl.mu.Lock()
	l := cl.of[name]
	delete(cl.of, name)
	cl.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.ps.SUnsubscribe(ctx, name)
}

// receiveLink reads one link until it breaks, then moves its channels.
func (r *Redis) receiveLink(ctx context.Context, l *shardLink) {
	for {
		msg, err := l.ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if r.cfg.OnError != nil {
				r.cfg.OnError(err)
			}
			r.log.Warn("redis cluster pub/sub link lost; moving its channels", "node", l.addr, "err", err)
			r.linkLost(ctx, l, err)
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			switch m.Kind {
			case "ssubscribe":
				r.confirm(m.Channel)
			case "sunsubscribe":
				// Ours (Unsubscribe already forgot it), or Redis's: the slot
				// moved to another shard. Follow the channel there.
				r.subsMu.Lock()
				wanted := r.subs[m.Channel] != nil
				r.subsMu.Unlock()
				r.cluster.mu.Lock()
				mine := r.cluster.of[m.Channel] == l
				if wanted && mine {
					delete(r.cluster.of, m.Channel)
				}
				r.cluster.mu.Unlock()
				if wanted && mine {
					r.log.Info("redis cluster moved a channel's slot; following it", "node", l.addr, "channel", m.Channel)
					r.cluster.wg.Add(1)
					go func() {
						defer r.cluster.wg.Done()
						r.rehomeAndPrune(ctx, []string{m.Channel}, time.Now())
					}()
				}
			}
		case *redis.Message:
			if !r.isProbe(m) {
				r.deliverLive(m)
			}
		}
	}
}

// deliverLive hands a live event to the Handler, or parks it while its
// channel catches up.
func (r *Redis) deliverLive(m *redis.Message) {
	d, ok := r.decode(m)
	if !ok {
		return
	}
	cl := r.cluster
	cl.handlerMu.Lock()
	defer cl.handlerMu.Unlock()
	r.subsMu.Lock()
	if s := r.subs[m.Channel]; s != nil && s.catching {
		s.pending = append(s.pending, d)
		r.subsMu.Unlock()
		return
	}
	r.subsMu.Unlock()
	if r.admit(m.Channel, d.ID) {
		r.cfg.Handler(d)
	}
}

// linkLost retires a broken link and moves its channels.
func (r *Redis) linkLost(ctx context.Context, l *shardLink, err error) {
	cl := r.cluster
	lostAt := time.Now()
	cl.mu.Lock()
	if !l.dead {
		close(l.gone)
	}
	l.dead = true
	l.lastErr = err.Error()
	var names []string
	for name, on := range cl.of {
		if on == l {
			names = append(names, name)
			delete(cl.of, name)
		}
	}
	cl.mu.Unlock()
	_ = l.ps.Close()
	cl.cc.ReloadState(ctx)
	r.rehomeAndPrune(ctx, names, lostAt)
}

// rehomeAndPrune is rehome, counted in clusterLinks.rehoming: once no
// rehome is under way, every dead link is forgotten. A dead link holds no
// channel (linkLost took them off it), and while a rehome retries its
// address stays listed down, so Health says the node cannot deliver; but
// once every channel is on a live link, the link to a master that died
// and was replaced by its replica (another address) would otherwise be
// listed down for ever, and the node unhealthy with it.
func (r *Redis) rehomeAndPrune(ctx context.Context, names []string, lostAt time.Time) {
	cl := r.cluster
	cl.mu.Lock()
	cl.rehoming++
	cl.mu.Unlock()
	r.rehome(ctx, names, lostAt)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.rehoming--; cl.rehoming > 0 {
		return
	}
	for addr, l := range cl.links {
		if l.dead {
			delete(cl.links, addr)
		}
	}
}

// rehome subscribes channels again wherever their slots live now, retrying
// until it can (a failover takes a few seconds), then catches them up.
// The retries back off from 50 ms to rehomeMaxBackoff. A
// channel already being rehomed is left to that rehome (it retries until
// its subscription is confirmed on a live link).
// rehomeMaxBackoff caps the wait between attempts to subscribe a lost
// link's channels again. At the former cap of 1 s, the channels of a
// failed-over shard stayed unsubscribed for up to a second after its
// replica was promoted (scripts/bench-failover.sh: first delivery +5.56 s
// after the kill, first publish answered +4.54 s); an attempt costs one
// SSUBSCRIBE and a cluster-state reload, so four a second is cheap.
const rehomeMaxBackoff = 250 * time.Millisecond

func (r *Redis) rehome(ctx context.Context, names []string, lostAt time.Time) {
	var subs []*redisSub
	r.subsMu.Lock()
	for _, name := range names {
		if s := r.subs[name]; s != nil && !s.rehoming {
			s.catching, s.rehoming = true, true
			subs = append(subs, s)
		}
	}
	r.subsMu.Unlock()
	if len(subs) == 0 {
		return
	}
	defer func() {
		r.subsMu.Lock()
		for _, s := range subs {
			s.rehoming = false
		}
		r.subsMu.Unlock()
	}()
	backoff := 50 * time.Millisecond
	todo := subs
	for len(todo) > 0 {
		var failed []*redisSub
		var firstErr error
		for _, s := range todo {
			name := r.pubsubChannel(s.channel)
			r.subsMu.Lock()
			current := r.subs[name] == s
			r.subsMu.Unlock()
			if !current {
				continue // unsubscribed meanwhile
			}
			if err := r.subscribeOn(ctx, name); err != nil {
				if errors.Is(err, ErrClosed) || ctx.Err() != nil {
					return
				}
				failed = append(failed, s)
				if firstErr == nil {
					firstErr = err
				}
			}
		}
		if todo = failed; len(todo) == 0 {
			break
		}
		r.log.Warn("redis cluster: cannot subscribe channels again yet; retrying", "channels", len(todo), "err", firstErr, "backoff", backoff)
		r.cluster.cc.ReloadState(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, rehomeMaxBackoff)
	}
	rd, ok := r.readCatchUp(ctx, subs, lostAt)
	if !ok {
		return
	}
	cl := r.cluster
	cl.handlerMu.Lock()
	defer cl.handlerMu.Unlock()
	r.deliverCatchUp(rd)
	for _, s := range subs {
		r.subsMu.Lock()
		pending := s.pending
		s.pending, s.catching, s.rehoming = nil, false, false
		name := r.pubsubChannel(s.channel)
		r.subsMu.Unlock()
		for _, d := range pending {
			if r.admit(name, d.ID) {
				r.cfg.Handler(d)
			}
		}
	}
}

// closeCluster closes every link and waits for their goroutines.
func (r *Redis) closeCluster() {
	cl := r.cluster
	cl.mu.Lock()
	links := make([]*shardLink, 0, len(cl.links))
	for _, l := range cl.links {
		links = append(links, l)
	}
	cl.mu.Unlock()
	for _, l := range links {
		_ = l.ps.Close()
	}
	cl.wg.Wait()
}

// publishPerSlot publishes a batch on a Redis Cluster: one batch script
// call per hash slot (a script's keys must share one), all of them in one
// pipeline (go-redis sends each to its slot's master). Each slot's events
// are published atomically and in order, or not at all; when some slots
// fail and others not, the answer is a *PartialError, event by event.
func (r *Redis) publishPerSlot(ctx context.Context, msgs []Message, keysOf func(Message) []string, maxLen, maxAge string) ([]eventid.ID, error) {
	type group struct {
		idx  []int // indexes in msgs
		keys []string
		args []any
		cmd  *redis.Cmd
	}
	var groups []*group
	bySlot := map[int]*group{}
	for i, m := range msgs {
		slot := hashslot.Of(r.historyKey(m.Channel))
		g := bySlot[slot]
		if g == nil || len(g.idx) == maxBatchScript {
			g = &group{args: []any{maxLen, maxAge, r.pubCmd}}
			bySlot[slot] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
		g.keys = append(g.keys, keysOf(m)...)
		ttl := "0"
		if m.Key != "" {
			ttl = strconv.FormatInt(r.cfg.DedupeWindow.Milliseconds(), 10)
		}
		g.args = append(g.args, m.Body, r.pubsubChannel(m.Channel), ttl)
	}
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, g := range groups {
			g.cmd = publishBatchScript.EvalSha(ctx, p, g.keys, g.args...)
		}
		return nil
	})
	ids := make([]eventid.ID, len(msgs))
	errs := make([]error, len(msgs))
	failed := 0
	for _, g := range groups {
		res, err := g.cmd.StringSlice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The master lost its script cache (a restart, a promoted
			// replica); nothing of this call ran.
			res, err = publishBatchScript.Run(ctx, r.client, g.keys, g.args...).StringSlice()
		}
		if err == nil && len(res) != len(g.idx) {
			err = fmt.Errorf("redis broker: batch script returned %d ids for %d events", len(res), len(g.idx))
		}
		if err != nil {
			err = publishErr("publish batch to redis", err)
			for _, i := range g.idx {
				errs[i] = err
			}
			failed += len(g.idx)
			continue
		}
		for k, i := range g.idx {
			id, perr := eventid.Parse(res[k])
			if perr != nil {
				return nil, fmt.Errorf("redis broker: publish script returned %q: %w", res[k], perr)
			}
			ids[i] = id
		}
	}
	switch {
	case failed == 0:
		return ids, nil
	case failed == len(msgs):
		for _, err := range errs {
			if errors.Is(err, ErrOutcomeUnknown) {
				return nil, err
			}
		}
		return nil, errs[0]
	}
	return ids, &PartialError{IDs: ids, Errs: errs}
}
