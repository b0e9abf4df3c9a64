// Package redisproc is what darktime means by a private Redis: the
// redis-server binary (or the hint that installs it), the command line of
// a loopback-only, non-saving server on a port of its own, and the check
// that it answers; and a Redis Cluster of such servers (cluster.go):
// redis-cli's cluster create, who serves which slot, whether a failover
// is over, a client's pub/sub connections closed. `darktime run` (runner)
// and the tests (redistest) start their servers through it, each managing
// the processes its own way — the runner with its logs and a graceful
// SIGTERM, the tests with t.Cleanup.
package redisproc

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrNoBinary is returned by Binary when redis-server cannot be found.
var ErrNoBinary = errors.New("redis-server is not on PATH: apt-get install -y redis-server (or make deps), or set DARKTIME_REDIS_SERVER")

// Binary is the redis-server to run: $DARKTIME_REDIS_SERVER, or the one on
// PATH.
func Binary() (string, error) {
	if bin := os.Getenv("DARKTIME_REDIS_SERVER"); bin != "" {
		return bin, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ErrNoBinary
	}
	return bin, nil
}

// Options shape a private server.
type Options struct {
	Port int
	// Dir is its working folder (the append-only file lives there).
	Dir string
	// LogFile, when set, receives its log (else standard output).
	LogFile string
	// AppendOnly turns on AOF persistence; Fsync is its appendfsync
	// ("always", "everysec"; default "always").
	AppendOnly bool
	Fsync      string
	// Cluster makes it a Redis Cluster node (cluster-enabled yes, its
	// nodes.conf in Dir); NodeTimeout is its cluster-node-timeout, how long
	// a master may be unreachable before its replica takes over (default
	// 15s, Redis's own).
	Cluster     bool
	NodeTimeout time.Duration
}

// Args is the command line of a private server: loopback only, no RDB
// snapshots, in the foreground, quiet.
func Args(o Options) []string {
	args := []string{
		"--port", strconv.Itoa(o.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", o.Dir,
		"--daemonize", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
	}
	if o.LogFile != "" {
		args = append(args, "--logfile", o.LogFile)
	}
	if o.Cluster {
		timeout := o.NodeTimeout
		if timeout <= 0 {
			timeout = 15 * time.Second
		}
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10))
	}
	if o.AppendOnly {
		fsync := o.Fsync
		if fsync == "" {
			fsync = "always"
		}
		return append(args, "--appendonly", "yes", "--appendfsync", fsync)
	}
	return append(args, "--appendonly", "no")
}

// Ping sends PING to addr over RESP and wants +PONG: the server is up and
// serving (a loading server answers an error).
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis at %s answered %q", addr, strings.TrimSpace(line))
	}
	return nil
}
