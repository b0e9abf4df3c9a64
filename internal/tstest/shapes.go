package tstest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The YAML shapes of issue 12, which took darktime's parsers to
// gigabytes before internal/yamlsafe refused them.

// AliasBomb is levels lines, each an anchored list of nine aliases of the
// line before (9^levels strings once expanded); each line starts with
// prefix, where {i} stands for the line's number ("x{i}: " for keys of a
// map, "- " for items of a list).
func AliasBomb(prefix string, levels int) string {
	var b strings.Builder
	line := func(i int) { b.WriteString(strings.ReplaceAll(prefix, "{i}", strconv.Itoa(i))) }
	line(0)
	b.WriteString("&a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < levels; i++ {
		p := "*a" + strconv.Itoa(i-1)
		line(i)
		b.WriteString("&a" + strconv.Itoa(i) + " [" + strings.Repeat(p+",", 8) + p + "]\n")
	}
	return b.String()
}

// Nested is n flow lists inside one another, and a newline.
func Nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) + "\n" }

// Comments is comment lines of at least n bytes in all.
func Comments(n int) string { return strings.Repeat("# a comment line, repeated\n", n/27+1) }

// WriteFile writes content to dir/name and returns its path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// FIFO makes a named pipe dir/name and returns its path.
func FIFO(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
