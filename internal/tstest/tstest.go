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
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
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

// BadRequest is one entry of a bad-input catalogue: a request and the
// answer it must get — Status with a JSON error body
// {"error": ..., "status": ...}, saying Contains when set.
type BadRequest struct {
	Method, URL string
	Header      map[string]string
	Body        string
	Status      int
	Contains    string
}

// Refused sends r and fails the test unless the answer is r.Status with a
// JSON error body that says r.Contains; it returns the answer's header for
// further checks.
func Refused(t testing.TB, r BadRequest) http.Header {
	t.Helper()
	req, err := http.NewRequest(r.Method, r.URL, strings.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != r.Status {
		t.Fatalf("%s %s: status %d, want %d: %s", r.Method, r.URL, resp.StatusCode, r.Status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || !strings.Contains(string(raw), `"error"`) {
		t.Fatalf("%s %s: want a JSON error body, got %q (%s)", r.Method, r.URL, raw, ct)
	}
	if r.Contains != "" && !strings.Contains(string(raw), r.Contains) {
		t.Errorf("%s %s: error %s does not say %q", r.Method, r.URL, raw, r.Contains)
	}
	return resp.Header
}
