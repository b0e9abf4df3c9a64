package swarm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/darktime/darktime/server/auth"
)

// TokenConfig mints the {token} of the subscribe URL and headers: a fresh
// JWT at every connect, with sub = the client's index in the whole run
// ({client}, the same across reconnects and part splits), channels = the
// client's channels, exp = now + TTL. Servers that authorize subscriptions
// (darktime server --auth, or a third-party server's own JWTs) then see one
// user per client, and a load test spans token expiries: on a
// <notices>renew event the client reconnects at once with a new token and
// its Last-Event-ID.
type TokenConfig struct {
	// SecretEnv names the environment variable holding the HMAC secret;
	// KeyFile is a PEM private key (RS*, PS*, ES*, EdDSA) or a file holding
	// the HMAC secret. Exactly one, or Secret. Every process of the run
	// reads it itself (--procs workers inherit the environment; agents
	// need the variable or the file on their machine).
	SecretEnv string `json:",omitempty"`
	KeyFile   string `json:",omitempty"`
	// Secret is the HMAC secret itself, for library callers; it is never
	// written to results or sent to agents.
	Secret []byte `json:"-"`
	// Algorithm defaults to the key's (HS256, RS256, ES*, EdDSA).
	Algorithm string `json:",omitempty"`
	// TTL is each token's lifetime (1 h).
	TTL      time.Duration `json:",omitempty"`
	Issuer   string        `json:",omitempty"`
	Audience string        `json:",omitempty"`
	// Claims are extra claims in every token.
	Claims map[string]string `json:",omitempty"`
}

// tokenSentinel stands for {token} in an expanded subscribe URL until a
// connect puts a fresh token there (a JWT is URL-safe as it is).
const tokenSentinel = "DARKTIMETOKENPLACEHOLDER"

// signer builds the run's token signer (nil without Config.Token) and
// mints one token to prove the key works.
func (t *TokenConfig) signer() (*auth.Signer, error) {
	if t == nil {
		return nil, nil
	}
	sc := auth.SignerConfig{Algorithm: t.Algorithm, TTL: t.TTL, Issuer: t.Issuer, Audience: t.Audience}
	if len(t.Claims) > 0 {
		sc.Extra = map[string]any{}
		for k, v := range t.Claims {
			sc.Extra[k] = v
		}
	}
	var err error
	if t.Secret != nil && (t.SecretEnv != "" || t.KeyFile != "") {
		return nil, fmt.Errorf("%w: token: give one of Secret, SecretEnv and KeyFile", ErrConfig)
	}
	if t.Secret != nil {
		sc.Secret = t.Secret
	} else if sc.Secret, sc.PrivateKey, err = auth.LoadSignerKey(t.SecretEnv, t.KeyFile, nil); err != nil {
		return nil, fmt.Errorf("%w: token key: %v", ErrConfig, err)
	}
	s, err := auth.NewSigner(sc)
	if err != nil {
		return nil, fmt.Errorf("%w: token: %v", ErrConfig, err)
	}
	if _, err := s.Mint("0", []string{"probe"}); err != nil {
		return nil, fmt.Errorf("%w: token: %v", ErrConfig, err)
	}
	return s, nil
}

func (t *TokenConfig) echo(s *auth.Signer) *TokenEcho {
	if t == nil || s == nil {
		return nil
	}
	e := &TokenEcho{Algorithm: s.Algorithm(), TTLSeconds: s.TTL().Seconds(), Key: "config", Issuer: t.Issuer, Audience: t.Audience}
	switch {
	case t.SecretEnv != "":
		e.Key = "env:" + t.SecretEnv
	case t.KeyFile != "":
		e.Key = "file:" + t.KeyFile
	}
	return e
}

// mintToken signs a fresh token for the client.
func (c *client) mintToken() (string, error) {
	names := make([]string, len(c.chans))
	for i := range c.chans {
		names[i] = c.r.asg.names[c.chans[i].ch]
	}
	return c.r.signer.Mint(strconv.Itoa(c.uid), names)
}

// compileSubscribeHeaders compiles Profile.SubscribeHeaders.
func (c *compiledProfile) compileSubscribeHeaders() error {
	c.tokenInURL = c.subscribe.has(phToken)
	if n := strings.Count(c.Subscribe, "{"+phToken+"}"); n > 1 {
		return fmt.Errorf("%w: profile %q: subscribe URL %q has {token} %d times; once is enough", ErrTemplate, c.Name, c.Subscribe, n)
	}
	for _, h := range c.SubscribeHeaders {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("%w: profile %q: subscribe header %q: want \"Name: value\"", ErrTemplate, c.Name, h)
		}
		vt, err := parseTemplate("subscribe header", strings.TrimSpace(value), phClient, phToken)
		if err != nil {
			return err
		}
		c.tokenInHeaders = c.tokenInHeaders || vt.has(phToken)
		c.subHeaders = append(c.subHeaders, compiledHeader{name: name, value: vt})
	}
	return nil
}

// useToken checks {token} against whether a token is configured, and
// sends the token as a bearer header when no template places it.
func (c *compiledProfile) useToken(configured bool) error {
	placed := c.tokenInURL || c.tokenInHeaders
	switch {
	case placed && !configured:
		return fmt.Errorf("%w: profile %q uses {token} but no token is configured: give a key (--token-secret-env or --token-key-file)", ErrConfig, c.Name)
	case configured && !placed:
		vt, err := parseTemplate("subscribe header", "Bearer {token}", phToken)
		if err != nil {
			return err
		}
		c.subHeaders = append(c.subHeaders, compiledHeader{name: "Authorization", value: vt})
		c.tokenInHeaders = true
	}
	return nil
}

// appendSubscribeHeaders appends the profile's subscribe headers.
func (c *client) appendSubscribeHeaders(req []byte, token string) []byte {
	if len(c.r.prof.subHeaders) == 0 {
		return req
	}
	v := values{client: c.uid, token: token}
	for _, h := range c.r.prof.subHeaders {
		req = append(req, h.name...)
		req = append(req, ": "...)
		req = h.value.append(req, &v)
		req = append(req, "\r\n"...)
	}
	return req
}

// Error kinds of a refused subscribe (HTTP 401 and 403), counted apart
// from other statuses: a load test on private channels fails on them.
const (
	errAuthUnauthorized = "auth_unauthorized"
	errAuthForbidden    = "auth_forbidden"
)

// renewNotice is the notice type (after Profile.Notices) that ends a
// stream whose token expired (server.RenewEvent without the prefix).
const renewNotice = "renew"
