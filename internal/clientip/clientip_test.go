package clientip

import (
	"net/http/httptest"
	"testing"
)

// TestOf: the forwarded chain is believed only from trusted peers, walked
// from the right (the server's TestClientOf covers the loopback rule).
func TestOf(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrusted([]string{"10.0.0.0/8, 127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff, fwd string
		want                   string // "" invalid
	}{
		{"untrusted peer's header ignored", "192.0.2.1:1", "198.51.100.7", "", "192.0.2.1"},
		{"trusted peer's client", "10.0.0.1:1", "198.51.100.7", "", "198.51.100.7"},
		{"spoofed left part skipped", "127.0.0.1:1", "203.0.113.9, 198.51.100.7", "", "198.51.100.7"},
		{"chain of trusted proxies", "127.0.0.1:1", "198.51.100.7, 10.1.1.1", "", "198.51.100.7"},
		{"trusted peer without a header is the client", "10.0.0.1:1", "", "", "10.0.0.1"},
		{"Forwarded from a trusted peer", "10.0.0.1:1", "", `for="[2001:db8::1]:4711"`, "2001:db8::1"},
		{"garbage hop", "10.0.0.1:1", "nope", "", ""},
		{"ipv4-mapped peer", "[::ffff:192.0.2.1]:1", "198.51.100.7", "", "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.fwd != "" {
				r.Header.Set("Forwarded", tc.fwd)
			}
			got := ""
			if c := Of(r, trusted); c.Addr.IsValid() {
				got = c.Addr.String()
			}
			if got != tc.want {
				t.Fatalf("Of = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := ParseTrusted([]string{"10.0.0.0/8", "nope"}); err == nil {
		t.Fatal("ParseTrusted accepted nope")
	}
}
