package scenario

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/internal/yamlsafe"
)

// The shapes of issue 12 as scenarios (tstest has them).
func aliasBomb(levels int) string {
	return "version: 1\nname: bomb\n" + tstest.AliasBomb("x{i}: ", levels)
}

func deepBrackets(n int) string { return tstest.Nested(n) }

func bigComment(n int) string { return "version: 1\n" + tstest.Comments(n) }

// TestBoundedInput: each shape is refused with its place, and the file
// reader refuses what is not a regular file or too large.
func TestBoundedInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := tstest.FIFO(t, dir, "fifo.yaml")
	file := func(name, content string) string { return tstest.WriteFile(t, dir, name, content) }
	cases := []struct {
		name, path string
		want       error
		msg        string
	}{
		{"alias bomb", file("bomb.yaml", aliasBomb(9)), yamlsafe.ErrAlias, "bomb.yaml:3:5: YAML anchors (&name) are not supported"},
		{"alias", file("alias.yaml", "version: 1\nname: *n\n"), yamlsafe.ErrAlias, "alias.yaml:2:7: YAML aliases (*name) are not supported"},
		{"deep", file("deep.yaml", "version: 1\nclients: "+deepBrackets(50_000)), yamlsafe.ErrTooDeep, "deep.yaml:2:73: nesting deeper than 64 levels"},
		{"big comment", file("comments.yaml", bigComment(yamlsafe.MaxBytes+1)), inputfile.ErrTooLarge, "over the limit of 1048576 bytes"},
		{"fifo", fifo, inputfile.ErrNotRegular, "it is a FIFO or a pipe (--allow-special-files reads it"},
		{"dev zero", "/dev/zero", inputfile.ErrNotRegular, "it is a character device"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadFile(c.path, testOpts)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("LoadFile = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("LoadFile error %q does not say %q", err, c.msg)
			}
		})
	}
	// Parse applies the same bounds to bytes that come from elsewhere.
	if _, err := Parse([]byte(bigComment(yamlsafe.MaxBytes+1)), testOpts); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("Parse of 1 MiB of comments = %v", err)
	}
}

// TestBombMemory: before issue 12, 100 KB of brackets took run --check
// past 2.3 GB and the alias bomb to gigabytes; now Parse refuses both
// within a few hundred kilobytes of allocation (a generous bound).
func TestBombMemory(t *testing.T) {
	for name, doc := range map[string]string{
		"alias bomb":    aliasBomb(9),
		"deep brackets": "version: 1\nclients: " + deepBrackets(50_000),
		"big comment":   bigComment(10 << 20),
	} {
		data := []byte(doc)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Parse(data, testOpts)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: parsed", name)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%s: Parse allocated %d bytes, want under 1 MiB", name, grew)
		}
	}
}
