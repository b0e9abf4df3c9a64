package tstest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/nchanconf"
)

// FindNginx returns the nginx binary and the nchan module's path, or skips
// the test with the reason and nchanconf.InstallHint when either is missing.
func FindNginx(t testing.TB) (nginx, module string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not on PATH: " + nchanconf.InstallHint)
	}
	if module = nchanconf.Module(); module == "" {
		t.Skipf("the nchan module (%s) is missing: %s", nchanconf.Modules[0], nchanconf.InstallHint)
	}
	return nginx, module
}

// Nchan runs a private nginx + nchan with the repository's
// nchan-nginx.conf (nchanconf.Render) on a free port, in a temporary
// folder, and returns its base URL ("http://127.0.0.1:port"). It stops
// when the test ends: SIGQUIT (graceful), then SIGKILL to its own process
// group after 5 s.
func Nchan(t testing.TB) string {
	t.Helper()
	nginx, module := FindNginx(t)
	dir := t.TempDir()
	addr := FreeAddr(t)
	text, err := nchanconf.Render(nchanconf.Options{Dir: dir, Module: module, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers die with it
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited before listening on %s: %s", addr, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s within 5s: %s", addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr
}
