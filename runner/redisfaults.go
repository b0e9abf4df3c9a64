package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/darktime/darktime/internal/redisproc"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/statsfile"
)

// The Redis faults: a killed master of the cluster, a node's pub/sub
// connections closed. The runner then watches the target until it is
// whole again (watch) and records that as the fault's recovery.

// watchContext ends when the scheduler finishes (the run is over).
func (s *scheduler) watchContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(s.ctx)
	go func() {
		select {
		case <-s.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// killRedisMaster kills the master of the fault's shard, or of the
// hottest channel's, and watches the failover. It sets rec.At to the
// kill.
func (s *scheduler) killRedisMaster(f scenario.Fault, rec *report.Fault) error {
	rc := s.c.rc
	if rc == nil {
		return errors.New("no Redis Cluster was started")
	}
	ctx, cancel := s.watchContext()
	defer cancel()
	var slot int
	var which string
	if f.Shard != nil {
		sh := rc.shards[*f.Shard]
		slot = sh.First()
		which = fmt.Sprintf("shard %d (slots %d-%d)", *f.Shard, slot, sh.Slots[len(sh.Slots)-1][1])
	} else {
		ch := s.channel(s.r.s.HotChannelAt(f.At.D()))
		slot = broker.ChannelSlot("", ch)
		which = fmt.Sprintf("the hottest channel's shard (%s, slot %d)", ch, slot)
	}
	s.r.log.Info("fault: killing a Redis master", "of", which)
	live := s.c.liveNodes()
	before := s.c.statsOf(ctx, live)
	master, replicas, err := rc.killMaster(ctx, slot)
	if err != nil {
		return err
	}
	s.markAt(rec, time.Now())
	rec.Detail = fmt.Sprintf("master %s of %s killed with SIGKILL (replica %s)", master, which, strings.Join(replicas, ", "))
	w := watch{At: rec.At, redisProblem: rc.problem, nodeWhole: rc.noLinkTo}.run(ctx, s.c, live)
	rec.Recovery = w.rec
	if promoted, err := redisproc.MasterOf(ctx, rc.running(), slot); err == nil && !w.redisAt.IsZero() {
		rec.Detail += "; " + promoted + " took over"
	}
	rec.Detail += "; " + w.words(rec.At, "cluster_state ok with no slot on the killed master")
	rec.Detail += s.c.catchUpWords(ctx, before)
	return nil
}

// statsOf is the /stats of the nodes that answer, by node.
func (c *cluster) statsOf(ctx context.Context, nodes []int) map[int]server.Stats {
	out := map[int]server.Stats{}
	for _, n := range nodes {
		if st, err := c.nodeStats(ctx, n); err == nil {
			out[n] = st
		}
	}
	return out
}

// catchUpWords says what each node's counters of lost links did since
// before: pub/sub receive errors, channels caught up from history, and
// gaps announced (darktime.missed) — the evidence a fault's losses are
// explained by.
func (c *cluster) catchUpWords(ctx context.Context, before map[int]server.Stats) string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(before)) {
		st, err := c.nodeStats(ctx, n)
		if err != nil {
			continue
		}
		b, a := before[n].Totals, st.Totals
		parts = append(parts, fmt.Sprintf("node %d: broker_errors +%d, catch_ups +%d (caught_up +%d), missed_notices +%d",
			n, a.BrokerErrors-b.BrokerErrors, a.CatchUps-b.CatchUps, a.CaughtUp-b.CaughtUp, a.MissedNotices-b.MissedNotices))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

// killRedisLink closes node n's pub/sub connections on every Redis node
// (CLIENT KILL by id: the node names its connections, clientName) and
// watches the node notice, subscribe again and be healthy.
func (s *scheduler) killRedisLink(n int, rec *report.Fault) error {
	c := s.c
	name := clientName(c.nodeName(n))
	var addrs []string
	switch {
	case c.rc != nil:
		addrs = c.rc.running()
	case c.redis != nil:
		addrs = []string{c.redisAddr()}
	default:
		return errors.New("no Redis was started")
	}
	ctx, cancel := s.watchContext()
	defer cancel()
	before, err := c.nodeStats(ctx, n)
	if err != nil {
		return fmt.Errorf("node %d before the kill: %w", n, err)
	}
	s.r.log.Info("fault: closing a node's pub/sub connections", "node", n, "name", name)
	at := time.Now()
	var killed []string
	var errs []error
	for _, a := range addrs {
		cs, err := redisproc.KillPubSub(ctx, a, name)
		errs = append(errs, err)
		for _, cl := range cs {
			killed = append(killed, a+" (id "+cl.ID+")")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(killed) == 0 {
		return fmt.Errorf("node %d (%s) had no pub/sub connection to close", n, name)
	}
	s.markAt(rec, at)
	rec.Detail = fmt.Sprintf("node %d (%s): its %d pub/sub connection(s) closed with CLIENT KILL, its others left (%s)", n, c.nodeName(n), len(killed), strings.Join(killed, ", "))
	// Whole: the node noticed (a receive error counted) and every link is
	// up; on a cluster each was made again after the kill.
	remade := func(l statsfile.LinkStats) bool { return l.Up && (c.rc == nil || l.Since.After(at)) }
	noticed := func(_ int, st server.Stats) bool {
		return st.Totals.BrokerErrors > before.Totals.BrokerErrors && !slices.ContainsFunc(st.Links, func(l statsfile.LinkStats) bool { return !remade(l) })
	}
	w := watch{At: at, nodeWhole: noticed}.run(ctx, c, []int{n})
	rec.Recovery = w.rec
	rec.Detail += "; " + w.words(at, "")
	if st, err := c.nodeStats(ctx, n); err == nil && c.rc != nil {
		rec.Detail += "; " + linkWords(at, st.Links)
	}
	rec.Detail += c.catchUpWords(ctx, map[int]server.Stats{n: before})
	return nil
}

// linkWords says when each link of a node was made and why the one
// before it went down: the node's own account of a lost link.
func linkWords(at time.Time, links []statsfile.LinkStats) string {
	var parts []string
	for _, l := range links {
		p := fmt.Sprintf("link to %s made at %s", l.Addr, since(at, l.Since))
		if l.LastError != "" {
			p += " (the one before: " + l.LastError + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// markAt sets when the fault happened.
func (s *scheduler) markAt(rec *report.Fault, at time.Time) {
	rec.At, rec.Offset = at, at.Sub(s.start)
}

// nodeStats is node n's GET /stats.
func (c *cluster) nodeStats(ctx context.Context, n int) (server.Stats, error) {
	b, err := httpGet(ctx, c.http, c.nodeURLs[n]+"/stats")
	if err != nil {
		return server.Stats{}, err
	}
	return report.ReadStats(bytesReader(b))
}

// clientName is the name a node gives its Redis connections (CLIENT
// SETNAME, through the URL's client_name): kill_redis_link finds them by
// it, and CLIENT LIST says which node each is.
func clientName(node string) string { return "darktime-" + node }

// withClientName adds client_name to a Redis URL.
func withClientName(url, name string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "client_name=" + name
}
