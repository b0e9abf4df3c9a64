// Package redistest gives tests a real Redis server of their own.
//
// Each call to Start launches a private redis-server on a free loopback port
// in a temporary directory and stops it when the test ends, so tests never
// share state with each other or with a Redis the developer runs. Nothing is
// mocked: tests talk to a real server over a real TCP connection.
//
// It is the one way darktime's tests start a Redis (internal/tstest has
// the other shared helpers). Set DARKTIME_REDIS_SERVER to the path of a
// redis-server binary when it is not on PATH. `make test` installs
// Debian's redis-server when it is missing.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/redisproc"
	"github.com/darktime/darktime/internal/tstest"
)

// Server is a running private redis-server.
type Server struct {
	Addr string // host:port
	URL  string // redis://host:port/0
	Dir  string // working directory (AOF files live here)

	t    testing.TB
	port int
	opts redisproc.Options
	cmd  *exec.Cmd
}

// Options tune the server. The zero value is a plain, non-persistent Redis.
type Options struct {
	// AppendOnly turns on AOF persistence (appendfsync always), so data
	// survives Restart.
	AppendOnly bool

	// cluster, nodeTimeout: set by StartCluster for its nodes.
	cluster     bool
	nodeTimeout time.Duration
}

// Start launches a private redis-server and registers its shutdown with
// t.Cleanup. The test is skipped, not failed, only when DARKTIME_SKIP_REDIS
// is set; a missing binary otherwise fails the test with a hint.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	if os.Getenv("DARKTIME_SKIP_REDIS") != "" {
		t.Skip("DARKTIME_SKIP_REDIS is set")
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	bin, err := redisproc.Binary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := &Server{t: t, Dir: t.TempDir()}
	s.opts = redisproc.Options{Dir: s.Dir, LogFile: filepath.Join(s.Dir, "redis.log"), AppendOnly: o.AppendOnly, Fsync: "always",
		Cluster: o.cluster, NodeTimeout: o.nodeTimeout}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if !o.cluster {
			s.port = tstest.FreePort(t)
		} else if s.port, lastErr = redisproc.ClusterPort(); lastErr != nil {
			continue
		}
		if lastErr = s.launch(bin); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("start redis-server: %v", lastErr)
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.URL = "redis://" + s.Addr + "/0"
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) launch(bin string) error {
	o := s.opts
	o.Port = s.port
	cmd := exec.Command(bin, redisproc.Args(o)...)
	cmd.Dir = s.Dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	s.cmd = cmd
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if redisproc.Ping(addr) == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	s.cmd = nil
	log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return fmt.Errorf("redis-server on port %d did not answer PING within 5s: %s", s.port, log)
}

// Client returns a go-redis client connected to the server, closed at the
// end of the test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server (SIGKILL: like a crash, nothing is flushed beyond
// what AOF already wrote). It is safe to call more than once.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause stops the server's process (SIGSTOP): connections stay open and
// nothing answers, as with a Redis stalled by a long command, a fork or a
// network partition. Resume continues it; the test's cleanup resumes a
// paused server before killing it.
func (s *Server) Pause() {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("redistest: Pause of a stopped server")
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("redistest: pause: %v", err)
	}
	s.t.Cleanup(s.Resume)
}

// Resume continues a paused server (SIGCONT); safe when it is not paused.
func (s *Server) Resume() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Restart stops the server and starts it again on the same port and
// directory, like a Redis restart in production. Without AppendOnly the
// data is gone afterwards.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.StartAgain()
}

// StartAgain starts a stopped server on its old port and directory.
func (s *Server) StartAgain() {
	s.t.Helper()
	bin := os.Getenv("DARKTIME_REDIS_SERVER")
	if bin == "" {
		bin, _ = exec.LookPath("redis-server")
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.launch(bin); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the old socket may linger briefly
	}
	s.t.Fatalf("restart redis-server: %v", err)
}

// FlushAll empties the server; handy between subtests.
func (s *Server) FlushAll(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	return c.FlushAll(ctx).Err()
}
