package runner

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/nchanconf"
)

// TestStartNchanFromAnyFolder starts nginx + nchan the way start: nchan
// does, from a working folder outside the repository with a relative run
// folder: the configuration comes from the binary (embedded), not from a
// file beside it or at a path of this machine.
func TestStartNchanFromAnyFolder(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not on PATH: " + nchanconf.InstallHint)
	}
	if nchanconf.Module() == "" {
		t.Skip("the nchan module is missing: " + nchanconf.InstallHint)
	}
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Join("run", "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{r: &Runner{log: slog.New(slog.DiscardHandler)}, dir: "run", http: &http.Client{Timeout: 5 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.startNchan(ctx); err != nil {
		log, _ := os.ReadFile(filepath.Join("run", "nginx", "error.log"))
		t.Fatalf("start nchan: %v\n%s", err, log)
	}
	t.Cleanup(func() { _ = c.nginx.stop(syscall.SIGQUIT, 5*time.Second) })
	// A publish with nobody subscribed is queued by nchan: 202.
	resp, err := c.http.Post(c.nodeURLs[0]+"/pub?id=probe", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish to nchan: %s %s", resp.Status, body)
	}
	conf, err := os.ReadFile(filepath.Join("run", "nginx", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "nchan_subscriber eventsource;") {
		t.Errorf("the written config is not nchan-nginx.conf:\n%s", conf)
	}
}
