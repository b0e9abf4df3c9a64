package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/hashslot"
)

// Cluster is a running private Redis Cluster: masters with their replicas,
// every node a Server of its own on loopback.
type Cluster struct {
	Nodes []*Server
	// URL is the cluster's address as darktime takes it:
	// redis+cluster://host:port,host:port,… (every node).
	URL string

	t testing.TB
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
// line with cluster-enabled), joins them with `redis-cli --cluster create
// --cluster-replicas replicas`, and waits until every node reports
// cluster_state:ok and every replica is in sync. Cleanup stops them all.
func StartCluster(t testing.TB, masters, replicas int, opts ...ClusterOptions) *Cluster {
	t.Helper()
	var o ClusterOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = time.Second
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not on PATH (it comes with redis-server): %v", err)
	}
	c := &Cluster{t: t}
	addrs := make([]string, 0, masters*(1+replicas))
	for range masters * (1 + replicas) {
		s := Start(t, Options{AppendOnly: o.AppendOnly, cluster: true, nodeTimeout: o.NodeTimeout})
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis+cluster://" + strings.Join(addrs, ",")
	c.WaitHealthy()
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

// slotOwner asks the running nodes (CLUSTER SHARDS) which master serves
// slot; nil when none that runs does.
func (c *Cluster) slotOwner(slot int) *Server {
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: s.Addr})
		shards, err := rc.ClusterShards(context.Background()).Result()
		_ = rc.Close()
		if err != nil {
			continue
		}
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if int(r.Start) > slot || slot > int(r.End) {
					continue
				}
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						if m := c.Node(net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))); m != nil {
							return m
						}
					}
				}
			}
		}
	}
	return nil
}

// Slot is the cluster hash slot of key (hash tags honoured).
func Slot(key string) int { return hashslot.Of(key) }

// WaitHealthy waits until every running node says cluster_state:ok, agrees
// on who serves all 16384 slots, and every replica's link to its master is
// up (a failover needs it). It fails the test after 30 seconds.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	var why string
	for time.Now().Before(deadline) {
		why = c.unhealthy(ctx)
		if why == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("redistest: cluster not healthy after 30s: %s", why)
}

func (c *Cluster) unhealthy(ctx context.Context) string {
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: s.Addr})
		info, err := rc.ClusterInfo(ctx).Result()
		repl, err2 := rc.Info(ctx, "replication").Result()
		_ = rc.Close()
		switch {
		case err != nil || err2 != nil:
			return fmt.Sprintf("%s: %v %v", s.Addr, err, err2)
		case !strings.Contains(info, "cluster_state:ok"), !strings.Contains(info, "cluster_slots_ok:16384"):
			return s.Addr + ": " + strings.ReplaceAll(info, "\r\n", " ")
		case strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up"):
			return s.Addr + ": replica link down"
		}
	}
	return ""
}

// Kill stops a node as a crash would (SIGKILL). It stays in the cluster's
// view as failed; a killed master's replica is promoted after NodeTimeout.
func (c *Cluster) Kill(s *Server) { s.Stop() }

// busPortFree reports whether a cluster node on port can have its bus
// (port+10000).
func busPortFree(port int) bool {
	if port+10000 > 65535 {
		return false
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
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
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		rc := redis.NewClient(&redis.Options{Addr: s.Addr})
		role, err := rc.Do(context.Background(), "ROLE").Slice()
		_ = rc.Close()
		if err == nil && len(role) > 0 && role[0] == "master" {
			out = append(out, s)
		}
	}
	return out
}
