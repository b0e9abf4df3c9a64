package shadow

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/internal/yamlsafe"
)

// The shapes of issue 12 as shadow configs (tstest has them); the alias
// bomb, 8 levels and 384 bytes, took the proxy to 1.7 GB.
func aliasBomb(levels int) string {
	return "primary: http://127.0.0.1:1\nmirror:\n  ignore_events:\n" + tstest.AliasBomb("    - ", levels)
}

func deepBrackets(n int) string { return "primary: http://127.0.0.1:1\nroutes: " + tstest.Nested(n) }

func bigComment(n int) string { return "primary: http://127.0.0.1:1\n" + tstest.Comments(n) }

// TestAdminRefusesBombs: PUT config with the shapes of issue 12 answers
// 400 (413 over 1 MiB) JSON, keeps the old config, and costs the proxy
// little memory: the bound is generous, the bomb took gigabytes before.
func TestAdminRefusesBombs(t *testing.T) {
	ref := startRef(t)
	p, _, admin := startProxy(t, Config{Primary: ref.url})
	cases := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"alias bomb", aliasBomb(9), http.StatusBadRequest, "line 4, column 7: YAML anchors (&name) are not supported"},
		{"alias", "primary: *p\n", http.StatusBadRequest, "line 1, column 10: YAML aliases (*name) are not supported"},
		{"deep", deepBrackets(50_000), http.StatusBadRequest, "nesting deeper than 64 levels"},
		{"big comment", bigComment(yamlsafe.MaxBytes + 1), http.StatusRequestEntityTooLarge, "over the limit of 1048576 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			status, body := put(t, admin+"/_darktime/config", c.body)
			runtime.ReadMemStats(&after)
			if status != c.status || body["status"] != float64(c.status) || !strings.Contains(body["error"].(string), c.msg) {
				t.Fatalf("PUT = %d %v, want %d saying %q", status, body, c.status, c.msg)
			}
			if p.Config().Primary != ref.url {
				t.Fatal("a refused config replaced the old one")
			}
			// Request, response and the 1 MiB body itself: well under 32 MiB.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Errorf("the PUT allocated %d MB", grew>>20)
			}
		})
	}
}

// TestLoadConfigFileBounds: the file loader refuses what is not a
// regular file, and the size cap applies before anything is parsed.
func TestLoadConfigFileBounds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := tstest.FIFO(t, dir, "fifo.yaml")
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(bigComment(10<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	bomb := filepath.Join(dir, "bomb.yaml")
	if err := os.WriteFile(bomb, []byte(aliasBomb(9)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want error
		msg  string
	}{
		{fifo, inputfile.ErrNotRegular, "it is a FIFO or a pipe"},
		{"/dev/zero", inputfile.ErrNotRegular, "it is a character device"},
		{dir, inputfile.ErrNotRegular, "it is a directory"},
		{big, inputfile.ErrTooLarge, "over the limit of 1048576 bytes"},
		{bomb, yamlsafe.ErrAlias, "bomb.yaml: line 4, column 7: YAML anchors"},
	} {
		_, err := LoadConfigFile(c.path)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("LoadConfigFile(%s) = %v, want ErrInvalidConfig saying %q", c.path, err, c.msg)
		}
		if c.want != yamlsafe.ErrAlias && !errors.Is(err, c.want) {
			t.Errorf("LoadConfigFile(%s) = %v, want %v", c.path, err, c.want)
		}
	}
}
