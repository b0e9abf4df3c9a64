package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis Cluster of private servers: each node is a server started with
// Options.Cluster (its process is its starter's to manage), joined by
// CreateCluster. The functions here ask the running nodes what they see —
// who serves which slots, whether a failover is over — for the runner's
// faults and the tests alike.

// ErrNoCLI is returned by CLI when redis-cli cannot be found.
var ErrNoCLI = errors.New("redis-cli is not on PATH (it comes with redis-server: apt-get install -y redis-server, or make deps), or set DARKTIME_REDIS_CLI")

// CLI is the redis-cli that creates clusters: $DARKTIME_REDIS_CLI, or the
// one on PATH.
func CLI() (string, error) {
	if bin := os.Getenv("DARKTIME_REDIS_CLI"); bin != "" {
		return bin, nil
	}
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		return "", ErrNoCLI
	}
	return bin, nil
}

// ClusterPort returns a free loopback port whose cluster bus port
// (port+10000) is free too. Another process may take either before the
// node listens: starters retry with a new port when a start fails.
func ClusterPort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port, nil
	}
	return 0, errors.New("find a free port: no port with its cluster bus port (+10000) free in 20 tries")
}

// CreateCluster joins the running cluster nodes at addrs into one Redis
// Cluster, the first len(addrs)/(1+replicas) as masters with replicas
// replicas each (`redis-cli --cluster create … --cluster-replicas N`),
// and waits until it is healthy (WaitHealthy).
func CreateCluster(ctx context.Context, addrs []string, replicas int) error {
	cli, err := CLI()
	if err != nil {
		return err
	}
	if masters := len(addrs) / (1 + replicas); masters < 3 || masters*(1+replicas) != len(addrs) {
		return fmt.Errorf("a Redis Cluster needs 3 masters or more, each with %d replica(s): %d nodes do not make that", replicas, len(addrs))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	return WaitHealthy(ctx, addrs)
}

// Shard is one shard of a cluster: its slot ranges (inclusive), its
// master and its replicas, by address.
type Shard struct {
	Slots    [][2]int `json:"slots"`
	Master   string   `json:"master"`
	Replicas []string `json:"replicas"`
}

// First is the shard's lowest slot.
func (s Shard) First() int {
	if len(s.Slots) == 0 {
		return -1
	}
	return s.Slots[0][0]
}

// Serves reports whether slot is one of the shard's.
func (s Shard) Serves(slot int) bool {
	for _, r := range s.Slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

// Shards is the cluster as the node at addr sees it (CLUSTER SHARDS):
// the shards that serve slots, by their lowest slot, each with its
// master and the replicas that node does not hold for failed. A master the node
// holds for failed is still named: the failover has not happened yet.
func Shards(ctx context.Context, addr string) ([]Shard, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	raw, err := rc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SHARDS on %s: %w", addr, err)
	}
	var out []Shard
	for _, sh := range raw {
		if len(sh.Slots) == 0 {
			continue
		}
		var s Shard
		for _, r := range sh.Slots {
			s.Slots = append(s.Slots, [2]int{int(r.Start), int(r.End)})
		}
		slices.SortFunc(s.Slots, func(a, b [2]int) int { return a[0] - b[0] })
		for _, n := range sh.Nodes {
			a := net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
			switch {
			case n.Role == "master":
				s.Master = a
			case n.Health != "failed":
				// "loading" too: Redis 7.0 says so of a replica whose
				// replication offset is still 0 (nothing written yet).
				s.Replicas = append(s.Replicas, a)
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Shard) int { return a.First() - b.First() })
	return out, nil
}

// MasterOf returns the address of the master that serves slot now, as
// the first of the nodes at addrs that answers sees it, provided that
// master is one of addrs (the running nodes): right after a master dies,
// the others still name it until they notice.
func MasterOf(ctx context.Context, addrs []string, slot int) (string, error) {
	var errs []error
	for _, a := range addrs {
		shards, err := Shards(ctx, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, s := range shards {
			if s.Serves(slot) && slices.Contains(addrs, s.Master) {
				return s.Master, nil
			}
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("no running master serves slot %d: %w", slot, errors.Join(errs...))
	}
	return "", fmt.Errorf("no running master serves slot %d", slot)
}

// Masters returns the nodes at addrs that say they are masters (ROLE).
func Masters(ctx context.Context, addrs []string) []string {
	var out []string
	for _, a := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		role, err := rc.Do(ctx, "ROLE").Slice()
		_ = rc.Close()
		if err == nil && len(role) > 0 && role[0] == "master" {
			out = append(out, a)
		}
	}
	return out
}

// Problem says why the running cluster nodes at addrs are not a whole
// cluster, or "" when they are: every one of them says cluster_state:ok
// with all 16384 slots served, none sees a node of gone (nodes known to
// be dead: a killed master) still serving slots, and every replica's
// link to its master is up (the next failover needs it).
func Problem(ctx context.Context, addrs []string, gone ...string) string {
	for _, a := range addrs {
		rc := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		info, err := rc.ClusterInfo(ctx).Result()
		repl, err2 := rc.Info(ctx, "replication").Result()
		_ = rc.Close()
		switch {
		case err != nil || err2 != nil:
			return fmt.Sprintf("%s: %v", a, errors.Join(err, err2))
		case !strings.Contains(info, "cluster_state:ok"), !strings.Contains(info, "cluster_slots_ok:16384"):
			return a + ": " + strings.Join(strings.Fields(info), " ")
		case strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up"):
			return a + ": its link to its master is down"
		}
		if len(gone) == 0 {
			continue
		}
		shards, err := Shards(ctx, a)
		if err != nil {
			return err.Error()
		}
		for _, s := range shards {
			if slices.Contains(gone, s.Master) {
				return fmt.Sprintf("%s still sees %s serving slots %d-…", a, s.Master, s.First())
			}
		}
	}
	return ""
}

// WaitHealthy polls Problem until it is "" or ctx ends (then the error
// says what was still wrong).
func WaitHealthy(ctx context.Context, addrs []string, gone ...string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		why := Problem(ctx, addrs, gone...)
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster not healthy: %s: %w", why, ctx.Err())
		case <-t.C:
		}
	}
}

// Client is one connection to a Redis node, as CLIENT LIST shows it.
type Client struct {
	ID   string
	Addr string // the client's end
	Name string
}

// PubSubClients lists the pub/sub connections of the node at addr
// (CLIENT LIST TYPE pubsub: classic and sharded subscriptions alike).
func PubSubClients(ctx context.Context, addr string) ([]Client, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	list, err := rc.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		return nil, fmt.Errorf("CLIENT LIST on %s: %w", addr, err)
	}
	var out []Client
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var c Client
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				c.ID = v
			case "addr":
				c.Addr = v
			case "name":
				c.Name = v
			}
		}
		if c.ID != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// KillPubSub closes, on the node at addr, the pub/sub connections of the
// clients named name (CLIENT SETNAME, go-redis's ClientName) and no
// other: their other connections — the publishes — go on. It returns the
// connections it closed.
func KillPubSub(ctx context.Context, addr, name string) ([]Client, error) {
	clients, err := PubSubClients(ctx, addr)
	if err != nil {
		return nil, err
	}
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	var killed []Client
	for _, c := range clients {
		if c.Name != name {
			continue
		}
		n, err := rc.Do(ctx, "CLIENT", "KILL", "ID", c.ID).Int()
		if err != nil {
			return killed, fmt.Errorf("CLIENT KILL ID %s on %s: %w", c.ID, addr, err)
		}
		if n > 0 {
			killed = append(killed, c)
		}
	}
	return killed, nil
}
