package ctxwait

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestSleepAndGroup(t *testing.T) {
	t.Parallel()
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep without cancellation did not sleep the whole time")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep ignored a cancelled context")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); time.Sleep(time.Millisecond) }()
	if !Group(context.Background(), &wg) {
		t.Fatal("Group did not see the goroutines finish")
	}
	wg.Add(1)
	if Group(ctx, &wg) {
		t.Fatal("Group ignored a cancelled context")
	}
	wg.Done()
}
