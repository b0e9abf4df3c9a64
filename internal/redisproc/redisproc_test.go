package redisproc

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// TestPrivateServer starts redis-server with Args and waits for Ping, as
// the runner and redistest do.
func TestPrivateServer(t *testing.T) {
	bin, err := Binary()
	if err != nil {
		t.Skipf("%v", err)
	}
	for _, o := range []Options{{}, {AppendOnly: true, Fsync: "everysec"}} {
		o.Port, o.Dir = tstest.FreePort(t), t.TempDir()
		o.LogFile = filepath.Join(o.Dir, "redis.log")
		args := Args(o)
		if !slices.Contains(args, "127.0.0.1") || (o.AppendOnly != slices.Contains(args, "everysec")) {
			t.Fatalf("args %v", args)
		}
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(o.Port)
		tstest.WaitFor(t, 5*time.Second, "redis-server to answer PING", func() bool { return Ping(addr) == nil })
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if Ping(addr) == nil {
			t.Errorf("%s still answers after the kill", addr)
		}
	}
}
