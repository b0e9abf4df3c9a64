package shadow

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/internal/sse"
)

const testAdminToken = "0123456789abcdef-admin"

// TestAdminTokenOpens: with a token, the admin API answers the right one
// (the scheme in any case); healthz needs none. The refusals (no token,
// a wrong one, another scheme) are in the bad-input catalogue.
func TestAdminTokenOpens(t *testing.T) {
	t.Parallel()
	primary := startRef(t)
	cfg := Config{Primary: primary.url, AdminToken: testAdminToken}
	_, _, admin := startProxy(t, cfg)
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"ledger with the token", "GET", "/_darktime/ledger", "Bearer " + testAdminToken, 200},
		{"lower-case scheme", "GET", "/_darktime/config", "bearer " + testAdminToken, 200},
		{"upper-case scheme", "GET", "/metrics", "BEARER " + testAdminToken, 200},
		{"percent with the token", "POST", "/_darktime/percent?percent=0", "Bearer " + testAdminToken, 200},
		{"healthz without a token", "GET", "/_darktime/healthz", "", 200},
		{"healthz with a wrong token", "GET", "/_darktime/healthz", "Bearer nope", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := adminDo(t, tc.method, admin+tc.path, tc.auth, "")
			if status != tc.status {
				t.Fatalf("%s %s: %d, want %d: %s", tc.method, tc.path, status, tc.status, body)
			}
		})
	}
	// The token is never shown, and a config PUT cannot change it.
	_, body := adminDo(t, "GET", admin+"/_darktime/config", "Bearer "+testAdminToken, "")
	if strings.Contains(body, testAdminToken) {
		t.Fatalf("GET /_darktime/config shows the token: %s", body)
	}
	if status, body := adminDo(t, "PUT", admin+"/_darktime/config", "Bearer "+testAdminToken, "primary: "+primary.url+"\n"); status != 200 {
		t.Fatalf("PUT config: %d %s", status, body)
	}
	if status, _ := adminDo(t, "GET", admin+"/_darktime/ledger", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("after a config PUT the admin API answers %d without a token, want 401", status)
	}
	if status, body := adminDo(t, "PUT", admin+"/_darktime/config", "Bearer "+testAdminToken, "primary: "+primary.url+"\nadmin_token: x\n"); status != 400 {
		t.Fatalf("PUT config with admin_token: %d, want 400 (not a config key): %s", status, body)
	}
}

