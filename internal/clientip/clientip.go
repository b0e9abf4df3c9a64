// Package clientip judges who sent an HTTP request: the peer, or — only
// when the peer is a trusted proxy — the client it forwarded for, walking
// X-Forwarded-For (or RFC 7239 Forwarded) from the right. The reference
// server uses it for its loopback rule, the shadow proxy for its ip key.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrusted parses --trusted-proxy values: CIDR prefixes
// ("10.0.0.0/8", "::1/128") or bare addresses (one host), several to a
// value when comma-separated.
func ParseTrusted(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			p, err := ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix (10.0.0.0/8) or an address", part)
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// ParsePrefix parses one trusted proxy: a CIDR prefix (masked) or an
// address (a prefix of one host; an IPv4-mapped address is unmapped).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Client is who sent a request, as far as the server can tell: the peer,
// or, when the peer is a trusted proxy, the hop it forwarded for (and so on
// leftwards while the hops are trusted).
type Client struct {
	// Addr is the client's address; invalid when the hop that names it is
	// not an address ("unknown", an obfuscated RFC 7239 node, garbage).
	Addr netip.Addr
	// Claimed are the hops left of the client in the forwarded chain: what
	// the client (itself a proxy we do not trust) says it forwarded for.
	Claimed []netip.Addr
	// ClaimedBad reports a claimed hop that is not an address.
	ClaimedBad bool
}

// Local reports whether the request comes from this host: the client is on
// loopback, and if it forwarded for anybody (a proxy on this host that is
// not a trusted proxy), every hop it names is on loopback too. A proxy on
// loopback does not make the network's clients local.
func (c Client) Local() bool {
	if !c.Addr.IsValid() || !c.Addr.IsLoopback() || c.ClaimedBad {
		return false
	}
	for _, a := range c.Claimed {
		if !a.IsLoopback() {
			return false
		}
	}
	return true
}

// Of judges who sent r. X-Forwarded-For and Forwarded (RFC 7239) are
// honoured only from trusted peers: the chain is walked from the right,
// from the peer, and stops at the first hop that is not a trusted proxy —
// that hop is the client. X-Forwarded-For is used when present (what
// net/http/httputil.ReverseProxy, nginx and most proxies write), Forwarded
// otherwise; a trusted proxy must set or strip the one it writes.
func Of(r *http.Request, trusted []netip.Prefix) Client {
	peer := Peer(r.RemoteAddr)
	chain := forwardedChain(r.Header)
	c := Client{Addr: peer}
	i := len(chain) - 1
	for c.Addr.IsValid() && Trusted(c.Addr, trusted) && i >= 0 {
		c.Addr = chain[i]
		i--
	}
	if i >= 0 {
		c.Claimed = chain[:i+1]
		for _, a := range c.Claimed {
			if !a.IsValid() {
				c.ClaimedBad = true
			}
		}
	}
	return c
}

// Trusted reports whether a is inside one of the trusted prefixes.
func Trusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Peer is the address of a RemoteAddr ("192.0.2.1:4711", "[::1]:80"),
// unmapped; invalid when it holds none.
func Peer(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwardedChain returns the hops of X-Forwarded-For (or, without it,
// Forwarded's for= parameters), left to right, every header line in order;
// a hop that is not an address is an invalid netip.Addr.
func forwardedChain(h http.Header) (chain []netip.Addr) {
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for _, hop := range strings.Split(line, ",") {
				chain = append(chain, hopAddr(strings.TrimSpace(hop)))
			}
		}
		return chain
	}
	for _, line := range h.Values("Forwarded") {
		for _, elem := range splitQuoted(line, ',') {
			for _, pair := range splitQuoted(elem, ';') {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
					continue
				}
				chain = append(chain, hopAddr(strings.Trim(strings.TrimSpace(v), `"`)))
			}
		}
	}
	return chain
}

// hopAddr parses one hop: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
// "[2001:db8::1]:4711".
func hopAddr(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
