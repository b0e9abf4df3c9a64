// Package ctxwait holds the two waits that every bounded load run needs:
// sleeping and waiting for goroutines, each cut short by a context.
package ctxwait

import (
	"context"
	"sync"
	"time"
)

// Sleep sleeps for d or until ctx is done; it reports whether it slept the
// whole time.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Group waits for wg or ctx; it reports whether wg finished.
func Group(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
