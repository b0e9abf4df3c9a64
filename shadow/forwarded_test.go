package shadow

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// seenHeaders records the forwarding headers each request arrived with.
func seenHeaders(t *testing.T) (string, <-chan http.Header) {
	t.Helper()
	seen := make(chan http.Header, 16)
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := http.Header{}
		for _, k := range []string{"X-Forwarded-For", "Forwarded"} {
			if v := r.Header.Values(k); len(v) > 0 {
				h[k] = v
			}
		}
		seen <- h
		w.WriteHeader(http.StatusCreated)
	}))
	return url, seen
}

func next(t *testing.T, c <-chan http.Header, who string) http.Header {
	t.Helper()
	select {
	case h := <-c:
		return h
	case <-time.After(5 * time.Second):
		t.Fatalf("%s got no request", who)
	}
	return nil
}

// TestForwardedOnlyFromTrusted: the proxy passes an incoming
// X-Forwarded-For / Forwarded chain on (to the primary and the mirror)
// only from a trusted proxy; from anyone else the backends see the peer's
// address alone.
func TestForwardedOnlyFromTrusted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		trusted   []string
		wantXFF   string
		forwarded bool
	}{
		{"untrusted client", nil, "127.0.0.1", false},
		{"trusted proxy", []string{"127.0.0.0/8"}, "192.0.2.1, 127.0.0.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			primary, atPrimary := seenHeaders(t)
			candidate, atCandidate := seenHeaders(t)
			_, url, _ := startProxy(t, Config{Primary: primary, Candidate: candidate, Mode: ModeMirror, Percent: 100, MirrorUnsafe: true, TrustedProxies: tc.trusted})
			req, _ := http.NewRequest("POST", url+"/pub?id=x", strings.NewReader("x"))
			req.Header.Set("X-Forwarded-For", "192.0.2.1")
			req.Header.Set("Forwarded", "for=192.0.2.1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for who, c := range map[string]<-chan http.Header{"primary": atPrimary, "candidate": atCandidate} {
				h := next(t, c, who)
				if got := strings.Join(h.Values("X-Forwarded-For"), ", "); got != tc.wantXFF || (h.Get("Forwarded") != "") != tc.forwarded {
					t.Errorf("%s saw X-Forwarded-For %q Forwarded %q; want %q, Forwarded passed on: %v", who, got, h.Get("Forwarded"), tc.wantXFF, tc.forwarded)
				}
			}
		})
	}
	t.Run("bad trusted proxy", func(t *testing.T) {
		if _, err := New(Config{Primary: "http://127.0.0.1:1", TrustedProxies: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
			t.Fatalf("New with a bad trusted proxy: %v", err)
		}
	})
}

// TestProxyDoesNotMakeNetworkLocal: the shadow proxy on this host in
// front of a reference server without a publish token does not make a
// client on the network a loopback publisher (curl --interface
// <non-loopback> -d x http://proxy/pub?id=outside).
func TestProxyDoesNotMakeNetworkLocal(t *testing.T) {
	t.Parallel()
	ext := ""
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ext = n.IP.String()
			break
		}
	}
	if ext == "" {
		t.Skip("no non-loopback address on this host")
	}
	ref := startRef(t)
	p, err := New(Config{Primary: ref.url, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	l, err := net.Listen("tcp", ext+":0")
	if err != nil {
		t.Skipf("listen on %s: %v", ext, err)
	}
	hs := &http.Server{Handler: p}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ext)}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	for _, forged := range []string{"", "127.0.0.1"} {
		req, _ := http.NewRequest("POST", "http://"+l.Addr().String()+"/pub?id=outside", strings.NewReader("x"))
		if forged != "" {
			req.Header.Set("X-Forwarded-For", forged)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("publish from %s through the proxy (X-Forwarded-For %q): %d %s, want 403", ext, forged, resp.StatusCode, body)
		}
	}
	if st := ref.srv.Stats(); st.Totals.Published != 0 {
		t.Fatalf("published %d", st.Totals.Published)
	}
}
