package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/darktime/darktime/internal/redisproc"
)

// redisCluster is the private Redis Cluster of a broker: redis-cluster
// target: shards masters with their replicas, each a redis-server child
// of the run (logs/redis-N.log), joined by redisproc.CreateCluster.
type redisCluster struct {
	procs []*proc
	addrs []string
	// shards is the layout as created, by lowest slot: shard N of a
	// fault is the one serving shards[N]'s slots.
	shards []redisproc.Shard

	mu     sync.Mutex
	killed []string // addresses of the masters a fault killed
}

// startRedisCluster starts the target's Redis Cluster and sets
// c.redisURL to it (redis+cluster://every node).
func (c *cluster) startRedisCluster(ctx context.Context) error {
	bin, err := redisproc.Binary()
	if err != nil {
		return fmt.Errorf("broker: redis-cluster needs %w", err)
	}
	if _, err := redisproc.CLI(); err != nil {
		return fmt.Errorf("broker: redis-cluster needs %w", err)
	}
	r := c.t.Redis
	rc := &redisCluster{}
	c.rc = rc
	for i := range r.Shards * (1 + r.ReplicasPerShard()) {
		p, addr, err := c.startClusterNode(ctx, bin, i)
		if err != nil {
			return err
		}
		rc.procs = append(rc.procs, p)
		rc.addrs = append(rc.addrs, addr)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := redisproc.CreateCluster(cctx, rc.addrs, r.ReplicasPerShard()); err != nil {
		return err
	}
	if rc.shards, err = redisproc.Shards(cctx, rc.addrs[0]); err != nil {
		return err
	}
	c.redisURL = "redis+cluster://" + strings.Join(rc.addrs, ",")
	var layout []string
	for i, s := range rc.shards {
		layout = append(layout, fmt.Sprintf("shard %d: slots %d-%d on %s, replicas %s", i, s.First(), s.Slots[len(s.Slots)-1][1], s.Master, strings.Join(s.Replicas, " ")))
	}
	c.r.log.Info("redis cluster up", "nodes", len(rc.addrs), "layout", strings.Join(layout, "; "))
	return writeJSON(filepath.Join(c.dir, "redis-cluster.json"), rc.shards)
}

// startClusterNode starts node i of the cluster on a port whose bus port
// is free too, retrying on another when the start fails (a port taken
// meanwhile).
func (c *cluster) startClusterNode(ctx context.Context, bin string, i int) (*proc, string, error) {
	dir := filepath.Join(c.dir, "redis", strconv.Itoa(i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	r := c.t.Redis
	var lastErr error
	for range 5 {
		port, err := redisproc.ClusterPort()
		if err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p := &proc{
			name: "redis-server " + addr, path: bin, log: logPath(c.dir, "redis-"+strconv.Itoa(i)),
			args: redisproc.Args(redisproc.Options{Port: port, Dir: dir, Cluster: true, NodeTimeout: r.NodeTimeout.D(),
				AppendOnly: r.Persistence == "aof", Fsync: "everysec"}),
		}
		if lastErr = p.start(); lastErr != nil {
			continue
		}
		if lastErr = p.waitReady(ctx, readyTimeout, redisPing(addr)); lastErr == nil {
			return p, addr, nil
		}
		_ = p.kill()
		_ = os.Remove(filepath.Join(dir, "nodes.conf"))
	}
	return nil, "", lastErr
}

// stop stops every node (SIGTERM: each writes its append-only file).
func (rc *redisCluster) stop() {
	var wg sync.WaitGroup
	for _, p := range rc.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.stop(syscall.SIGTERM, 10*time.Second)
		}()
	}
	wg.Wait()
}

// running lists the nodes no fault killed.
func (rc *redisCluster) running() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(rc.addrs), func(a string) bool { return slices.Contains(rc.killed, a) })
}

func (rc *redisCluster) gone() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.killed)
}

// killMaster kills the master that serves slot now with SIGKILL, once
// it has a replica left to take over; it returns the master's address
// and the replicas that may.
func (rc *redisCluster) killMaster(ctx context.Context, slot int) (master string, replicas []string, err error) {
	running := rc.running()
	master, err = redisproc.MasterOf(ctx, running, slot)
	if err != nil {
		return "", nil, err
	}
	shards, err := redisproc.Shards(ctx, master)
	if err != nil {
		return master, nil, err
	}
	for _, s := range shards {
		if s.Master == master {
			for _, a := range s.Replicas {
				if slices.Contains(running, a) {
					replicas = append(replicas, a)
				}
			}
		}
	}
	if len(replicas) == 0 {
		return master, nil, fmt.Errorf("master %s has no replica left to take over its slots: not killed", master)
	}
	i := slices.Index(rc.addrs, master)
	rc.mu.Lock()
	rc.killed = append(rc.killed, master)
	rc.mu.Unlock()
	return master, replicas, rc.procs[i].kill()
}
