package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/internal/tstest"
)

func mustPrefixes(t *testing.T, v ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientOf: the forwarded chain is believed only from trusted peers,
// walked from the right; a loopback peer that forwards for another host
// is not local.
func TestClientOf(t *testing.T) {
	t.Parallel()
	trusted := mustPrefixes(t, "10.0.0.0/8", "127.0.0.1")
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string
		fwd     []string
		trusted []netip.Prefix
		want    string // client address; "" invalid
		local   bool
	}{
		{"direct loopback", "127.0.0.1:1", nil, nil, nil, "127.0.0.1", true},
		{"direct ipv6 loopback", "[::1]:1", nil, nil, nil, "::1", true},
		{"direct remote", "192.0.2.1:1", nil, nil, nil, "192.0.2.1", false},
		{"untrusted loopback proxy for a remote client", "127.0.0.1:1", []string{"192.0.2.1"}, nil, nil, "127.0.0.1", false},
		{"untrusted loopback proxy for a loopback client", "127.0.0.1:1", []string{"127.0.0.1"}, nil, nil, "127.0.0.1", true},
		{"untrusted loopback proxy, Forwarded", "127.0.0.1:1", nil, []string{`for="[2001:db8::1]:4711";proto=http`}, nil, "127.0.0.1", false},
		{"untrusted loopback proxy, obfuscated hop", "127.0.0.1:1", nil, []string{"for=_hidden"}, nil, "127.0.0.1", false},
		{"untrusted loopback proxy, unknown hop", "127.0.0.1:1", []string{"unknown"}, nil, nil, "127.0.0.1", false},
		{"remote peer forging loopback", "192.0.2.1:1", []string{"127.0.0.1"}, nil, trusted, "192.0.2.1", false},
		{"trusted proxy for a remote client", "127.0.0.1:1", []string{"192.0.2.1"}, nil, trusted, "192.0.2.1", false},
		{"trusted proxy for a loopback client", "127.0.0.1:1", []string{"127.0.0.1"}, nil, trusted, "127.0.0.1", true},
		{"chain of trusted proxies", "127.0.0.1:1", []string{"192.0.2.7, 10.1.1.1", "10.2.2.2"}, nil, trusted, "192.0.2.7", false},
		{"spoofed left part is the client's claim", "127.0.0.1:1", []string{"127.0.0.1, 192.0.2.9"}, nil, trusted, "192.0.2.9", false},
		{"trusted proxy, Forwarded list", "10.0.0.1:1", nil, []string{`for=192.0.2.60;proto=http;by=203.0.113.43, for="10.0.0.9:80"`}, trusted, "192.0.2.60", false},
		{"trusted proxy, garbage hop", "127.0.0.1:1", []string{"not-an-ip"}, nil, trusted, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.fwd {
				r.Header.Add("Forwarded", v)
			}
			c := ClientOf(r, tc.trusted)
			got := ""
			if c.Addr.IsValid() {
				got = c.Addr.String()
			}
			if got != tc.want || c.Local() != tc.local {
				t.Fatalf("ClientOf = %q local=%v (%+v), want %q local=%v", got, c.Local(), c, tc.want, tc.local)
			}
		})
	}
}

// proxyTo runs an httputil.ReverseProxy (which appends the peer to
// X-Forwarded-For, as nginx's $proxy_add_x_forwarded_for does) on addr.
func proxyTo(t *testing.T, target, addr string) string {
	t.Helper()
	u, _ := url.Parse(target)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	hs := &http.Server{Handler: httputil.NewSingleHostReverseProxy(u)}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + l.Addr().String()
}

