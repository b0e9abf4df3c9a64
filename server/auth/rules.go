package auth

import "fmt"

// Access says who may read the channels a rule matches.
type Access string

const (
	// Public channels need no token.
	Public Access = "public"
	// Private channels need a valid token that allows them: through its
	// channels claim, or as its own channel by a `{sub}` rule.
	Private Access = "private"
)

// Rule is one ordered channel rule.
type Rule struct {
	Pattern Pattern
	Access  Access
}

// Rules are the ordered channel rules; the first match decides. A channel
// no rule matches is private, so a forgotten rule closes rather than opens.
type Rules []Rule

// ParseRule builds a rule from a pattern and "public" or "private".
func ParseRule(pattern, access string) (Rule, error) {
	p, err := ParsePattern(pattern)
	if err != nil {
		return Rule{}, err
	}
	switch a := Access(access); a {
	case Public:
		if p.HasSub() {
			return Rule{}, fmt.Errorf("%w %q: {sub} only means something in a private rule", ErrBadPattern, pattern)
		}
		return Rule{Pattern: p, Access: a}, nil
	case Private:
		return Rule{Pattern: p, Access: a}, nil
	default:
		return Rule{}, fmt.Errorf("access %q: want public or private", access)
	}
}

// Lookup returns the rule deciding channel, or nil when none matches (the
// channel is private).
func (rs Rules) Lookup(channel string) *Rule {
	for i := range rs {
		if rs[i].Pattern.Match(channel) {
			return &rs[i]
		}
	}
	return nil
}

// Public reports whether channel can be read without a token.
func (rs Rules) Public(channel string) bool {
	r := rs.Lookup(channel)
	return r != nil && r.Access == Public
}

// Allows reports whether a token with claims c may read channel: the
// channel is public, its rule's `{sub}` is the token's subject, or the
// token's channels claim lists it.
func (rs Rules) Allows(c *Claims, channel string) bool {
	r := rs.Lookup(channel)
	if r != nil && r.Access == Public {
		return true
	}
	if c == nil {
		return false
	}
	if r != nil && r.Pattern.HasSub() && r.Pattern.MatchSub(channel, c.Subject) {
		return true
	}
	for _, s := range c.Channels {
		p, err := ParsePattern(s)
		if err == nil && p.MatchSub(channel, c.Subject) {
			return true
		}
	}
	return false
}
