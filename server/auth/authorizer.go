package auth

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnauthorized (no token, or an invalid or expired one: answer 401) and
// ErrForbidden (a valid token that does not allow a channel: 403) are what
// callers branch on; every *Error wraps one of them.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// Error is a refused subscription. Msg is safe to show the client: it
// names channels and reasons, never the token.
type Error struct {
	Status int // 401 or 403
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Forbidden reports whether the token was valid but not enough (403), so
// a caller can tell without importing this package.
func (e *Error) Forbidden() bool { return e.Status == 403 }

// Is makes errors.Is(err, ErrUnauthorized) or ErrForbidden true.
func (e *Error) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == 401 || target == ErrForbidden && e.Status == 403
}

// Authorizer applies channel rules and verifies tokens: it implements the
// server's Authorizer.
type Authorizer struct {
	Rules    Rules
	Verifier *Verifier // nil: every private channel is refused
}

// AuthorizeSubscribe decides whether a token (possibly "") may read all of
// channels. It returns when the grant ends: the zero time when every
// channel is public (the token is not even looked at), else the token's
// expiry plus the leeway.
func (a *Authorizer) AuthorizeSubscribe(token string, channels []string) (time.Time, error) {
	var private []string
	for _, ch := range channels {
		if !a.Rules.Public(ch) {
			private = append(private, ch)
		}
	}
	if len(private) == 0 {
		return time.Time{}, nil
	}
	if token == "" {
		return time.Time{}, &Error{Status: 401, Msg: fmt.Sprintf("channel %q is private: send a token as Authorization: Bearer <jwt> or ?token=<jwt>", private[0])}
	}
	if a.Verifier == nil {
		return time.Time{}, &Error{Status: 401, Msg: "this server verifies no tokens (no key configured): private channels cannot be read"}
	}
	c, err := a.Verifier.Verify(token)
	if err != nil {
		return time.Time{}, &Error{Status: 401, Msg: "invalid token: " + err.Error()}
	}
	for _, ch := range private {
		if !a.Rules.Allows(c, ch) {
			return time.Time{}, &Error{Status: 403, Msg: fmt.Sprintf("the token (sub %q) does not allow channel %q", c.Subject, ch)}
		}
	}
	return a.Verifier.Expiry(c), nil
}