// nonLoopbackAddr is an address of this host that is not loopback, or "".
func nonLoopbackAddr() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// clientFrom is an HTTP client whose connections leave from local (curl
// --interface).
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func post(t *testing.T, c *http.Client, url string, hdr map[string]string, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPublishThroughProxy: a proxy on loopback in front of a server
// without a token does not make every client on the network a loopback
// publisher; only a configured trusted proxy's X-Forwarded-For is believed.
func TestPublishThroughProxy(t *testing.T) {
	t.Parallel()
	_, untrusting := startServer(t, Config{})
	_, trusting := startServer(t, Config{TrustedProxies: mustPrefixes(t, "127.0.0.0/8")})
	local := http.DefaultClient
	forged := map[string]string{"X-Forwarded-For": "192.0.2.1"}
	spoofLocal := map[string]string{"X-Forwarded-For": "127.0.0.1"}
	type proxyCase struct {
		name   string
		base   string
		via    bool // through the proxy
		client *http.Client
		hdr    map[string]string
		want   int
	}
	cases := []proxyCase{
		{"direct loopback", untrusting, false, local, nil, 201},
		{"direct loopback claiming a remote client", untrusting, false, local, forged, 403},
		{"untrusted proxy for a loopback client", untrusting, true, local, nil, 201},
		{"untrusted proxy for a client claiming to be remote", untrusting, true, local, forged, 403},
		{"trusted proxy for a loopback client", trusting, true, local, nil, 201},
		{"trusted proxy, client claims remote", trusting, true, local, forged, 403},
	}
	if ext := nonLoopbackAddr(); ext != "" {
		from := clientFrom(ext)
		cases = append(cases,
			proxyCase{"untrusted proxy for a network client", untrusting, true, from, nil, 403},
			proxyCase{"trusted proxy for a network client claiming loopback", trusting, true, from, spoofLocal, 403},
		)
	} else {
		t.Log("no non-loopback address on this host: the network-client cases are skipped")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.base
			if tc.via {
				addr := "127.0.0.1:0"
				if tc.client != local {
					addr = nonLoopbackAddr() + ":0"
				}
				target = proxyTo(t, tc.base, addr)
			}
			if got := post(t, tc.client, target+"/pub?id=outside", tc.hdr, "x"); got != tc.want {
				t.Fatalf("publish: %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCrossOriginRefused: a page of another site cannot change state
// (publish, post hooks, replay dead letters); the allow-list and the
// server's own origin (the demo page) can.
func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{CORSOrigins: []string{"https://app.example"}})
	self := base // Origin http://127.0.0.1:port is this server's own
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		want               int
	}{
		{"publish from evil", "POST", "/pub?id=x", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403},
		{"batch from evil", "POST", "/pub", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"}, 403},
		{"hooks from evil", "POST", "/hooks", map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403},
		{"replay from evil", "POST", "/queue/dead/replay", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site fetch metadata", "POST", "/pub?id=x", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"publish from the allow-list", "POST", "/pub?id=x", map[string]string{"Origin": "https://app.example"}, 201},
		{"publish from the demo page", "POST", "/pub?id=x", map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, 201},
		{"same origin without fetch metadata", "POST", "/pub?id=x", map[string]string{"Origin": self}, 201},
		{"no Origin (curl)", "POST", "/pub?id=x", nil, 201},
		{"subscribe from evil stays open (GET)", "HEAD", "/sub/x", map[string]string{"Origin": "https://evil.example"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, base+tc.path, tc.hdr, "x")
			if code != tc.want {
				t.Fatalf("%s %s: %d %v, want %d", tc.method, tc.path, code, body, tc.want)
			}
			if code == 403 && !strings.Contains(body["error"].(string), "cross-origin") {
				t.Fatalf("403 does not say why: %v", body)
			}
		})
	}
	t.Run("star allows any", func(t *testing.T) {
		_, base := startServer(t, Config{CORSOrigins: []string{"*"}})
		if code, body := do(t, "POST", base+"/pub?id=x", map[string]string{"Origin": "https://evil.example"}, "x"); code != 201 {
			t.Fatalf("with --cors-origin '*': %d %v", code, body)
		}
	})
	t.Run("bad origin in the allow-list", func(t *testing.T) {
		if _, err := New(Config{CORSOrigins: []string{"app.example/path"}, Logger: testLogger(t)}); err == nil || !strings.Contains(err.Error(), "--cors-origin") {
			t.Fatalf("New with a bad origin: %v", err)
		}
	})
}

// TestBearerCaseInsensitive: the auth scheme is case-insensitive (RFC 9110).
func TestBearerCaseInsensitive(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{PublishToken: "s3cret"})
	for _, auth := range []string{"Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR  s3cret "} {
		if code, body := do(t, "POST", base+"/pub?id=auth", map[string]string{"Authorization": auth}, "x"); code != 201 {
			t.Errorf("Authorization %q: %d %v, want 201", auth, code, body)
		}
	}
	for _, auth := range []string{"Bearers3cret", "Basic s3cret", "bearer"} {
		if code, _ := do(t, "POST", base+"/pub?id=auth", map[string]string{"Authorization": auth}, "x"); code != 401 {
			t.Errorf("Authorization %q: %d, want 401", auth, code)
		}
	}
}

// TestAdminListener: with SeparateAdmin the counters and dead letters are
// only on the admin listener; Shutdown ends both listeners.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{SeparateAdmin: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	al, _ := net.Listen("tcp", "127.0.0.1:0")
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- srv.Serve(pl, "", "") }()
	go func() { defer wg.Done(); errs <- srv.ServeAdmin(al) }()
	public, admin := "http://"+pl.Addr().String(), "http://"+al.Addr().String()
	for _, tc := range []struct {
		base, path string
		want       int
	}{
		{public, "/stats", 404},
		{public, "/metrics", 404},
		{public, "/queue/dead", 404},
		{public, "/queue/stats", 404},
		{public, "/healthz", 200},
		{admin, "/stats", 200},
		{admin, "/metrics", 200},
		{admin, "/healthz", 200},
		{admin, "/sub/x", 404},
		{admin, "/queue/stats", 503}, // no queue without Redis, but served here
	} {
		resp, err := http.Get(tc.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s%s: %d, want %d", tc.base, tc.path, resp.StatusCode, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	}
}

// TestMethodNotAllowed: a known path with a method it does not serve gets
// 405 with Allow and a JSON error; an unknown path 404.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"PUT", "/pub", 405, "POST, OPTIONS"},
		{"GET", "/pub", 405, "POST, OPTIONS"},
		{"DELETE", "/sub/x", 405, "GET, HEAD, OPTIONS"},
		{"POST", "/sub", 405, "GET, HEAD, OPTIONS"},
		{"POST", "/stats", 405, "GET, HEAD, OPTIONS"},
		{"GET", "/hooks", 405, "POST, OPTIONS"},
		{"PATCH", "/queue/dead/replay", 405, "POST, OPTIONS"},
		{"GET", "/nowhere", 404, ""},
		{"POST", "/nowhere", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("Allow") != tc.allow ||
			!strings.Contains(resp.Header.Get("Content-Type"), "json") || !strings.Contains(string(body), `"status"`) {
			t.Errorf("%s %s: %d Allow %q %s %s, want %d Allow %q and a JSON error", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body, tc.want, tc.allow)
		}
	}
}

// TestHeadSubscribe: HEAD /sub gets the stream's headers, no body, and is
// not a subscriber.
func TestHeadSubscribe(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv, base := startServer(t, Config{DisableDirectWrites: mode.disable})
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "HEAD /sub/x HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != sse.ContentType || resp.Header.Get("Transfer-Encoding") != "" {
				t.Fatalf("HEAD /sub/x: %d %v", resp.StatusCode, resp.Header)
			}
			// The connection stays usable and nothing follows the head: the
			// next answer is the next request's.
			_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			next, err := http.ReadResponse(br, nil)
			if err != nil || next.StatusCode != 200 {
				t.Fatalf("request after HEAD: %v %v", next, err)
			}
			if st := srv.Stats().Totals; st.Connections != 0 || st.Subscribers != 0 {
				t.Fatalf("HEAD counted as a subscriber: connections %d subscribers %d", st.Connections, st.Subscribers)
			}
		})
	}
}

