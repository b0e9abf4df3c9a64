package swarm

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/nchanconf"
)

// findNginx finds nginx with the nchan module, or skips the test: tests
// install nothing (make deps does).
func findNginx(t *testing.T) (nginx, module string) {
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

// startNchan runs a private nginx + nchan, with the repository's
// nchan-nginx.conf on a port of the test's, and returns its base URL.
func startNchan(t *testing.T) string {
	t.Helper()
	nginx, module := findNginx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	text, err := nchanconf.Render(nchanconf.Options{Dir: dir, Module: module, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s: %s", addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr
}

func TestRunNchan(t *testing.T) {
	t.Parallel()
	target := startNchan(t)
	cfg := quickConfig(t, target)
	cfg.Profile, _ = LookupProfile("nchan")
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	t.Logf("nchan: %d events, delivery %+v", res.Events.Events, res.Summary[HistDelivery])
}

func TestRunNchanStormResumes(t *testing.T) {
	t.Parallel()
	target := startNchan(t)
	cfg := quickConfig(t, target)
	cfg.Profile, _ = LookupProfile("nchan")
	cfg.Duration = 2 * time.Second
	cfg.Storms = []time.Duration{700 * time.Millisecond}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients.StormCuts != int64(cfg.Clients) || res.Clients.Reconnects != int64(cfg.Clients) {
		t.Errorf("storm cuts %d reconnects %d, want %d each", res.Clients.StormCuts, res.Clients.Reconnects, cfg.Clients)
	}
	// nchan resumes from Last-Event-ID: nothing owed is lost.
	checkBalanced(t, res)
}
