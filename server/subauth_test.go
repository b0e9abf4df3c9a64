package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server/auth"
)

var authSecret = []byte("test secret: 32 bytes or longer!!")

// authServer starts a server whose user:{sub} and private:* channels are
// private (HMAC tokens), everything else public.
func authServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	rules := mustAuthRules(t, "user:{sub}", "private", "private:*", "private", "*", "public")
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: authSecret})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Authorizer = &auth.Authorizer{Rules: rules, Verifier: v}
	return startServer(t, cfg)
}

func mustAuthRules(t *testing.T, kv ...string) auth.Rules {
	t.Helper()
	var rs auth.Rules
	for i := 0; i < len(kv); i += 2 {
		r, err := auth.ParseRule(kv[i], kv[i+1])
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// token signs claims with the test secret. exp is whole seconds (the JWT
// library's precision).
func token(t *testing.T, sub string, exp time.Time, channels ...string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "exp": exp.Unix()}
	if len(channels) > 0 {
		c["channels"] = channels
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(authSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawGet sends a GET and returns the status, headers and body (or the
// first bytes of a stream).
func rawGet(t *testing.T, url string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, resp.Header, ""
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestSubscribeAuth(t *testing.T) {
	srv, base := authServer(t, Config{})
	hour := time.Now().Add(time.Hour)
	tok42 := token(t, "42", hour)
	admin := token(t, "admin", hour, "private:*", "user:*")
	cases := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
	}{
		{"public, no token", "/sub/demo", nil, 200},
		{"public, a bad token is not looked at", "/sub/demo", map[string]string{"Authorization": "Bearer junk"}, 200},
		{"private, no token", "/sub/user:42", nil, 401},
		{"private, bad token", "/sub/user:42", map[string]string{"Authorization": "Bearer junk"}, 401},
		{"own channel by {sub}, Bearer", "/sub/user:42", map[string]string{"Authorization": "Bearer " + tok42}, 200},
		{"lower-case bearer", "/sub/user:42", map[string]string{"Authorization": "bearer " + tok42}, 200},
		{"?token=", "/sub/user:42?token=" + tok42, nil, 200},
		{"someone else's channel", "/sub/user:43", map[string]string{"Authorization": "Bearer " + tok42}, 403},
		{"channels claim glob", "/sub/private:reports", map[string]string{"Authorization": "Bearer " + admin}, 200},
		{"channels claim glob, other user", "/sub/user:43", map[string]string{"Authorization": "Bearer " + admin}, 200},
		{"not in the claim", "/sub/private:x", map[string]string{"Authorization": "Bearer " + tok42}, 403},
		{"expired", "/sub/user:42", map[string]string{"Authorization": "Bearer " + token(t, "42", time.Now().Add(-time.Minute))}, 401},
		{"other scheme", "/sub/user:42", map[string]string{"Authorization": "Basic " + tok42}, 401},
		{"multi-channel, all allowed", "/sub/demo/user:42?x=1", map[string]string{"Authorization": "Bearer " + tok42}, 200},
		{"multi-channel, one forbidden", "/sub?channel=demo,user:42,user:43", map[string]string{"Authorization": "Bearer " + tok42}, 403},
	}
	for _, c := range cases {
		status, h, body := rawGet(t, base+c.path, c.hdr)
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, status, c.status, body)
			continue
		}
		if status == 200 {
			continue
		}
		var eb struct {
			Error  string `json:"error"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Status != status || eb.Error == "" {
			t.Errorf("%s: body %q is not the JSON error", c.name, body)
		}
		if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", c.name, h.Get("WWW-Authenticate"))
		}
		if strings.Contains(body, tok42) || strings.Contains(body, admin) {
			t.Errorf("%s: the error repeats the token", c.name)
		}
	}
	st := srv.Stats()
	if st.Auth == nil || st.Auth.Unauthorized != 4 || st.Auth.Forbidden != 3 {
		t.Errorf("auth stats %+v", st.Auth)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"darktime_server_auth_unauthorized_total 4", "darktime_server_auth_forbidden_total 3", "darktime_server_auth_expired_streams_total 0"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// A refused resume writes nothing: no history, no subscription, and the
// private channel never becomes known to the node.
func TestSubscribeAuthNothingLeaks(t *testing.T) {
	srv, base := authServer(t, Config{})
	for i := range 3 {
		publish(t, base, "user:42", "secret "+string(rune('a'+i)))
	}
	tok42 := token(t, "42", time.Now().Add(time.Hour))
	cases := []struct {
		name, path string
		hdr        map[string]string
		status     int
	}{
		{"resume without a token", "/sub/user:42", map[string]string{"Last-Event-ID": "0-0"}, 401},
		{"resume in the query without a token", "/sub/user:42?last_event_id=0-0", nil, 401},
		{"cursor with a forbidden channel", "/sub/user:42/user:43", map[string]string{"Last-Event-ID": "user:42=0-0;user:43=0-0", "Authorization": "Bearer " + tok42}, 403},
	}
	for _, c := range cases {
		status, h, body := rawGet(t, base+c.path, c.hdr)
		if status != c.status || strings.Contains(body, "secret") || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %q", c.name, status, h.Get("Content-Type"), body)
		}
	}
	st := srv.Stats()
	if st.Totals.Connections != 0 || st.Totals.HistoryReplayed != 0 || len(st.Channels) != 0 {
		t.Errorf("a refused subscription left traces: connections %d, replayed %d, channels %v", st.Totals.Connections, st.Totals.HistoryReplayed, st.Channels)
	}
	// A cursor naming a private channel the request does not ask for
	// replays only the requested (public) channels.
	pub := subscribe(t, base+"/sub/demo/thread:1", map[string]string{"Last-Event-ID": "demo=0-0;thread:1=0-0;user:42=0-0"})
	publish(t, base, "demo", "marker")
	for {
		ev := pub.next(5 * time.Second)
		if strings.Contains(string(ev.Data), "secret") {
			t.Fatalf("a public stream replayed %q", ev.Data)
		}
		if string(ev.Data) == "marker" {
			break
		}
	}
	// With the token the history is there.
	s := subscribe(t, base+"/sub/user:42", map[string]string{"Last-Event-ID": "0-0", "Authorization": "Bearer " + tok42})
	for i := range 3 {
		if ev := s.next(5 * time.Second); string(ev.Data) != "secret "+string(rune('a'+i)) {
			t.Fatalf("history event %d: %q", i, ev.Data)
		}
	}
}

// A token that expires mid-stream ends the stream with darktime.renew
// after what was queued, counted, with the node's ledger balanced; the
// client resumes with a fresh token and loses nothing. Both writers: the
// direct (hijacked) one and the portable one.
func TestSubscribeTokenExpiresMidStream(t *testing.T) {
	tstest.Long(t, "tokens expire in whole seconds (exp)")
	for _, portable := range []bool{false, true} {
		name := "direct"
		if portable {
			name = "portable"
		}
		t.Run(name, func(t *testing.T) {
			srv, base := authServer(t, Config{DisableDirectWrites: portable})
			s := subscribe(t, base+"/sub/demo/user:7", map[string]string{"Authorization": "Bearer " + token(t, "7", time.Now().Add(2*time.Second))})
			var got []string
			var last string
			sent := 0
			// Publish until the stream ends: some events before the
			// expiry, maybe some during the goodbye.
			var renew *sseEventCopy
			deadline := time.Now().Add(10 * time.Second)
			for renew == nil && time.Now().Before(deadline) {
				publish(t, base, "user:7", "e"+itoa(sent))
				sent++
				for drained := false; !drained; {
					select {
					case ev, ok := <-s.events:
						if !ok {
							t.Fatalf("stream ended without darktime.renew: %v", <-s.err)
						}
						if ev.Event == RenewEvent {
							renew = &sseEventCopy{Data: string(ev.Data)}
							drained = true
							continue
						}
						got = append(got, string(ev.Data))
						last = ev.ID
					case <-time.After(20 * time.Millisecond):
						drained = true
					}
				}
			}
			if renew == nil {
				t.Fatal("no darktime.renew within 10s")
			}
			var data struct {
				Reason   string   `json:"reason"`
				Channels []string `json:"channels"`
			}
			if err := json.Unmarshal([]byte(renew.Data), &data); err != nil || data.Reason != "token_expired" || len(data.Channels) != 2 {
				t.Errorf("renew data %q", renew.Data)
			}
			if rest := s.ended(5 * time.Second); len(rest) != 0 {
				t.Errorf("events after the renew notice: %v", rest)
			}
			tstest.WaitFor(t, 5*time.Second, "the stream to be gone", func() bool { return srv.Stats().Totals.Subscribers == 0 })
			st := srv.Stats()
			if st.Auth.ExpiredStreams != 1 || st.Totals.DisconnectsByReason[reasonTokenExpired] != 1 {
				t.Errorf("auth %+v, disconnects %v", st.Auth, st.Totals.DisconnectsByReason)
			}
			if st.Balance != 0 || st.Totals.FannedOut != st.Totals.Written+st.Totals.Dropped {
				t.Errorf("ledger: fanned_out %d written %d dropped %d queued %d balance %d",
					st.Totals.FannedOut, st.Totals.Written, st.Totals.Dropped, st.Totals.Queued, st.Balance)
			}
			// Resume with a fresh token: the rest, nothing twice.
			publish(t, base, "user:7", "after")
			s2 := subscribe(t, base+"/sub/demo/user:7", map[string]string{"Authorization": "Bearer " + token(t, "7", time.Now().Add(time.Hour)), "Last-Event-ID": last})
			for i := len(got); i < sent; i++ {
				if ev := s2.next(5 * time.Second); string(ev.Data) != "e"+itoa(i) {
					t.Fatalf("resumed event: %q, want e%d", ev.Data, i)
				}
			}
			if ev := s2.next(5 * time.Second); string(ev.Data) != "after" {
				t.Fatalf("resumed event: %q, want after", ev.Data)
			}
			// A reconnect with the old, expired token is refused.
			if status, _, _ := rawGet(t, base+"/sub/user:7?token="+token(t, "7", time.Now().Add(-time.Second)), nil); status != 401 {
				t.Errorf("expired token: %d", status)
			}
		})
	}
}

type sseEventCopy struct{ Data string }

func itoa(i int) string { return strconv.Itoa(i) }

// A public-key config end to end: EdDSA, key_file, loaded from YAML.
func TestSubscribeAuthPublicKeyConfig(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "auth.yaml")
	if err := os.WriteFile(cfgFile, []byte("channels:\n  - match: \"user:{sub}\"\n    access: private\n  - match: \"*\"\n    access: public\njwt:\n  key_file: pub.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.LoadFile(cfgFile, auth.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, base := startServer(t, Config{Authorizer: a})
	signer, err := auth.NewSigner(auth.SignerConfig{PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Mint("42", nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := token(t, "42", time.Now().Add(time.Hour)) // HS256: refused by an EdDSA config
	for path, want := range map[string]int{"/sub/user:42?token=" + tok: 200, "/sub/user:42?token=" + hs: 401, "/sub/user:43?token=" + tok: 403} {
		if status, _, body := rawGet(t, base+path, nil); status != want {
			t.Errorf("%s: %d, want %d (%s)", path[:14], status, want, body)
		}
	}
}

// Preflight lets browsers send Authorization on subscribe.
func TestSubscribeAuthPreflight(t *testing.T) {
	_, base := authServer(t, Config{CORSOrigins: []string{"https://app.example"}})
	req, _ := http.NewRequest("OPTIONS", base+"/sub/user:42", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight allows %q", resp.Header.Get("Access-Control-Allow-Headers"))
	}
	// A refused subscription still carries the CORS headers, so the page
	// can read the JSON error.
	req, _ = http.NewRequest("GET", base+"/sub/user:42", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("401 answer: %d, allow-origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// A stream whose token expires while events are still queued for it (the
// client does not read) is counted like any server-side cut: what cannot
// be written is dropped, and the node's ledger stays balanced.
func TestSubscribeTokenExpiresWithQueuedEvents(t *testing.T) {
	tstest.Long(t, "tokens expire in whole seconds (exp)")
	srv, base := authServer(t, Config{WriteTimeout: 4 * time.Second, MaxQueueBytes: 64 << 20})
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tok := token(t, "7", time.Now().Add(2*time.Second))
	if _, err := conn.Write([]byte("GET /sub/user:7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, 5*time.Second, "the subscriber", func() bool { return srv.Stats().Totals.Subscribers == 1 })
	body := strings.Repeat("x", 60<<10)
	for srv.Stats().Totals.Queued == 0 {
		msgs := make([]PublishMessage, 20)
		for i := range msgs {
			msgs[i] = PublishMessage{Channel: "user:7", Data: []byte(body)}
		}
		if _, err := srv.Publish(t.Context(), msgs); err != nil {
			t.Fatal(err)
		}
		tstest.WaitFor(t, 5*time.Second, "the fan-out", func() bool {
			st := srv.Stats()
			return st.Totals.FannedOut == st.Totals.Received
		})
	}
	tstest.WaitFor(t, 10*time.Second, "the expired stream to end", func() bool { return srv.Stats().Totals.Subscribers == 0 })
	st := srv.Stats()
	if st.Auth.ExpiredStreams != 1 {
		t.Errorf("expired streams %d", st.Auth.ExpiredStreams)
	}
	t.Logf("dropped %v, disconnects %v", st.Totals.DroppedByReason, st.Totals.DisconnectsByReason)
	if st.Totals.Dropped == 0 || st.Balance != 0 || st.Totals.FannedOut != st.Totals.Written+st.Totals.Dropped {
		t.Errorf("ledger: fanned_out %d written %d dropped %v queued %d balance %d",
			st.Totals.FannedOut, st.Totals.Written, st.Totals.DroppedByReason, st.Totals.Queued, st.Balance)
	}
}

// The darktime.renew notice carries the stream's position as its id, so
// a client that received no event on the stream still resumes exactly:
// nothing published before the stream is replayed, nothing after it is
// missed.
func TestRenewNoticeCarriesPosition(t *testing.T) {
	tstest.Long(t, "tokens expire in whole seconds (exp)")
	cases := []struct {
		name, path string
		channels   []string
	}{
		{"one channel", "/sub/private:a", []string{"private:a"}},
		{"several channels, one empty", "/sub/private:b/private:c", []string{"private:b", "private:c"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, base := authServer(t, Config{})
			old := publish(t, base, c.channels[0], "old")
			tok := func(d time.Duration) string { return token(t, "u", time.Now().Add(d), "private:*") }
			s := subscribe(t, base+c.path, map[string]string{"Authorization": "Bearer " + tok(2*time.Second)})
			ev := s.next(5 * time.Second)
			if ev.Event != RenewEvent {
				t.Fatalf("first event %q %q, want the renew notice", ev.Event, ev.Data)
			}
			want := old
			if len(c.channels) > 1 {
				want = c.channels[0] + "=" + old + ";" + c.channels[1] + "=0-0"
			}
			if ev.ID != want {
				t.Errorf("renew id %q, want %q", ev.ID, want)
			}
			s.ended(5 * time.Second)
			for _, ch := range c.channels {
				publish(t, base, ch, "new "+ch)
			}
			s2 := subscribe(t, base+c.path, map[string]string{"Authorization": "Bearer " + tok(time.Hour), "Last-Event-ID": ev.ID})
			got := map[string]bool{}
			for range c.channels {
				got[string(s2.next(5*time.Second).Data)] = true
			}
			for _, ch := range c.channels {
				if !got["new "+ch] {
					t.Errorf("resumed: %v, want every new event and not old", got)
				}
			}
		})
	}
}
