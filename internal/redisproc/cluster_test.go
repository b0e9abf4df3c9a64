package redisproc

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/tstest"
)

// TestCluster starts six cluster nodes with Args, joins them with
// CreateCluster (3 masters, a replica each), finds who serves a slot,
// kills only one client's pub/sub connection, then kills a master and
// waits for its replica to take over.
func TestCluster(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster and waits for a failover")
	bin, err := Binary()
	if err != nil {
		t.Skipf("%v", err)
	}
	if _, err := CLI(); err != nil {
		t.Skipf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	procs := map[string]*exec.Cmd{}
	var addrs []string
	for range 6 {
		port, err := ClusterPort()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		cmd := exec.Command(bin, Args(Options{Port: port, Dir: dir, LogFile: filepath.Join(dir, "redis.log"), Cluster: true, NodeTimeout: time.Second})...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // a test binary that dies takes them along
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		tstest.WaitFor(t, 5*time.Second, addr+" to answer PING", func() bool { return Ping(addr) == nil })
		procs[addr] = cmd
		addrs = append(addrs, addr)
	}
	if err := CreateCluster(ctx, addrs, 1); err != nil {
		t.Fatal(err)
	}
	shards, err := Shards(ctx, addrs[0])
	if err != nil || len(shards) != 3 || shards[0].First() != 0 {
		t.Fatalf("shards %+v (%v): want 3, the first from slot 0", shards, err)
	}
	for _, s := range shards {
		if len(s.Replicas) != 1 {
			t.Errorf("shard %+v: want one replica", s)
		}
	}
	if got := Masters(ctx, addrs); len(got) != 3 {
		t.Errorf("masters %v", got)
	}

	// Two named clients subscribe on the master of slot 0; one publishes.
	victim, err := MasterOf(ctx, addrs, 0)
	if err != nil || victim != shards[0].Master {
		t.Fatalf("master of slot 0: %q (%v), want %s", victim, err, shards[0].Master)
	}
	subs := map[string]*redis.PubSub{}
	for _, name := range []string{"node-a", "node-b"} {
		rc := redis.NewClient(&redis.Options{Addr: victim, ClientName: name})
		t.Cleanup(func() { _ = rc.Close() })
		ps := rc.Subscribe(ctx, "ch")
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		subs[name] = ps
		if err := rc.Ping(ctx).Err(); err != nil { // a connection that is not pub/sub
			t.Fatal(err)
		}
	}
	killed, err := KillPubSub(ctx, victim, "node-a")
	if err != nil || len(killed) != 1 || killed[0].Name != "node-a" {
		t.Fatalf("KillPubSub: %+v, %v; want node-a's one pub/sub connection", killed, err)
	}
	left, err := PubSubClients(ctx, victim)
	if err != nil || len(left) != 1 || left[0].Name != "node-b" {
		t.Errorf("pub/sub clients after the kill: %+v (%v), want node-b's alone", left, err)
	}

	_ = procs[victim].Process.Kill()
	_ = procs[victim].Wait()
	running := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == victim })
	killedAt := time.Now()
	if err := WaitHealthy(ctx, running, victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("the replica took over %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	promoted, err := MasterOf(ctx, running, 0)
	if err != nil || promoted != shards[0].Replicas[0] {
		t.Errorf("slot 0 served by %q (%v), want the replica %s", promoted, err, shards[0].Replicas[0])
	}
}
