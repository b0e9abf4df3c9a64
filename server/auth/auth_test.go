package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, channel, sub string
		match, matchSub       bool
	}{
		{"demo", "demo", "", true, true},
		{"demo", "demo2", "", false, false},
		{"*", "anything:at.all", "", true, true},
		{"user:*", "user:42", "", true, true},
		{"user:*", "user:", "", true, true},
		{"user:*", "users:42", "", false, false},
		{"*:private", "a:private", "", true, true},
		{"a*b*c", "aXbYc", "", true, true},
		{"a*b*c", "aXbY", "", false, false},
		{"a**b", "ab", "", true, true},
		{"user:{sub}", "user:42", "42", true, true},
		{"user:{sub}", "user:43", "42", true, false},
		{"user:{sub}", "user:", "42", true, false}, // covered (private), granted to no one
		{"user:{sub}", "user:42", "", true, false}, // no subject: never granted
		{"user:{sub}:inbox", "user:42:inbox", "42", true, true},
		{"user:{sub}:inbox", "user:4:inbox", "42", true, false},
		{"{sub}", "42", "42", true, true},
		{"user:{sub}", "user:42", "4*", true, false}, // a subject is not a pattern
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := p.Match(c.channel); got != c.match {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pattern, c.channel, got, c.match)
		}
		if got := p.MatchSub(c.channel, c.sub); got != c.matchSub {
			t.Errorf("%q.MatchSub(%q, %q) = %v, want %v", c.pattern, c.channel, c.sub, got, c.matchSub)
		}
	}
}

func TestParsePatternErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "user:{id}", "user:{sub", "a b", "a/b", "é", strings.Repeat("a", 300)} {
		if _, err := ParsePattern(s); !errors.Is(err, ErrBadPattern) {
			t.Errorf("ParsePattern(%q) = %v, want ErrBadPattern", s, err)
		}
	}
	if _, err := ParseRule("user:{sub}", "public"); err == nil {
		t.Error("a public {sub} rule was accepted")
	}
	if _, err := ParseRule("x", "open"); err == nil {
		t.Error("access open was accepted")
	}
}

func mustRules(t *testing.T, kv ...string) Rules {
	t.Helper()
	var rs Rules
	for i := 0; i < len(kv); i += 2 {
		r, err := ParseRule(kv[i], kv[i+1])
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func TestRulesOrderAndDefault(t *testing.T) {
	t.Parallel()
	rs := mustRules(t, "user:{sub}", "private", "admin:*", "private", "*", "public")
	for ch, public := range map[string]bool{"demo": true, "thread:1": true, "user:42": false, "admin:x": false} {
		if got := rs.Public(ch); got != public {
			t.Errorf("Public(%q) = %v", ch, got)
		}
	}
	// Without a catch-all, what no rule matches is private.
	if mustRules(t, "demo", "public").Public("other") {
		t.Error("an unmatched channel is public")
	}
	c := &Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "42"}, Channels: []string{"admin:reports:*"}}
	for ch, ok := range map[string]bool{"user:42": true, "user:43": false, "admin:reports:1": true, "admin:x": false, "demo": true} {
		if got := rs.Allows(c, ch); got != ok {
			t.Errorf("Allows(%q) = %v", ch, got)
		}
	}
}

// keyPair is one algorithm family's keys, generated per test run.
type keyPair struct {
	alg     string
	sign    any // what jwt signs with
	verify  VerifierConfig
	private any // for the Signer (nil for HMAC)
}