// TestHTTP10Stream: an HTTP/1.0 subscriber gets the stream without chunked
// framing, ended by the connection's close.
func TestHTTP10Stream(t *testing.T) {
	t.Parallel()
	for _, mode := range writeModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv, base := startServer(t, Config{DisableDirectWrites: mode.disable})
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "GET /sub/old HTTP/1.0\r\n\r\n")
			br := bufio.NewReader(conn)
			status, _ := br.ReadString('\n')
			if !strings.HasPrefix(status, "HTTP/1.0 200") && !strings.HasPrefix(status, "HTTP/1.1 200") {
				t.Fatalf("status line %q", status)
			}
			var head []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if line == "\r\n" {
					break
				}
				head = append(head, strings.TrimSpace(line))
			}
			for _, h := range head {
				if strings.HasPrefix(strings.ToLower(h), "transfer-encoding") {
					t.Fatalf("HTTP/1.0 answer is chunked: %v", head)
				}
			}
			tstest.WaitFor(t, 5*time.Second, "the subscriber", func() bool { return srv.Stats().Totals.Subscribers == 1 })
			publish(t, base, "old", "hello")
			r := sse.NewReader(br, 0)
			for {
				ev, err := r.Next()
				if err != nil {
					t.Fatalf("stream: %v", err)
				}
				if ev.Event == "message" {
					if string(ev.Data) != "hello" {
						t.Fatalf("data %q: chunk framing in the body?", ev.Data)
					}
					break
				}
			}
		})
	}
}

