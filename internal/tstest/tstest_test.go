package tstest

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitForReturnsOnceTheConditionHolds(t *testing.T) {
	var polls atomic.Int32
	WaitFor(t, 5*time.Second, "the third poll", func() bool { return polls.Add(1) >= 3 })
	if n := polls.Load(); n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
}

// fatalTB records Fatalf and ends the goroutine as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWaitForFailsNamingWhatItWaitedFor(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		WaitFor(f, 30*time.Millisecond, "a condition that never holds", func() bool { return false })
	}()
	<-done
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Errorf("gave up after %v, before the 30ms timeout", waited)
	}
	if want := "timed out after 30ms waiting for a condition that never holds"; f.msg != want {
		t.Fatalf("Fatalf(%q), want %q", f.msg, want)
	}
}

func TestFreeAddrIsListenable(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q, want a loopback address", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr %s: %v", addr, err)
	}
	l.Close()
}

func TestNchanAcceptsAPublish(t *testing.T) {
	base := Nchan(t)
	// A publish with nobody subscribed is queued by nchan: 202.
	resp, err := http.Post(base+"/pub?id=tstest", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish to nchan: %s, want 202 Accepted", resp.Status)
	}
}
