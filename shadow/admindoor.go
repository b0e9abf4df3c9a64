package shadow

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// The admin API changes where users' requests go: whoever can PUT a
// config can point the candidate at their own host and receive mirrored
// users' requests, cookies and all. So it takes a bearer token
// (Config.AdminToken) whenever one is set, and darktime shadow refuses to
// serve it off loopback without one (CheckAdminListener).

// AdminTokenEnv is the environment variable darktime shadow reads the
// admin token from when --admin-token is not given.
const AdminTokenEnv = "DARKTIME_SHADOW_ADMIN_TOKEN"

// ErrAdminTokenRequired is wrapped by CheckAdminListener's refusal.
var ErrAdminTokenRequired = errors.New("the shadow admin API needs a token beyond loopback")

// adminOpenPath is the one admin endpoint that needs no token: liveness,
// which the runner and load balancers probe and which reveals nothing.
const adminOpenPath = "/_darktime/healthz"

// CheckAdminListener refuses an admin listener that other hosts can reach
// (any address that is not loopback: 0.0.0.0, ::, an empty host, a
// host's own address, a name that resolves to one) when token is empty.
// With a token, or on loopback only, it returns nil. Call it before
// listening, and again with the listener's own address (a name such as
// localhost is judged by what it resolves to).
func CheckAdminListener(addr, token string) error {
	if token != "" {
		return nil
	}
	loop, why := loopbackOnly(addr)
	if loop {
		return nil
	}
	return fmt.Errorf("admin listener %s %s: %w; set --admin-token (or %s) to a long random secret (openssl rand -hex 32), or listen on 127.0.0.1",
		addr, why, ErrAdminTokenRequired, AdminTokenEnv)
}

// loopbackOnly reports whether a listener on addr accepts connections
// from this host only, and if not, why.
func loopbackOnly(addr string) (bool, string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, "is not host:port"
	}
	if host == "" {
		return false, "listens on every address"
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		switch {
		case a.IsUnspecified():
			return false, "listens on every address"
		case !a.IsLoopback():
			return false, "is not a loopback address"
		}
		return true, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return false, "does not resolve (so it cannot be shown to be loopback)"
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return false, "resolves to " + a.String() + ", which is not loopback"
		}
	}
	return true, ""
}

// checkAdminToken: a token is sent as "Authorization: Bearer TOKEN", so
// it must be one visible ASCII word.
func checkAdminToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: the admin token (--admin-token, %s) has a space, a control or a non-ASCII character at byte %d: use visible ASCII (openssl rand -hex 32)",
				ErrInvalidConfig, AdminTokenEnv, i)
		}
	}
	return nil
}

// adminDoor requires the admin token on every admin endpoint but health,
// and refuses state-changing requests a browser sends from another
// origin's page (a form POST to 127.0.0.1:9092 from a page the operator
// opened; http.CrossOriginProtection): 401 with WWW-Authenticate without
// a bearer token, 403 with a wrong one or from another origin.
func (p *Proxy) adminDoor(next http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, errors.New("cross-origin request refused: the admin API is not for web pages of other origins"))
	}))
	guarded := csrf.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == adminOpenPath {
			next.ServeHTTP(w, r)
			return
		}
		if want := p.Config().AdminToken; want != "" {
			got, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="darktime shadow admin"`)
				writeError(w, http.StatusUnauthorized, errors.New("the admin API needs Authorization: Bearer <admin token>"))
				return
			}
			if !tokenEqual(got, want) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="darktime shadow admin", error="invalid_token"`)
				writeError(w, http.StatusForbidden, errors.New("wrong admin token"))
				return
			}
		}
		guarded.ServeHTTP(w, r)
	})
}

// bearer returns the token of an Authorization: Bearer header (the
// scheme in any case, RFC 7235).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// tokenEqual compares in constant time; hashing first hides the length
// too (ConstantTimeCompare returns at once on a length difference).
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
