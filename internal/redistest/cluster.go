package redistest

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/hashslot"
	"github.com/darktime/darktime/internal/redisproc"
)

// Cluster is a running private Redis Cluster: masters with their replicas,
// every node a Server of its own on loopback.
type Cluster struct {
	Nodes []*Server
	// URL is the cluster's address as darktime takes it:
	// redis+cluster://host:port,host:port,… (every node).
	URL string

	t      testing.TB
	killed []string // addresses of the nodes Kill stopped
}

// ClusterOptions tune StartCluster.
type ClusterOptions struct {
	// AppendOnly turns on AOF on every node.
	AppendOnly bool
	// NodeTimeout is cluster-node-timeout (default 1s: a killed master's
	// replica takes over within about two seconds).
	NodeTimeout time.Duration
}

// StartCluster launches masters+masters*replicas nodes (redisproc's command
// line with cluster-enabled), joins them with redisproc.CreateCluster
// (`redis-cli --cluster create --cluster-replicas replicas`), which waits
// until every node reports cluster_state:ok and every replica is in sync.
// Cleanup stops them all.
func StartCluster(t testing.TB, masters, replicas int, opts ...ClusterOptions) *Cluster {
	t.Helper()
	var o ClusterOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = time.Second
	}
	if _, err := redisproc.CLI(); err != nil {
		t.Fatalf("%v", err)
	}
	c := &Cluster{t: t}
	for range masters * (1 + replicas) {
		c.Nodes = append(c.Nodes, Start(t, Options{AppendOnly: o.AppendOnly, cluster: true, nodeTimeout: o.NodeTimeout}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := redisproc.CreateCluster(ctx, c.Addrs(), replicas); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	c.URL = "redis+cluster://" + strings.Join(c.Addrs(), ",")
	return c
}

// Addrs lists the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return addrs
}

// running lists the addresses of the nodes not stopped.
func (c *Cluster) running() []string {
	var addrs []string
	for _, s := range c.Nodes {
		if s.cmd != nil {
			addrs = append(addrs, s.Addr)
		}
	}
	return addrs
}

// Client returns a cluster client of every node, closed at the end of the
// test.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Node returns the running node at addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr && s.cmd != nil {
			return s
		}
	}
	return nil
}

// MasterOf returns the node that serves key now (as the running nodes say).
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	slot := Slot(key)
	if m := c.slotOwner(slot); m != nil {
		return m
	}
	c.t.Fatalf("redistest: no running master serves slot %d", slot)
	return nil
}

// slotOwner is the running master that serves slot; nil when none does.
func (c *Cluster) slotOwner(slot int) *Server {
	addr, err := redisproc.MasterOf(context.Background(), c.running(), slot)
	if err != nil {
		return nil
	}
	return c.Node(addr)
}

// Slot is the cluster hash slot of key (hash tags honoured).
func Slot(key string) int { return hashslot.Of(key) }

// WaitHealthy waits until every running node says cluster_state:ok, agrees
// on who serves all 16384 slots, and every replica's link to its master is
// up (a failover needs it); killed masters (Kill) that are still down
// must no longer serve slots in any running node's view: their replicas
// have taken over. A killed node started again (StartAgain) counts as
// running. It fails the test after 30 seconds.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	running := c.running()
	var down []string
	for _, addr := range c.killed {
		if !slices.Contains(running, addr) {
			down = append(down, addr)
		}
	}
	if err := redisproc.WaitHealthy(ctx, running, down...); err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
}

// Kill stops a node as a crash would (SIGKILL). It stays in the cluster's
// view as failed; a killed master's replica is promoted after NodeTimeout
// (WaitHealthy waits for that).
func (c *Cluster) Kill(s *Server) {
	s.Stop()
	c.killed = append(c.killed, s.Addr)
}

// MoveSlot migrates one slot, keys and all, from the node serving it to
// to, the way redis-cli --cluster reshard does for each slot (IMPORTING,
// MIGRATING, MIGRATE the keys, SETSLOT NODE on both and on the others).
func (c *Cluster) MoveSlot(slot int, to *Server) {
	c.t.Helper()
	ctx := context.Background()
	from := c.slotOwner(slot)
	if from == nil || from == to {
		c.t.Fatalf("redistest: MoveSlot %d: source %v, target %s", slot, from, to.Addr)
	}
	src := redis.NewClient(&redis.Options{Addr: from.Addr})
	dst := redis.NewClient(&redis.Options{Addr: to.Addr})
	defer src.Close()
	defer dst.Close()
	srcID, err := src.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER MYID: %v", err)
	}
	dstID, err := dst.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER MYID: %v", err)
	}
	must := func(cmd *redis.Cmd) {
		c.t.Helper()
		if err := cmd.Err(); err != nil {
			c.t.Fatalf("redistest: MoveSlot %d: %v: %v", slot, cmd.Args(), err)
		}
	}
	must(dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID))
	must(src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID))
	host, port, _ := net.SplitHostPort(to.Addr)
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			c.t.Fatalf("redistest: GETKEYSINSLOT: %v", err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(src.Do(ctx, args...))
	}
	must(dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID))
	must(src.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID))
	for _, s := range c.Nodes {
		if s.cmd == nil || s == from || s == to {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: s.Addr})
		_ = rc.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err() // replicas refuse: they learn it by gossip
		_ = rc.Close()
	}
}

// Masters returns the running masters.
func (c *Cluster) Masters() []*Server {
	var out []*Server
	for _, a := range redisproc.Masters(context.Background(), c.running()) {
		out = append(out, c.Node(a))
	}
	return out
}
