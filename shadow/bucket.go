package shadow

import (
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/darktime/darktime/internal/clientip"
)

// Buckets is the number of user buckets: one bucket is 0.01%.
const Buckets = 10000

// Bucket hashes a salted user key into 0..Buckets-1. It is a pure
// function of salt and key (FNV-1a then a 64-bit finaliser, no random
// seed), so every proxy instance puts a user in the same bucket.
func Bucket(salt, key string) int {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * prime
	}
	h = (h ^ 0xff) * prime // separates salt "ab"+key "c" from salt "a"+key "bc"
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	// splitmix64's finaliser spreads FNV's weak low bits before the modulo.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return int(h % Buckets)
}

// selected reports whether bucket b is inside a share of bp basis points
// (0..10000): buckets below the share are in, so raising it only adds.
func selected(b, bp int) bool { return b < bp }

// keyFunc extracts the user key from a request; ok is false when the
// request carries none (such users are never selected).
type keyFunc func(r *http.Request) (key string, ok bool)

func newKeyFunc(k KeyConfig, trusted []netip.Prefix) keyFunc {
	switch k.From {
	case KeyCookie:
		return func(r *http.Request) (string, bool) { return cookieValue(r.Header, k.Name) }
	case KeyHeader:
		name := textproto.CanonicalMIMEHeaderKey(k.Name)
		return func(r *http.Request) (string, bool) {
			v := r.Header[name]
			if len(v) == 0 || v[0] == "" {
				return "", false
			}
			return v[0], true
		}
	case KeyQuery:
		return func(r *http.Request) (string, bool) { return queryValue(r.URL.RawQuery, k.Name) }
	default:
		return func(r *http.Request) (string, bool) { return clientKey(r, trusted) }
	}
}

// cookieValue finds a cookie without building http.Cookie values.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v == "" {
				return "", false
			}
			return v, true
		}
	}
	return "", false
}

// queryValue finds the first value of a query parameter without building
// a url.Values map.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				return "", false
			}
		}
		return v, v != ""
	}
	return "", false
}

// clientKey is the ip key: the peer's address or, when the peer is a
// trusted proxy, the client it forwarded for (X-Forwarded-For, else
// Forwarded, walked from the right as the reference server does:
// internal/clientip). A hop that is not an address ("unknown", an
// obfuscated node) is no key: such users are not selected.
func clientKey(r *http.Request, trusted []netip.Prefix) (string, bool) {
	if len(trusted) == 0 {
		return clientIP(r.RemoteAddr)
	}
	c := clientip.Of(r, trusted)
	if !c.Addr.IsValid() {
		return "", false
	}
	return c.Addr.String(), true
}

// clientIP is the host of a RemoteAddr (the IP without the port).
func clientIP(remote string) (string, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return host, host != ""
}