func adminDo(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestAdminListenerNeedsToken: darktime shadow (shadow.Listen) refuses an
// admin listener beyond loopback without a token, before it listens.
func TestAdminListenerNeedsToken(t *testing.T) {
	t.Parallel()
	type tc struct {
		admin, token string
		refused      bool
	}
	cases := []tc{
		{"127.0.0.1:0", "", false},
		{"[::1]:0", "", false},
		{"localhost:0", "", false},
		{"127.0.0.1:0", testAdminToken, false},
		{"0.0.0.0:0", "", true},
		{"[::]:0", "", true},
		{":0", "", true},
		{"0.0.0.0:0", testAdminToken, false},
	}
	if ip := hostAddress(); ip != "" {
		cases = append(cases, tc{net.JoinHostPort(ip, "0"), "", true}, tc{net.JoinHostPort(ip, "0"), testAdminToken, false})
	}
	for _, c := range cases {
		t.Run(c.admin+" token="+fmt.Sprint(c.token != ""), func(t *testing.T) {
			t.Parallel()
			if c.admin == "[::1]:0" && !canListen("[::1]:0") {
				t.Skip("no IPv6 loopback here")
			}
			p, err := New(Config{Primary: "http://127.0.0.1:1", Listen: "127.0.0.1:0", Admin: c.admin, AdminToken: c.token})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.Background()) }()
			fe, err := Listen(p, ServeOptions{})
			if c.refused {
				if !errors.Is(err, ErrAdminTokenRequired) || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "--admin-token") {
					t.Fatalf("Listen with admin %s and no token: %v; want a refusal naming --admin-token", c.admin, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen with admin %s: %v", c.admin, err)
			}
			if err := fe.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// hostAddress is one of this host's addresses that is not loopback, or "".
func hostAddress() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && canListen(net.JoinHostPort(ipn.IP.String(), "0")) {
			return ipn.IP.String()
		}
	}
	return ""
}

func canListen(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// seenRequest is one request a recording backend got.
type seenRequest struct {
	path string
	h    http.Header
}

// headerRecorder is a backend that records every request's headers; /sub/...
// answers an event stream held open until the client leaves.
func headerRecorder(t *testing.T) (string, <-chan seenRequest) {
	t.Helper()
	c := make(chan seenRequest, 64)
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c <- seenRequest{r.URL.Path, r.Header.Clone()}
		if strings.HasPrefix(r.URL.Path, "/sub/") {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, ": hello\n\n")
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	return url, c
}

func nextSeen(t *testing.T, c <-chan seenRequest, who, path string) http.Header {
	t.Helper()
	select {
	case s := <-c:
		if s.path != path {
			t.Fatalf("%s got a request for %s, want %s", who, s.path, path)
		}
		return s.h
	case <-time.After(5 * time.Second):
		t.Fatalf("%s got no request for %s", who, path)
	}
	return nil
}

// TestCandidateHeaders: the header rules (candidate_headers, top level and
// per route) decide what the candidate sees of the user's headers — on
// mirrored requests, mirrored streams and diverted requests — while the
// primary gets the user's own.
func TestCandidateHeaders(t *testing.T) {
	t.Parallel()
	primary, atPrimary := headerRecorder(t)
	candidate, atCandidate := headerRecorder(t)
	cfg, err := LoadConfig([]byte(`
primary: ` + primary + `
candidate: ` + candidate + `
mode: mirror
percent: 100
mirror_unsafe: true
candidate_headers: {strip: [X-Secret]}
routes:
  - path: /pub
    mirror_unsafe: true
    candidate_headers:
      strip: [Authorization, Cookie]
      set: {Authorization: "Bearer candidate-token"}
  - path: /sub/
    candidate_headers: {strip: [Cookie]}
  - path: /div/
    mode: divert
    candidate_headers: {forward: [X-Keep], set: {X-Route: div}}
  - path: /all/
    candidate_headers: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, url, _ := startProxy(t, cfg)
	user := map[string]string{"Authorization": "Bearer user-token", "Cookie": "session=user", "X-Secret": "s", "X-Keep": "k", "X-Forwarded-Proto": "https"}
	absent := ""
	for _, tc := range []struct {
		name, method, path string
		primarySees        bool // false: diverted, the primary sees nothing
		want               map[string]string
	}{
		{"publish: credentials replaced", "POST", "/pub", true,
			map[string]string{"Authorization": "Bearer candidate-token", "Cookie": absent, "X-Secret": "s", "X-Keep": "k", "X-Forwarded-Proto": "http"}},
		{"stream: cookie stripped", "GET", "/sub/a", true,
			map[string]string{"Authorization": "Bearer user-token", "Cookie": absent, "X-Secret": "s", "X-Forwarded-Proto": "http"}},
		{"diverted: allow-list", "GET", "/div/x", false,
			map[string]string{"Authorization": absent, "Cookie": absent, "X-Secret": absent, "X-Keep": "k", "X-Route": "div", "X-Forwarded-For": absent, "X-Darktime-Shadow": "candidate"}},
		{"no route: the top-level rules", "GET", "/other", true,
			map[string]string{"Authorization": "Bearer user-token", "Cookie": "session=user", "X-Secret": absent, "X-Keep": "k"}},
		{"a route's {} forwards everything", "GET", "/all/x", true,
			map[string]string{"Authorization": "Bearer user-token", "Cookie": "session=user", "X-Secret": "s", "X-Darktime-Shadow": "candidate", "X-Forwarded-For": "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.method == "GET" {
				req.Body, req.ContentLength = nil, 0
			}
			for k, v := range user {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tc.primarySees {
				h := nextSeen(t, atPrimary, "primary", tc.path)
				for _, k := range []string{"Authorization", "Cookie", "X-Secret"} {
					if h.Get(k) != user[k] {
						t.Errorf("primary saw %s %q, want the user's %q", k, h.Get(k), user[k])
					}
				}
				if h.Get("X-Forwarded-Proto") != "http" {
					t.Errorf("primary saw X-Forwarded-Proto %q, want http", h.Get("X-Forwarded-Proto"))
				}
			}
			h := nextSeen(t, atCandidate, "candidate", tc.path)
			for k, want := range tc.want {
				if got := strings.Join(h.Values(k), ", "); got != want {
					t.Errorf("candidate saw %s %q, want %q", k, got, want)
				}
			}
		})
	}
	select {
	case s := <-atPrimary:
		t.Errorf("the primary saw a diverted request: %s", s.path)
	default:
	}
}

// TestCandidateHeadersRefused: rules that cannot work are refused at load,
// with the line.
func TestCandidateHeadersRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rules, says string }{
		{"{strip: [X-Darktime-Shadow]}", "proxy's own mark"},
		{"{forward: [X-Darktime-Hop]}", "proxy's own mark"},
		{"{set: {Host: evil.example}}", "cannot be set"},
		{"{set: {Transfer-Encoding: chunked}}", "cannot be set"},
		{`{strip: ["Bad Name"]}`, "not a header name"},
		{"{strip: [Cookie], drop: [X]}", "drop"},
		{"{set: {X-A: [1, 2]}}", "line 3"},
	} {
		t.Run(tc.rules, func(t *testing.T) {
			_, err := LoadConfig([]byte("primary: http://127.0.0.1:1\nroutes:\n  - {path: /a, candidate_headers: " + tc.rules + "}\n"))
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("rules %s: %v; want an error saying %q", tc.rules, err, tc.says)
			}
		})
	}
}

// TestIPKeyFromTrustedProxy: the ip key is the client a trusted proxy
// forwarded for; a client that is not a trusted proxy cannot choose its
// bucket with X-Forwarded-For (the bucket is its own address's).
func TestIPKeyFromTrustedProxy(t *testing.T) {
	t.Parallel()
	// A salt that leaves 127.0.0.1 (every test client) out at 50%, and
	// two forwarded clients: one in, one out.
	salt, in, out := "", "", ""
	for i := 0; salt == ""; i++ {
		if s := fmt.Sprintf("s%d", i); Bucket(s, "127.0.0.1") >= 5000 {
			salt = s
		}
	}
	for i := 1; in == "" || out == ""; i++ {
		ip := fmt.Sprintf("192.0.2.%d", i)
		if Bucket(salt, ip) < 5000 {
			in = ip
		} else {
			out = ip
		}
	}
	for _, tc := range []struct {
		name    string
		trusted []string
		xff     string
		want    string // "candidate" (selected, diverted) or "primary"
	}{
		{"trusted proxy forwards a selected user", []string{"127.0.0.1"}, in, "candidate"},
		{"trusted proxy forwards another user", []string{"127.0.0.1"}, out, "primary"},
		{"trusted proxy, spoofed left part", []string{"127.0.0.0/8"}, out + ", " + in, "candidate"},
		{"untrusted client's header ignored", nil, in, "primary"},
		{"untrusted client (others trusted) ignored", []string{"10.0.0.0/8"}, in, "primary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			primary, atPrimary := headerRecorder(t)
			candidate, atCandidate := headerRecorder(t)
			_, url, _ := startProxy(t, Config{Primary: primary, Candidate: candidate, Mode: ModeDivert, Percent: 50,
				Key: KeyConfig{From: KeyIP, Salt: salt}, TrustedProxies: tc.trusted})
			req, _ := http.NewRequest("GET", url+"/x", nil)
			req.Header.Set("X-Forwarded-For", tc.xff)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// Exactly one backend got it: the proxy answered after it did.
			got := ""
			select {
			case <-atPrimary:
				got = "primary"
			case <-atCandidate:
				got = "candidate"
			default:
				t.Fatal("neither backend got the request")
			}
			if got != tc.want {
				t.Fatalf("X-Forwarded-For %q (trusted %v): served by the %s, want the %s", tc.xff, tc.trusted, got, tc.want)
			}
		})
	}
}

// selfSigned returns a PEM certificate and key for 127.0.0.1, and a pool
// that trusts it.
func selfSigned(t *testing.T) (cert, key []byte, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "darktime test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

// TestTLSHTTP2Streams: with a certificate the proxy serves HTTPS with
// HTTP/2; ten event streams share one connection, every one is mirrored
// and gets a publish sent over the same connection.
func TestTLSHTTP2Streams(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	cert, key, pool := selfSigned(t)
	reg := prometheus.NewRegistry()
	p, err := New(Config{Primary: primary.url, Candidate: candidate.url, Mode: ModeMirror, Percent: 100, MirrorUnsafe: true,
		Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", Logger: testLogger(t), Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(p, ServeOptions{TLSCert: cert, TLSKey: []byte("not a key")}); err == nil || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Listen with a bad key: %v, want bad input", err)
	}
	fe, err := Listen(p, ServeOptions{TLSCert: cert, TLSKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := fe.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	if !strings.HasPrefix(fe.URL(), "https://") || !strings.HasPrefix(fe.AdminURL(), "https://") {
		t.Fatalf("URL %s, admin %s: want https for both", fe.URL(), fe.AdminURL())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	// The admin API speaks TLS too: its token does not cross in clear.
	if resp, err := client.Get(fe.AdminURL() + "/_darktime/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin over TLS: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(fe.AdminURL(), "https://") + "/_darktime/healthz"); err == nil && resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatalf("the admin API answered plain HTTP with TLS configured")
	}
	var mu sync.Mutex
	conns := map[string]bool{}
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		mu.Lock()
		conns[i.Conn.LocalAddr().String()] = true
		mu.Unlock()
	}}
	const n = 10
	events := make(chan string, n)
	ctx, cancel := context.WithCancel(httptrace.WithClientTrace(context.Background(), trace))
	defer cancel()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(cancel)
	for i := range n {
		req, _ := http.NewRequestWithContext(ctx, "GET", fe.URL()+"/sub/tls", nil)
		req.Header.Set("Cookie", fmt.Sprintf("uid=u%d", i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			resp.Body.Close()
			t.Fatalf("stream %d: %s %d, want HTTP/2 200", i, resp.Proto, resp.StatusCode)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			r := sse.NewReader(bufio.NewReader(resp.Body), 0)
			for {
				ev, err := r.Next()
				if err != nil {
					return
				}
				if !strings.HasPrefix(ev.Event, "darktime.") {
					events <- string(ev.Data)
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "10 mirrored streams", func() bool {
		return targetOf(p.Report(), "candidate").Streams.Active == n
	})
	preq, _ := http.NewRequestWithContext(ctx, "POST", fe.URL()+"/pub?id=tls", strings.NewReader("over h2"))
	presp, err := client.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusCreated || presp.ProtoMajor != 2 {
		t.Fatalf("publish: %s %d", presp.Proto, presp.StatusCode)
	}
	for i := range n {
		select {
		case data := <-events:
			if data != "over h2" {
				t.Fatalf("stream got %q", data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d streams got the event", i, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("%d connections for %d streams and a publish, want 1 (HTTP/2): %v", len(conns), n, conns)
	}
}
