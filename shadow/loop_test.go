package shadow

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// listenerAddr is the TCP address of a URL served by serve or startProxy.
func listenerAddr(t *testing.T, rawURL string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSetListenersRefusesSelf: a primary, candidate or baseline that is
// the proxy's own listener is refused, at startup and on every reload
// (through Reload and PUT config), and the old config stays.
func TestSetListenersRefusesSelf(t *testing.T) {
	t.Parallel()
	ref := startRef(t)
	p, proxyURL, admin := startProxy(t, Config{Primary: ref.url})
	self := listenerAddr(t, proxyURL)
	if err := p.SetListeners(self); err != nil {
		t.Fatalf("SetListeners with a primary elsewhere: %v", err)
	}
	port := strconv.Itoa(self.Port)
	cases := []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"primary", func(c *Config) { c.Primary = proxyURL }, "primary"},
		{"primary by name", func(c *Config) { c.Primary = "http://localhost:" + port }, "primary"},
		{"candidate", func(c *Config) { c.Candidate, c.Mode, c.Percent = proxyURL+"/", ModeMirror, 10 }, "candidate"},
		{"baseline", func(c *Config) { c.Baseline = "http://127.0.0.1:" + port }, "baseline"},
		{"unspecified target", func(c *Config) { c.Primary = "http://0.0.0.0:" + port }, "primary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := p.Config()
			c.edit(&cfg)
			err := p.Reload(cfg)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.key+": ") ||
				!strings.Contains(err.Error(), "this proxy's own listener") {
				t.Fatalf("Reload = %v, want the %s refused as the proxy's own listener", err, c.key)
			}
			if p.Config().Primary != ref.url {
				t.Fatal("a refused reload changed the config")
			}
		})
	}
	t.Run("PUT config", func(t *testing.T) {
		status, body := put(t, admin+"/_darktime/config", "primary: "+proxyURL+"\n")
		if status != http.StatusBadRequest || !strings.Contains(body["error"].(string), "own listener") {
			t.Fatalf("PUT a looping config: %d %v", status, body)
		}
	})
	t.Run("another port", func(t *testing.T) {
		cfg := p.Config()
		cfg.Baseline = "http://127.0.0.1:" + strconv.Itoa(self.Port+1)
		if err := p.Reload(cfg); err != nil {
			t.Fatalf("a baseline on another port refused: %v", err)
		}
	})
}

// TestSetListenersUnspecified: a proxy listening on 0.0.0.0 is reached
// through every local address; its own config cannot name any of them.
func TestSetListenersUnspecified(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("cannot listen on 0.0.0.0: %v", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p, err := New(Config{Primary: "http://127.0.0.1:" + strconv.Itoa(port), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	if err := p.SetListeners(l.Addr()); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("SetListeners(0.0.0.0:%d) with primary 127.0.0.1:%d = %v", port, port, err)
	}
}

// TestHopHeaderLoop: a loop the listener check cannot see (the primary is
// a relay that sends requests back to the proxy) is cut on the second
// pass: 508 Loop Detected JSON, counted, never forwarded again.
func TestHopHeaderLoop(t *testing.T) {
	t.Parallel()
	var back atomic.Pointer[httputil.ReverseProxy]
	var relayed atomic.Int64
	var mu sync.Mutex
	var hops []string
	relay := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relayed.Add(1)
		mu.Lock()
		hops = append(hops, r.Header.Values(HopHeader)...)
		mu.Unlock()
		back.Load().ServeHTTP(w, r)
	}))
	p, proxyURL, _ := startProxy(t, Config{Primary: relay})
	if err := p.SetListeners(listenerAddr(t, proxyURL)); err != nil {
		t.Fatal(err)
	}
	back.Store(httputil.NewSingleHostReverseProxy(mustURL(t, proxyURL)))

	resp, err := http.Get(proxyURL + "/sub/c")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("508 body: %v", err)
	}
	if resp.StatusCode != http.StatusLoopDetected || body["status"] != float64(http.StatusLoopDetected) ||
		!strings.Contains(body["error"].(string), "loop detected") {
		t.Fatalf("looping request: %d %v", resp.StatusCode, body)
	}
	if n := relayed.Load(); n != 1 {
		t.Errorf("the relay saw the request %d times, want 1 (the proxy forwarded it again)", n)
	}
	var m dto.Metric
	if err := p.m.loops.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("loops_total = %v, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hops) != 1 || hops[0] != p.InstanceID() {
		t.Errorf("the relay saw %s %q, want the proxy's id %q", HopHeader, hops, p.InstanceID())
	}
}

// TestHopHeaderOtherProxies: a request that went through other shadow
// proxies is forwarded, with this proxy's id added to theirs.
func TestHopHeaderOtherProxies(t *testing.T) {
	t.Parallel()
	got := make(chan []string, 1)
	primary := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values(HopHeader)
		w.WriteHeader(http.StatusNoContent)
	}))
	p, proxyURL, _ := startProxy(t, Config{Primary: primary})
	req, _ := http.NewRequest(http.MethodGet, proxyURL+"/x", nil)
	req.Header.Set(HopHeader, "aaaa, bbbb")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if h := strings.Join(<-got, ", "); h != "aaaa, bbbb, "+p.InstanceID() {
		t.Errorf("primary got %s %q", HopHeader, h)
	}
}

func put(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("PUT %s: %d, not JSON: %q", url, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}