func keyPairs(t *testing.T) []keyPair {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []keyPair{
		{"HS256", testSecret, VerifierConfig{Secret: testSecret}, nil},
		{"HS384", testSecret, VerifierConfig{Secret: testSecret}, nil},
		{"HS512", testSecret, VerifierConfig{Secret: testSecret}, nil},
		{"RS256", rsaKey, VerifierConfig{PublicKey: &rsaKey.PublicKey}, rsaKey},
		{"RS512", rsaKey, VerifierConfig{PublicKey: &rsaKey.PublicKey}, rsaKey},
		{"PS256", rsaKey, VerifierConfig{PublicKey: &rsaKey.PublicKey}, rsaKey},
		{"ES256", ecKey, VerifierConfig{PublicKey: &ecKey.PublicKey}, ecKey},
		{"ES384", ec384, VerifierConfig{PublicKey: &ec384.PublicKey}, ec384},
		{"EdDSA", edPriv, VerifierConfig{PublicKey: edPub}, edPriv},
	}
}

func sign(t *testing.T, alg string, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifierAlgorithms(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	good := jwt.MapClaims{"sub": "42", "exp": now.Add(time.Minute).Unix(), "channels": []string{"user:*"}}
	for _, kp := range keyPairs(t) {
		t.Run(kp.alg, func(t *testing.T) {
			vc := kp.verify
			vc.Now = clock
			v, err := NewVerifier(vc)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(sign(t, kp.alg, kp.sign, good))
			if err != nil {
				t.Fatalf("valid %s token refused: %v", kp.alg, err)
			}
			if c.Subject != "42" || len(c.Channels) != 1 || !v.Expiry(c).Equal(now.Add(time.Minute)) {
				t.Errorf("claims %+v", c)
			}
			// The same token from the Signer.
			sc := SignerConfig{Algorithm: kp.alg, Now: clock, TTL: time.Minute}
			if kp.private != nil {
				sc.PrivateKey = kp.private
			} else {
				sc.Secret = testSecret
			}
			signer, err := NewSigner(sc)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := signer.Mint("7", []string{"a", "b:*"})
			if err != nil {
				t.Fatal(err)
			}
			if c, err := v.Verify(tok); err != nil || c.Subject != "7" || len(c.Channels) != 2 {
				t.Errorf("minted token: %+v, %v", c, err)
			}
		})
	}
}

func TestVerifierRefuses(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacV, err := NewVerifier(VerifierConfig{Secret: testSecret, Now: clock, Leeway: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rsaV, err := NewVerifier(VerifierConfig{PublicKey: &rsaKey.PublicKey, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	issV, err := NewVerifier(VerifierConfig{Secret: testSecret, Now: clock, Issuer: "app", Audience: "darktime"})
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Minute).Unix()
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "exp": exp}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		v     *Verifier
		token string
	}{
		{"expired", hmacV, sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42", "exp": now.Add(-3 * time.Second).Unix()})},
		{"not yet valid", hmacV, sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42", "exp": exp, "nbf": now.Add(time.Minute).Unix()})},
		{"missing exp", hmacV, sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42"})},
		{"wrong secret", hmacV, sign(t, "HS256", []byte("another secret, 32 bytes long...."), jwt.MapClaims{"sub": "42", "exp": exp})},
		{"alg none", hmacV, noneTok},
		{"alg none on rsa", rsaV, noneTok},
		// The classic confusion: HS256 "signed" with the server's public
		// key, which an attacker has.
		{"hmac with the public key", rsaV, sign(t, "HS256", pubPEM, jwt.MapClaims{"sub": "42", "exp": exp})},
		{"hmac with the public key DER", rsaV, sign(t, "HS256", pubDER, jwt.MapClaims{"sub": "42", "exp": exp})},
		{"wrong issuer", issV, sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42", "exp": exp, "iss": "evil", "aud": "darktime"})},
		{"wrong audience", issV, sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42", "exp": exp, "iss": "app", "aud": "other"})},
		{"garbage", hmacV, "not.a.token"},
		{"huge", hmacV, strings.Repeat("a", 9000)},
	}
	for _, c := range cases {
		if _, err := c.v.Verify(c.token); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if strings.Contains(err.Error(), c.token) {
			t.Errorf("%s: the error repeats the token: %v", c.name, err)
		}
	}
	// Within the leeway, an expired token still passes.
	if _, err := hmacV.Verify(sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42", "exp": now.Add(-time.Second).Unix()})); err != nil {
		t.Errorf("within leeway: %v", err)
	}
	// Algorithms outside the key's family are a config error.
	if _, err := NewVerifier(VerifierConfig{PublicKey: &rsaKey.PublicKey, Algorithms: []string{"HS256"}}); err == nil {
		t.Error("HS256 with an RSA key was accepted")
	}
	if _, err := NewVerifier(VerifierConfig{Secret: []byte("short")}); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}

func TestAuthorizeSubscribe(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	v, err := NewVerifier(VerifierConfig{Secret: testSecret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	a := &Authorizer{Rules: mustRules(t, "user:{sub}", "private", "*", "public"), Verifier: v}
	tok := sign(t, "HS256", testSecret, jwt.MapClaims{"sub": "42", "exp": now.Add(time.Minute).Unix()})
	cases := []struct {
		token    string
		channels []string
		status   int
	}{
		{"", []string{"demo"}, 0},
		{"garbage", []string{"demo"}, 0}, // public: the token is not looked at
		{"", []string{"user:42"}, 401},
		{"garbage", []string{"user:42"}, 401},
		{tok, []string{"user:42"}, 0},
		{tok, []string{"demo", "user:42"}, 0},
		{tok, []string{"user:42", "user:43"}, 403},
	}
	for _, c := range cases {
		exp, err := a.AuthorizeSubscribe(c.token, c.channels)
		status := 0
		var ae *Error
		if errors.As(err, &ae) {
			status = ae.Status
		} else if err != nil {
			t.Fatalf("%v: %v is not an *Error", c.channels, err)
		}
		if status != c.status {
			t.Errorf("%q %v: status %d (%v), want %d", c.token, c.channels, status, err, c.status)
		}
		if status == 0 && c.token == tok && !exp.Equal(now.Add(time.Minute)) {
			t.Errorf("expiry %v", exp)
		}
		if status == 401 && !errors.Is(err, ErrUnauthorized) || status == 403 && !errors.Is(err, ErrForbidden) {
			t.Errorf("%v does not wrap its sentinel", err)
		}
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "SECRET" || k == "DARKTIME_JWT_SECRET" {
			return string(testSecret)
		}
		return ""
	}
	ok := "channels:\n  - match: \"user:{sub}\"\n    access: private\n  - match: \"*\"\n    access: public\njwt:\n  secret_env: SECRET\n  leeway: 2s\n"
	a, err := LoadFile(writeFile(t, dir, "ok.yaml", ok), LoadOptions{Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Rules) != 2 || a.Verifier == nil || a.Verifier.leeway != 2*time.Second {
		t.Fatalf("%+v", a)
	}
	// The shipped examples load.
	examples, _ := filepath.Glob("../../examples/server-auth*.yaml")
	if len(examples) < 2 {
		t.Errorf("examples: %v", examples)
	}
	for _, f := range examples {
		if _, err := LoadFile(f, LoadOptions{Getenv: getenv}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "channels:\n  - match: a\n    access: public\n    acces: private\n", ":4:"},
		{"unknown top key", "channel:\n  - match: a\n", ":1:"},
		{"bad pattern", "channels:\n  - match: a\n    access: public\n  - match: \"user:{id}\"\n    access: private\njwt:\n  secret_env: SECRET\n", ":4:"},
		{"bad access", "channels:\n  - match: a\n    access: open\n", ":3:"},
		{"no key for private", "channels:\n  - match: \"user:*\"\n    access: private\n", "need a key"},
		{"unset env", "channels:\n  - match: \"user:*\"\n    access: private\njwt:\n  secret_env: NOPE\n", ":5:15: jwt: secret_env: the environment variable NOPE is empty"},
		{"two keys", "channels:\n  - match: a\n    access: public\njwt:\n  secret_env: SECRET\n  key_file: k.pem\n", "one of"},
		{"alias", "x: &a\n  - match: a\n    access: public\nchannels: *a\n", ":1:"},
		{"empty", "", "no channel rules"},
		{"private key as key_file", "channels:\n  - match: a\n    access: private\njwt:\n  key_file: priv.pem\n", "private key does not belong"},
		{"big leeway", "channels:\n  - match: a\n    access: private\njwt:\n  secret_env: SECRET\n  leeway: 1h\n", ":6:11: jwt: leeway"},
		{"alg of another family", "channels:\n  - match: a\n    access: private\njwt:\n  secret_env: SECRET\n  algorithms: [RS256]\n", ":6:15: jwt: algorithms"},
	}
	writeFile(t, dir, "priv.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	for _, c := range cases {
		name := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_")+".yaml", c.yaml)
		_, err := LoadFile(name, LoadOptions{Getenv: getenv})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), name) {
			t.Errorf("%s: %q, want %q after the file name", c.name, err, c.want)
		}
	}
	big := writeFile(t, dir, "big.yaml", "# "+strings.Repeat("x", MaxConfigBytes)+"\n")
	if _, err := LoadFile(big, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("big file: %v", err)
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"user:{sub}", "*", "a*b*c", "**", "{sub}{sub}", "user:{su", "x{", "a.b-c_d:e", "*{sub}*"} {
		f.Add(s, "user:42", "42")
	}
	f.Fuzz(func(t *testing.T, pattern, channel, sub string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			if !errors.Is(err, ErrBadPattern) {
				t.Fatalf("error %v does not wrap ErrBadPattern", err)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String %q != %q", p.String(), pattern)
		}
		m, ms := p.Match(channel), p.MatchSub(channel, sub)
		if ms && !m {
			t.Fatalf("%q matches %q for sub %q but not for anyone", pattern, channel, sub)
		}
		// A pattern without wildcards matches exactly itself.
		if !strings.ContainsAny(pattern, "*{") && m != (channel == pattern) {
			t.Fatalf("literal %q vs %q: %v", pattern, channel, m)
		}
		// Replacing {sub} with a valid subject makes a literal-with-stars
		// pattern that agrees with MatchSub.
		if p.HasSub() && validSub(sub) {
			q, err := ParsePattern(strings.ReplaceAll(pattern, subPlaceholder, sub))
			if err != nil {
				t.Fatal(err)
			}
			if q.Match(channel) != ms {
				t.Fatalf("%q with sub %q: MatchSub %v, substituted %v", pattern, sub, ms, !ms)
			}
		}
	})
}

func TestLoadSignerKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := writeFile(t, dir, "ec.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	secretFile := writeFile(t, dir, "secret", string(testSecret)+"\n")
	getenv := func(k string) string {
		if k == "S" {
			return string(testSecret)
		}
		return ""
	}
	if s, k, err := LoadSignerKey("S", "", getenv); err != nil || string(s) != string(testSecret) || k != nil {
		t.Errorf("env: %q %v %v", s, k, err)
	}
	if s, k, err := LoadSignerKey("", secretFile, getenv); err != nil || string(s) != string(testSecret) || k != nil {
		t.Errorf("secret file: %q %v %v", s, k, err)
	}
	s, k, err := LoadSignerKey("", pemFile, getenv)
	if err != nil || s != nil {
		t.Fatalf("pem: %q %v", s, err)
	}
	// An ES256 token from the PEM key verifies with its public key.
	signer, err := NewSigner(SignerConfig{PrivateKey: k})
	if err != nil || signer.Algorithm() != "ES256" {
		t.Fatalf("signer: %v %v", signer, err)
	}
	tok, err := signer.Mint("1", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(VerifierConfig{PublicKey: &ec.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("ES256 from the PEM file: %v", err)
	}
	for _, c := range [][2]string{{"S", secretFile}, {"", ""}, {"UNSET", ""}, {"", filepath.Join(dir, "missing")}} {
		if _, _, err := LoadSignerKey(c[0], c[1], getenv); err == nil {
			t.Errorf("LoadSignerKey(%q, %q) accepted", c[0], c[1])
		}
	}
}
