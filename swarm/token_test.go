package swarm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/server/auth"
)

var tokenSecret = []byte("swarm test secret, 32 bytes long!")

// privateNode starts a reference server on which every channel starting
// with prefix is private (a token whose channels claim lists it), the rest
// public.
func privateNode(t *testing.T, prefix string) *node {
	t.Helper()
	var rules auth.Rules
	for _, kv := range [][2]string{{prefix + "*", "private"}, {"*", "public"}} {
		r, err := auth.ParseRule(kv[0], kv[1])
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: tokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, server.Config{Authorizer: &auth.Authorizer{Rules: rules, Verifier: v}}, nodeOptions{})
}

// Short-lived tokens expire during the run: the server ends each stream
// with darktime.renew, the clients come back at once with fresh tokens and
// their Last-Event-ID, and nothing is lost or unexplained, on either
// side's ledger.
func TestRunPrivateChannelsTokenExpiry(t *testing.T) {
	tstest.Long(t, "tokens expire in whole seconds (exp)")
	t.Parallel()
	n := privateNode(t, "priv")
	cfg := quickConfig(t, n.url)
	cfg.ChannelPrefix = "priv"
	cfg.Distribution = Distribution{Kind: DistSeveral, PerClient: 2}
	cfg.Duration = 4 * time.Second
	cfg.DefaultRetry = 3 * time.Second // a renewal must not wait for it
	cfg.Token = &TokenConfig{Secret: tokenSecret, TTL: time.Second}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	st := n.srv.Stats()
	if res.Clients.Renewals == 0 || uint64(res.Clients.Renewals) != st.Auth.ExpiredStreams {
		t.Errorf("renewals %d, server expired streams %d: want the same, > 0", res.Clients.Renewals, st.Auth.ExpiredStreams)
	}
	if res.Errors[errAuthUnauthorized]+res.Errors[errAuthForbidden] != 0 || st.Auth.Unauthorized+st.Auth.Forbidden != 0 {
		t.Errorf("auth errors: swarm %v, server %+v", res.Errors, st.Auth)
	}
	if len(res.Attribution.Lost) != 0 || len(res.Attribution.Extra) != 0 || res.Attribution.Residual != 0 {
		t.Errorf("attribution %+v", res.Attribution)
	}
	if res.Clients.Failed != 0 || res.Clients.Drops != 0 {
		t.Errorf("clients %+v: a renewal is no drop", res.Clients)
	}
	if st.Balance != 0 {
		t.Errorf("server balance %d", st.Balance)
	}
	if e := res.Config.Token; e == nil || e.Algorithm != "HS256" || e.TTLSeconds != 1 || e.Key != "config" {
		t.Errorf("token echo %+v", e)
	}
	t.Logf("renewals %d, events %d, reconnects %d", res.Clients.Renewals, res.Events.Events, res.Clients.Reconnects)
}

// {token} in the URL (?token=, as a browser's EventSource must) and a
// subscribe header with {client}.
func TestRunTokenInURL(t *testing.T) {
	tstest.Long(t, "a swarm run (~3 s)")
	t.Parallel()
	n := privateNode(t, "urltok")
	cfg := quickConfig(t, n.url)
	cfg.ChannelPrefix = "urltok"
	p, _ := LookupProfile("darktime")
	p.Subscribe = "{target}/sub/{channels}?token={token}"
	p.SubscribeHeaders = []string{"X-Client: {client}"}
	cfg.Profile = p
	cfg.Token = &TokenConfig{Secret: tokenSecret}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if res.Clients.Connected != int64(cfg.Clients) || len(res.Errors) != 0 {
		t.Errorf("connected %d, errors %v", res.Clients.Connected, res.Errors)
	}
}

// Refused subscriptions are their own error kinds: a wrong key (401) and
// a token that does not allow the channels (403).
func TestRunAuthFailures(t *testing.T) {
	t.Parallel()
	forbidding := startNode(t, server.Config{Authorizer: server.AuthorizerFunc(func(token string, _ []string) (time.Time, error) {
		if token == "" {
			return time.Time{}, &auth.Error{Status: 401, Msg: "no token"}
		}
		return time.Time{}, &auth.Error{Status: 403, Msg: "not yours"}
	})}, nodeOptions{})
	cases := []struct {
		name, target, kind string
	}{
		{"wrong key", privateNode(t, "wrong").url, errAuthUnauthorized},
		{"forbidden", forbidding.url, errAuthForbidden},
	}
	for _, c := range cases {
		cfg := quickConfig(t, c.target)
		cfg.ChannelPrefix = "wrong"
		cfg.Clients = 10
		cfg.Duration = 300 * time.Millisecond
		cfg.Token = &TokenConfig{Secret: []byte("not the server's secret, 32 bytes")}
		// Every client refused: Run says so, with the result.
		res, err := Run(context.Background(), cfg)
		if res == nil || err == nil || !strings.Contains(err.Error(), c.kind) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Errors[c.kind] != int64(cfg.Clients) || res.Clients.Failed != int64(cfg.Clients) || res.Errors["status_4xx"] != 0 {
			t.Errorf("%s: errors %v, failed %d: want %d %s", c.name, res.Errors, res.Clients.Failed, cfg.Clients, c.kind)
		}
		if s := res.ErrorSamples[c.kind]; strings.Contains(s, "eyJ") {
			t.Errorf("%s: the sample shows a token: %q", c.name, s)
		}
	}
}

func TestTokenConfigErrors(t *testing.T) {
	t.Parallel()
	withURL := func() Profile {
		p, _ := LookupProfile("darktime")
		p.Subscribe = "{target}/sub/{channels}?token={token}"
		return p
	}
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"{token} without a key", Config{Profile: withURL()}, ErrConfig},
		{"unset env", Config{Token: &TokenConfig{SecretEnv: "DARKTIME_TEST_UNSET_SECRET"}}, ErrConfig},
		{"missing key file", Config{Token: &TokenConfig{KeyFile: "/nonexistent/key.pem"}}, ErrConfig},
		{"alg of another family", Config{Token: &TokenConfig{Secret: tokenSecret, Algorithm: "RS256"}}, ErrConfig},
		{"reserved claim", Config{Token: &TokenConfig{Secret: tokenSecret, Claims: map[string]string{"sub": "x"}}}, ErrConfig},
		{"bad subscribe header", Config{Profile: func() Profile {
			p, _ := LookupProfile("darktime")
			p.SubscribeHeaders = []string{"no colon"}
			return p
		}()}, ErrTemplate},
		{"unknown placeholder in a header", Config{Profile: func() Profile {
			p, _ := LookupProfile("darktime")
			p.SubscribeHeaders = []string{"X: {seq}"}
			return p
		}()}, ErrTemplate},
	}
	for _, c := range cases {
		if err := Check(c.cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := Check(Config{Token: &TokenConfig{Secret: tokenSecret}}); err != nil {
		t.Errorf("a token with the default profile: %v", err)
	}
}
