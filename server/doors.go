package server

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
)

// newCrossOrigin builds the cross-site request check for state-changing
// requests (POST /pub, /hooks, /queue/dead/replay): a browser request
// whose Origin (or Sec-Fetch-Site) says another site is refused unless
// that origin is on the CORS allow-list. Same-origin requests (the demo
// page) and requests without those headers (curl, publishers) pass. nil
// means any origin is allowed ("*").
func newCrossOrigin(origins []string) (*http.CrossOriginProtection, error) {
	c := http.NewCrossOriginProtection()
	for _, o := range origins {
		if o == "*" {
			return nil, nil
		}
		if err := c.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("--cors-origin %q: %w (want scheme://host[:port])", o, err)
		}
	}
	return c, nil
}

// checkOrigin refuses, with 403, a cross-site browser request to change
// state. It answers the request when it refuses.
func (s *Server) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	if s.xorigin == nil {
		return true
	}
	if err := s.xorigin.Check(r); err != nil {
		s.fail(w, http.StatusForbidden, fmt.Sprintf("cross-origin request refused: origin %q is not in the CORS allow-list (--cors-origin); a page on another site may not publish, post hooks or replay dead letters", r.Header.Get("Origin")))
		return false
	}
	return true
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authorize checks a request against the tokens that open a door (any one
// of them), or, when none is configured, lets only local clients in
// (judged with the trusted proxies: a proxy on loopback does not make the
// network local). what names the door in the refusal. It answers the
// request when it refuses.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, what string, tokens ...string) bool {
	var configured []string
	for _, t := range tokens {
		if t != "" {
			configured = append(configured, t)
		}
	}
	if len(configured) == 0 {
		if !ClientOf(r, s.cfg.TrustedProxies).Local() {
			s.fail(w, http.StatusForbidden, what+" without a token is only allowed from this host (loopback, not through a proxy that is not --trusted-proxy); start the server with --publish-token and send Authorization: Bearer <token>")
			return false
		}
		return true
	}
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="darktime"`)
		s.fail(w, http.StatusUnauthorized, what+" needs Authorization: Bearer <token>")
		return false
	}
	for _, t := range configured {
		if subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1 {
			return true
		}
	}
	s.fail(w, http.StatusForbidden, "the token is wrong for "+what)
	return false
}

// authorizePublish guards POST /pub and /hooks: the Origin rule, then the
// publish token (or loopback without one).
func (s *Server) authorizePublish(w http.ResponseWriter, r *http.Request) bool {
	return s.checkOrigin(w, r) && s.authorize(w, r, "publishing", s.cfg.PublishToken)
}

// authorizeAdmin guards the dead letters (their payloads, their replay):
// the Origin rule, then the publish or the admin token (or loopback
// without either).
func (s *Server) authorizeAdmin(w http.ResponseWriter, r *http.Request) bool {
	return s.checkOrigin(w, r) && s.authorize(w, r, "the dead letters", s.cfg.PublishToken, s.cfg.AdminToken)
}
