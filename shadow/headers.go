package shadow

import (
	"fmt"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
)

// HeaderRules say which of the user's request headers go to the
// candidate and the baseline: on mirrored requests, mirrored streams and
// diverted requests. The default (no rules) forwards what the primary
// gets, so the candidate can serve the same user; README: "Headers sent
// to the candidate". Applied in this order: Forward, Strip, Set.
type HeaderRules struct {
	// Forward, when not empty, is an allow-list: only these headers go
	// along (X-Forwarded-For included: name it to keep it).
	Forward []string `yaml:"forward" json:"forward,omitempty"`
	// Strip is a deny-list: these headers never go along (Authorization,
	// Cookie: the user's credentials stay with the primary).
	Strip []string `yaml:"strip" json:"strip,omitempty"`
	// Set adds or replaces headers (a credential of the candidate's own:
	// Authorization: Bearer <a test token>).
	Set map[string]string `yaml:"set" json:"set,omitempty"`
}

// headerRules is HeaderRules compiled: canonical names, Set in a fixed
// order.
type headerRules struct {
	forward map[string]bool // nil: every header
	strip   []string
	set     [][2]string
}

// never are headers a rule may not name: the proxy's own marks, which
// keep mirrors in their own world and loops detectable.
func neverNamed(cfg Config) []string {
	return []string{textproto.CanonicalMIMEHeaderKey(cfg.Mirror.Header), HopHeader}
}

// notSettable are headers the transport owns or that mean something for
// one hop only, and why: setting them would corrupt the request.
var notSettable = map[string]string{
	"Host":           "is the target's own (the proxy sends each request to the candidate's host)",
	"Content-Length": "is the body's (the transport writes it)",
}

func init() {
	for _, h := range hopHeaders {
		notSettable[h] = "belongs to one connection (hop-by-hop), not to the request"
	}
}

// check validates rules at a YAML path ("$.candidate_headers").
func (hr *HeaderRules) check(path string, never []string) error {
	if hr == nil {
		return nil
	}
	name := func(at, n string) error {
		if !validHeaderName(n) {
			return fieldErr(at, "%q is not a header name", n)
		}
		c := textproto.CanonicalMIMEHeaderKey(n)
		for _, x := range never {
			if c == x {
				return fieldErr(at, "%s is the proxy's own mark on every request to the candidate: it cannot be forwarded, stripped or set", c)
			}
		}
		return nil
	}
	for i, n := range hr.Forward {
		if err := name(fmt.Sprintf("%s.forward[%d]", path, i), n); err != nil {
			return err
		}
	}
	for i, n := range hr.Strip {
		if err := name(fmt.Sprintf("%s.strip[%d]", path, i), n); err != nil {
			return err
		}
	}
	for n, v := range hr.Set {
		at := path + ".set." + n
		if err := name(at, n); err != nil {
			return err
		}
		if c := textproto.CanonicalMIMEHeaderKey(n); notSettable[c] != "" {
			return fieldErr(at, "%s %s: it cannot be set", c, notSettable[c])
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fieldErr(at, "the value of %s has a line break or a NUL", n)
		}
	}
	return nil
}

func (hr *HeaderRules) compile() *headerRules {
	if hr == nil {
		return nil
	}
	c := &headerRules{}
	if len(hr.Forward) > 0 {
		c.forward = map[string]bool{}
		for _, n := range hr.Forward {
			c.forward[textproto.CanonicalMIMEHeaderKey(n)] = true
		}
	}
	for _, n := range hr.Strip {
		c.strip = append(c.strip, textproto.CanonicalMIMEHeaderKey(n))
	}
	for n, v := range hr.Set {
		c.set = append(c.set, [2]string{textproto.CanonicalMIMEHeaderKey(n), v})
	}
	sort.Slice(c.set, func(i, j int) bool { return c.set[i][0] < c.set[j][0] })
	return c
}

// apply edits h, a request to the candidate or the baseline, in place.
func (c *headerRules) apply(h http.Header) {
	if c == nil {
		return
	}
	if c.forward != nil {
		for k := range h {
			if !c.forward[textproto.CanonicalMIMEHeaderKey(k)] {
				delete(h, k)
			}
		}
	}
	for _, k := range c.strip {
		h.Del(k)
	}
	for _, kv := range c.set {
		h.Set(kv[0], kv[1])
	}
}

// validHeaderName reports whether n is an RFC 9110 token.
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
