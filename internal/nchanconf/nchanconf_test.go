package nchanconf

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestEmbeddedIsTheFile checks that the binary carries the repository's
// file, and that the constants describe it.
func TestEmbeddedIsTheFile(t *testing.T) {
	t.Parallel()
	disk, err := os.ReadFile("nchan-nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	if string(disk) != File {
		t.Fatal("the embedded nchan-nginx.conf differs from the file: rebuild")
	}
	if !strings.Contains(File, "listen "+Addr+" ") {
		t.Errorf("nchan-nginx.conf does not listen on Addr %s", Addr)
	}
	m := regexp.MustCompile(`worker_connections (\d+);`).FindStringSubmatch(File)
	if m == nil || m[1] != strconv.Itoa(MaxConns) {
		t.Errorf("worker_connections %v, want MaxConns %d", m, MaxConns)
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	text, err := Render(Options{Dir: dir, Module: "/m/ngx_nchan_module.so", Listen: "127.0.0.1:1234"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"load_module /m/ngx_nchan_module.so;", "daemon off;", "pid " + dir + "/nginx.pid;",
		"error_log " + dir + "/error.log warn;", "client_body_temp_path " + dir + ";", "listen 127.0.0.1:1234 ",
		"nchan_subscriber eventsource;", "nchan_publisher;",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered config lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, Addr) {
		t.Errorf("rendered config still listens on %s", Addr)
	}
	if _, err := Render(Options{Dir: "relative", Module: "/m.so"}); err == nil {
		t.Error("a relative Dir was accepted")
	}
}
