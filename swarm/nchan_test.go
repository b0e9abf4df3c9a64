package swarm

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nchanConf is shared/peers/nchan-nginx.conf on a port of the test's.
const nchanConf = `load_module /usr/share/nginx/modules/ngx_nchan_module.so;
worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s;
  server {
    listen 127.0.0.1:%[2]d;
    location ~ /sub/(\w+)$ {
      nchan_subscriber eventsource;
      nchan_channel_id $1;
    }
    location = /pub {
      nchan_publisher;
      nchan_channel_id $arg_id;
      nchan_message_buffer_length 100;
      nchan_message_timeout 5m;
    }
  }
}
`

// ensureNginx finds nginx with nchan, installing Debian's packages when
// they are missing; it skips the test only when apt cannot.
func ensureNginx(t *testing.T) string {
	t.Helper()
	hasModule := func() bool {
		_, err := os.Stat("/usr/share/nginx/modules/ngx_nchan_module.so")
		return err == nil
	}
	if path, err := exec.LookPath("nginx"); err == nil && hasModule() {
		return path
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Skip("nginx + nchan missing and apt-get is unavailable (not root or not Debian): apt-get install -y nginx-light libnginx-mod-nchan")
	}
	cmd := exec.Command("apt-get", "install", "-y", "nginx-light", "libnginx-mod-nchan")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("apt-get install nginx-light libnginx-mod-nchan failed (%v): %s", err, lastLines(string(out), 3))
	}
	path, err := exec.LookPath("nginx")
	if err != nil || !hasModule() {
		t.Skip("nginx + nchan still missing after apt-get install")
	}
	return path
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// startNchan runs a private nginx + nchan and returns its base URL.
func startNchan(t *testing.T) string {
	t.Helper()
	nginx := ensureNginx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nchanConf, dir, port), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
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
	addr := "127.0.0.1:" + strconv.Itoa(port)
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
