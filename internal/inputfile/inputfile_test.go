//go:build linux

package inputfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

func TestRead(t *testing.T) {
	t.Parallel()
	small := write(t, "small.json", `{"a":1}`)
	big := write(t, "big.json", strings.Repeat("x", 2000))
	dir := t.TempDir()
	fifo := mkfifo(t)
	cases := []struct {
		name    string
		path    string
		opts    Options
		want    string // content, when no error
		wantErr error
		msg     string // part of the message
	}{
		{"regular", small, Options{}, `{"a":1}`, nil, ""},
		{"at the limit", big, Options{MaxBytes: 2000}, strings.Repeat("x", 2000), nil, ""},
		{"over the limit", big, Options{MaxBytes: 1999, RaiseLimit: "--max-input-bytes"}, "", ErrTooLarge,
			"2000 bytes, over the limit of 1999 bytes; raise it with --max-input-bytes"},
		{"missing", filepath.Join(dir, "nope"), Options{}, "", fs.ErrNotExist, "nope"},
		{"directory", dir, Options{AllowSpecial: true}, "", ErrNotRegular, "it is a directory"},
		{"dev zero", "/dev/zero", Options{AllowSpecialHint: "--allow-special-files"}, "", ErrNotRegular,
			"/dev/zero: not a regular file: it is a character device (--allow-special-files reads it"},
		{"dev zero allowed", "/dev/zero", Options{AllowSpecial: true, MaxBytes: 1 << 20, RaiseLimit: "--max-input-bytes"}, "", ErrTooLarge,
			"over the limit of 1048576 bytes"},
		{"fifo", fifo, Options{}, "", ErrNotRegular, "it is a FIFO or a pipe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Read(t.Context(), c.path, c.opts)
			if c.wantErr == nil {
				if err != nil || string(got) != c.want {
					t.Fatalf("Read = %.40q, %v; want %.40q", got, err, c.want)
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Read error = %v, want %v", err, c.wantErr)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Read error %q does not say %q", err, c.msg)
			}
		})
	}
}

// TestFIFO reads real FIFOs: what a writer sends when it closes, and a
// read cut by the context while the writer holds the FIFO open without
// writing, or before any writer came (the open itself blocks then).
func TestFIFO(t *testing.T) {
	t.Run("writer closes", func(t *testing.T) {
		path := mkfifo(t)
		go func() {
			w, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			_, _ = w.WriteString("hello")
			_ = w.Close()
		}()
		got, err := Read(t.Context(), path, Options{AllowSpecial: true})
		if err != nil || string(got) != "hello" {
			t.Fatalf("Read = %q, %v", got, err)
		}
	})
	t.Run("writer stalls", func(t *testing.T) {
		path := mkfifo(t)
		// O_RDWR does not wait for a reader; the test keeps the FIFO
		// open, writes a little and never closes it before the end.
		w, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, err := w.WriteString("partial"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := Read(ctx, path, Options{AllowSpecial: true})
			errc <- err
		}()
		// Cancel once Read has taken the bytes: it is in its blocked
		// read then (or on its way there).
		for pending(t, w) > 0 {
			runtime.Gosched()
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after cancel = %v, want context.Canceled", err)
		}
	})
	t.Run("no writer", func(t *testing.T) {
		path := mkfifo(t)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := Read(ctx, path, Options{AllowSpecial: true})
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after cancel = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Read(ctx, write(t, "f", "x"), Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Read = %v, want context.Canceled", err)
		}
	})
}

// pending is how many bytes wait in the FIFO (FIONREAD).
func pending(t *testing.T, f *os.File) int {
	t.Helper()
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("FIONREAD: %v", errno)
	}
	return int(n)
}
