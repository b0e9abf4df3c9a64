package shadow

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"

	"github.com/darktime/darktime/internal/clientip"
)

// parseTrusted parses Config.TrustedProxies: CIDR prefixes or addresses.
func parseTrusted(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, v := range values {
		p, err := clientip.ParsePrefix(v)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("$.trusted_proxies[%d]", i), "%q is not a CIDR prefix (10.0.0.0/8) or an address", strings.TrimSpace(v))
		}
		out = append(out, p)
	}
	return out, nil
}

// peerTrusted reports whether the request's peer is a trusted proxy, whose
// X-Forwarded-For / Forwarded chain is passed on.
func peerTrusted(r *http.Request, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	a := clientip.Peer(r.RemoteAddr)
	return a.IsValid() && clientip.Trusted(a, trusted)
}

// setForwarded fills a proxied request's forwarding headers: the chain the
// client sent is passed on only when the client is a trusted proxy;
// otherwise X-Forwarded-For names the peer alone and Forwarded is dropped
// (a client could write anything there, and the backend — the reference
// server's loopback rule — would believe it of us).
func setForwarded(pr *httputil.ProxyRequest, trusted []netip.Prefix) {
	// ReverseProxy removed the incoming forwarding headers from pr.Out
	// before Rewrite; only a trusted peer's come back.
	pr.Out.Header.Del("Forwarded")
	if peerTrusted(pr.In, trusted) {
		for _, k := range []string{"X-Forwarded-For", "Forwarded"} {
			if prior := pr.In.Header.Values(k); len(prior) > 0 {
				pr.Out.Header[k] = append([]string(nil), prior...)
			}
		}
	}
	pr.SetXForwarded()
}

// mirrorForwarded is the X-Forwarded-For a mirrored request carries, and
// whether the incoming Forwarded may go along, by the same rule.
func mirrorForwarded(in *http.Request, trusted []netip.Prefix) (xff string, keepForwarded bool) {
	ip, _ := clientIP(in.RemoteAddr)
	if !peerTrusted(in, trusted) {
		return ip, false
	}
	prior := strings.Join(in.Header.Values("X-Forwarded-For"), ", ")
	switch {
	case prior == "":
		return ip, true
	case ip == "":
		return prior, true
	}
	return prior + ", " + ip, true
}
