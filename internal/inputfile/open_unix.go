//go:build unix

package inputfile

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// open opens path for reading. Opening a FIFO blocks until a writer opens
// it too, in the kernel, where no deadline reaches; so a special file is
// opened on a goroutine, and when ctx ends first this process becomes the
// writer for an instant (a non-blocking open for writing), which lets the
// blocked open return, and closes both.
func open(ctx context.Context, path string, special bool) (*os.File, error) {
	if !special {
		return os.Open(path)
	}
	type opened struct {
		f   *os.File
		err error
	}
	done := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		done <- opened{f, err}
	}()
	select {
	case o := <-done:
		return o.f, o.err
	case <-ctx.Done():
	}
	// The opening goroutine may not have reached open(2) yet, and the
	// non-blocking open for writing fails (ENXIO) while no reader is
	// there: retry for a while.
	for range 200 {
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = w.Close()
		}
		select {
		case o := <-done:
			if o.f != nil {
				_ = o.f.Close()
			}
			return nil, fmt.Errorf("%s: %w", path, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("%s: %w (the open did not return)", path, ctx.Err())
}
