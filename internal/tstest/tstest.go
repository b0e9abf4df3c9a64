// Package tstest holds the helpers darktime's tests share: WaitFor instead
// of fixed sleeps, Long for tests that `go test -short` skips, free
// loopback ports, and a private nginx + nchan (Nchan) running the
// repository's config.
//
// A private Redis is internal/redistest's job (redistest.Start): it is the
// one way tests start a Redis, and it takes its port from FreePort here.
//
// Helpers that need a binary (nginx, the nchan module) skip the test with
// the reason and the install hint when it is missing: tests install
// nothing (`make deps` does), and they stop only what they started, by
// its pid (nginx: the process group it leads).
package tstest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// pollEvery is how often WaitFor checks its condition.
const pollEvery = 5 * time.Millisecond

// WaitFor polls cond until it holds, or fails the test (t.Fatalf) once
// timeout has passed, naming what it waited for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
}

// Long marks t as a long test (seconds of swarm runs, a browser, load,
// real timeouts): `go test -short` skips it, saying why, so the quick loop
// (`make test-short`) stays under a minute; `make test` runs it.
func Long(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("long test, skipped in -short mode: " + why)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago. Another
// process may take it before the caller listens on it: callers that start
// a server on it retry with a new port when the start fails.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as "127.0.0.1:port": an address to hand a server
// to listen on, or, left alone, one where nothing answers.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