// TestShutdownJitterSpread: every subscriber draws its own retry from
// [RetryHint, RetryHint + ShutdownJitter]: 200 subscribers do not come
// back at the same instant.
func TestShutdownJitterSpread(t *testing.T) {
	t.Parallel()
	const n = 200
	hint, window := time.Second, 2*time.Second
	srv, base := startServer(t, Config{RetryHint: hint, ShutdownJitter: window})
	retries := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_, _ = io.WriteString(conn, "GET /sub/herd HTTP/1.1\r\nHost: x\r\n\r\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return
			}
			r := sse.NewReader(bufio.NewReader(resp.Body), 0)
			for {
				ev, err := r.Next()
				if err != nil {
					return
				}
				if ev.Event == "darktime.reconnect" {
					retries <- ev.Retry
					return
				}
			}
		}()
	}
	tstest.WaitFor(t, 10*time.Second, "200 subscribers", func() bool { return srv.Stats().Totals.Subscribers == n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	wg.Wait()
	close(retries)
	distinct := map[int]bool{}
	lo, hi := 1<<30, 0
	for r := range retries {
		if r < int(hint.Milliseconds()) || r > int((hint+window).Milliseconds()) {
			t.Fatalf("retry %d ms outside [%v, %v]", r, hint, hint+window)
		}
		distinct[r] = true
		lo, hi = min(lo, r), max(hi, r)
	}
	// 200 uniform draws from 2001 values: ~190 distinct expected; the
	// range of 200 draws covers less than 90% of the window with
	// probability ~1e-7.
	if len(distinct) < 150 || hi-lo < int(window.Milliseconds())*9/10 {
		t.Fatalf("%d distinct retries spanning %d..%d ms: not spread over the %v window", len(distinct), lo, hi, window)
	}
}

// TestSubscribeBadIDs: an id that does not fit, or a cursor naming a
// channel that cannot exist, is a bad request, not a resume.
func TestSubscribeBadIDs(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, Config{})
	for _, tc := range []struct{ path, id string }{
		{"/sub/x", "9223372036854775808-0"},
		{"/sub/x", "18446744073709551616-0"},
		{"/sub/a/b", "a=1-0;b!x=1-0"},
		{"/sub/a/b", "a=1-0;" + strings.Repeat("c", 129) + "=1-0"},
	} {
		code, body := do(t, "GET", base+tc.path, map[string]string{"Last-Event-ID": tc.id}, "")
		if code != 400 {
			t.Errorf("GET %s Last-Event-ID %q: %d %v, want 400", tc.path, tc.id, code, body)
		}
	}
}

// TestConfigValidate: negative sizes and durations are refused with the
// flag named.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		flag string
	}{
		{Config{MaxBodyBytes: -1}, "--max-body"},
		{Config{HistoryLength: -5}, "--history-length"},
		{Config{HistoryAge: -time.Second}, "--history-age"},
		{Config{MaxQueueBytes: -1}, "--max-queue"},
		{Config{KeepAlive: -1}, "--keepalive"},
		{Config{ShutdownJitter: -1}, "--shutdown-jitter"},
	} {
		_, err := New(tc.cfg)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("New(%+v) = %v, want ErrConfig naming %s", tc.cfg, err, tc.flag)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
}
