package server

import (
	"net/http"
	"net/netip"

	"github.com/darktime/darktime/internal/clientip"
)

// ParseTrustedProxies parses --trusted-proxy values: CIDR prefixes
// ("10.0.0.0/8", "::1/128") or bare addresses (one host).
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	return clientip.ParseTrusted(values)
}

// Client is who sent a request, as far as the server can tell: the peer,
// or, when the peer is a trusted proxy, the hop it forwarded for (and so on
// leftwards while the hops are trusted). Local reports whether it is this
// host. (internal/clientip, shared with the shadow proxy's ip key.)
type Client = clientip.Client

// ClientOf judges who sent r. X-Forwarded-For and Forwarded (RFC 7239) are
// honoured only from trusted peers: the chain is walked from the right,
// from the peer, and stops at the first hop that is not a trusted proxy —
// that hop is the client. X-Forwarded-For is used when present (what
// net/http/httputil.ReverseProxy, nginx and most proxies write), Forwarded
// otherwise; a trusted proxy must set or strip the one it writes.
func ClientOf(r *http.Request, trusted []netip.Prefix) Client {
	return clientip.Of(r, trusted)
}
