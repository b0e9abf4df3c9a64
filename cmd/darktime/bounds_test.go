package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// TestInputBoundsExitCodes: every file the CLI reads is bounded; a file
// refused is bad input, exit 2, with a message that says what to do.
func TestInputBoundsExitCodes(t *testing.T) {
	dir := t.TempDir()
	fifo := tstest.FIFO(t, dir, "fifo.yaml")
	file := func(name, content string) string { return tstest.WriteFile(t, dir, name, content) }
	deep := file("deep.yaml", "version: 1\nclients: "+tstest.Nested(50_000))
	bomb := file("bomb.yaml", "primary: http://127.0.0.1:1\nmirror: {ignore_events: [&a [x, x], *a]}\n")
	pipes := file("pipes.yaml", "models: &m {post: {stages: [{route: {channels: [x]}}]}}\n")
	gates := file("gates.yaml", "- &g lost == 0\n- *g\n")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := l.Addr().String()
	l.Close()
	const td = "../../report/testdata/"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "/dev/zero"}, "/dev/zero: not a regular file: it is a character device (--allow-special-files reads it"},
		{[]string{"report", "--allow-special-files", "--max-input-bytes", "1000000", "/dev/zero"}, "over the limit of 1000000 bytes; raise it with --max-input-bytes"},
		{[]string{"report", "--max-input-bytes", "100", td + "clean.json"}, "over the limit of 100 bytes; raise it with --max-input-bytes"},
		{[]string{"report", td + "clean.json", "--stats-before", dir}, "it is a directory"},
		{[]string{"report", td + "clean.json", "--gates", gates}, "gates.yaml:1:3: YAML anchors (&name) are not supported"},
		{[]string{"run", "--check", deep}, "deep.yaml:2:73: nesting deeper than 64 levels"},
		{[]string{"run", "--check", fifo}, "it is a FIFO or a pipe"},
		{[]string{"run", "--check", "/dev/zero"}, "it is a character device"},
		{[]string{"run", "--allow-special-files", "--check", "--max-input-bytes", "10", "/dev/zero"}, "/dev/zero: input file too large: over the limit of 1048576 bytes"},
		{[]string{"run", "--allow-special-files", fifo}, "works with --check"},
		{[]string{"shadow", "--config", fifo}, "it is a FIFO or a pipe (--allow-special-files reads it"},
		{[]string{"shadow", "--config", bomb}, "bomb.yaml: line 2, column 26: YAML anchors (&name) are not supported"},
		{[]string{"shadow", "--listen", self, "--admin", "127.0.0.1:0", "--primary", "http://" + self, "--mode", "off"}, "is this proxy's own listener " + self},
		{[]string{"server", "--pipelines", pipes, "--listen", "127.0.0.1:0"}, "line 1, column 9: YAML anchors (&name) are not supported"},
		{[]string{"swarm", "--profile-file", "/dev/zero"}, "--profile-file: /dev/zero: not a regular file"},
		{[]string{"server", "--auth", "/dev/zero"}, "--auth: /dev/zero: not a regular file"},
		{[]string{"server", "--tls-cert", "/dev/zero", "--tls-key", "/dev/zero", "--listen", "127.0.0.1:0"}, "--tls-cert: /dev/zero: not a regular file"},
	} {
		code, out := inProcess(t, c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("darktime %v: exit %d, want 2; output:\n%s\nwant it to hold %q", c.args, code, out, c.want)
		}
	}
}

// TestFIFOStopsOnSIGTERM: with --allow-special-files a FIFO is read, and
// a reader waiting on it stops at SIGTERM: `darktime shadow --config FIFO`
// exits 2 with the context's error instead of hanging.
func TestFIFOStopsOnSIGTERM(t *testing.T) {
	fifo := tstest.FIFO(t, t.TempDir(), "shadow.yaml")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "shadow", "--allow-special-files", "--config", fifo, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Become the FIFO's writer once darktime has it open (a non-blocking
	// open for writing fails until a reader is there), and never write:
	// darktime is then blocked reading it.
	var w *os.File
	for w == nil {
		if w, err = os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err != nil {
			if !errors.Is(err, syscall.ENXIO) {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("darktime never opened the FIFO: %s", out.String())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	defer w.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out.String(), "context canceled") {
		t.Fatalf("after SIGTERM: %v (exit %s); output:\n%s", err, strconv.Quote(exitCode(exit)), out.String())
	}
}

func exitCode(e *exec.ExitError) string {
	if e == nil {
		return "none"
	}
	return e.String()
}
