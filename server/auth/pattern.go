package auth

import (
	"errors"
	"fmt"
	"strings"
)

// subPlaceholder in a pattern stands for the token's subject.
const subPlaceholder = "{sub}"

// maxPattern bounds a pattern's length (a channel name has at most 128
// bytes; a pattern may spell a few placeholders on top).
const maxPattern = 256

// ErrBadPattern is wrapped by every pattern syntax error.
var ErrBadPattern = errors.New("bad channel pattern")

// Pattern matches channel names: literal channel characters
// ([A-Za-z0-9_:.-]), `*` for any run of them (also none) and `{sub}` for
// the token's subject.
type Pattern struct {
	src string
	// parts alternate literal text and wildcards: a part is a literal, "*"
	// or subPlaceholder.
	parts  []string
	hasSub bool
}

// ParsePattern parses a channel pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("%w: empty", ErrBadPattern)
	}
	if len(s) > maxPattern {
		return Pattern{}, fmt.Errorf("%w %.40q...: longer than %d bytes", ErrBadPattern, s, maxPattern)
	}
	p := Pattern{src: s}
	lit := 0
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '*':
			p.addLit(s[lit:i])
			if n := len(p.parts); n == 0 || p.parts[n-1] != "*" { // ** is *
				p.parts = append(p.parts, "*")
			}
			i++
			lit = i
		case c == '{':
			if !strings.HasPrefix(s[i:], subPlaceholder) {
				return Pattern{}, fmt.Errorf("%w %q: unknown placeholder at byte %d (only {sub} is known)", ErrBadPattern, s, i)
			}
			p.addLit(s[lit:i])
			p.parts = append(p.parts, subPlaceholder)
			p.hasSub = true
			i += len(subPlaceholder)
			lit = i
		case channelByte(c):
			i++
		default:
			return Pattern{}, fmt.Errorf("%w %q: byte %d (%q) is not a channel character (A-Z a-z 0-9 _ : . -), * or {sub}", ErrBadPattern, s, i, c)
		}
	}
	p.addLit(s[lit:])
	return p, nil
}

func (p *Pattern) addLit(s string) {
	if s != "" {
		p.parts = append(p.parts, s)
	}
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// HasSub reports whether the pattern names the token's subject.
func (p Pattern) HasSub() bool { return p.hasSub }

// Match reports whether channel matches, reading `{sub}` as `*`: does the
// pattern cover the channel at all, whoever asks. (`user:{sub}` covers
// `user:` too, which no subject can claim: it stays private.)
func (p Pattern) Match(channel string) bool { return match(p.parts, channel, "") }

// MatchSub reports whether channel matches with `{sub}` standing for sub
// exactly. A pattern with `{sub}` never matches for an empty subject or one
// that is not made of channel characters.
func (p Pattern) MatchSub(channel, sub string) bool {
	if p.hasSub && !validSub(sub) {
		return false
	}
	if !p.hasSub {
		sub = ""
	}
	return match(p.parts, channel, sub)
}

func validSub(sub string) bool {
	if sub == "" || len(sub) > 128 {
		return false
	}
	for i := 0; i < len(sub); i++ {
		if !channelByte(sub[i]) {
			return false
		}
	}
	return true
}

// match is glob matching over parts. With sub == "", {sub} matches as *
// does; otherwise exactly sub. It runs in O(parts × name) time
// (dynamic programming from the end, one row per part), so no pattern
// makes it backtrack exponentially.
func match(parts []string, name, sub string) bool {
	n := len(name)
	var buf [2 * 130]bool
	var next, cur []bool
	if 2*(n+1) <= len(buf) {
		next, cur = buf[:n+1], buf[n+1:2*(n+1)]
	} else {
		next, cur = make([]bool, n+1), make([]bool, n+1)
	}
	// next[j]: parts[i+1:] matches name[j:]; the empty tail matches only
	// the empty rest.
	next[n] = true
	for i := len(parts) - 1; i >= 0; i-- {
		part := parts[i]
		if part == subPlaceholder {
			part = "*"
			if sub != "" {
				part = sub
			}
		}
		switch part {
		case "*":
			cur[n] = next[n]
			for j := n - 1; j >= 0; j-- {
				cur[j] = next[j] || cur[j+1]
			}
		default:
			for j := n; j >= 0; j-- {
				cur[j] = strings.HasPrefix(name[j:], part) && next[j+len(part)]
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

func channelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-'
}
