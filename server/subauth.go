package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
)

// Authorizer decides whether a subscriber may read channels; server/auth
// implements it with channel rules and JWTs. token is what the request
// carried ("" when none). It returns when the grant ends (the zero time:
// never, as for public channels); the stream is ended with a
// darktime.renew notice then. An error refuses the subscription: 403 when
// it has a Forbidden() bool method that says so (a valid token that does
// not allow a channel), 401 otherwise. Its message goes to the client.
type Authorizer interface {
	AuthorizeSubscribe(token string, channels []string) (time.Time, error)
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(token string, channels []string) (time.Time, error)

// AuthorizeSubscribe calls f.
func (f AuthorizerFunc) AuthorizeSubscribe(token string, channels []string) (time.Time, error) {
	return f(token, channels)
}

// RenewEvent is the event type of the notice that ends a stream whose
// token expired: the client gets a fresh token and reconnects with its
// Last-Event-ID at once.
const RenewEvent = "darktime.renew"

// reasonTokenExpired ends a stream whose token expired.
const reasonTokenExpired = "token_expired"

// authCounters are the subscribe side of auth, in /stats under "auth".
type authCounters struct {
	unauthorized   atomic.Uint64 // subscriptions answered 401
	forbidden      atomic.Uint64 // subscriptions answered 403
	expiredStreams atomic.Uint64 // streams ended by a darktime.renew notice
}

func (h *hub) authSnapshot() *AuthStats {
	if h.cfg.Authorizer == nil {
		return nil
	}
	a := &h.stats.auth
	return &AuthStats{Unauthorized: a.unauthorized.Load(), Forbidden: a.forbidden.Load(), ExpiredStreams: a.expiredStreams.Load()}
}

// subscribeToken reads the token of a subscribe request: Authorization:
// Bearer (the scheme in any case) or, for a browser's EventSource, which
// cannot set headers, ?token=.
func subscribeToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return r.URL.Query().Get("token")
}

// authorizeSubscribe checks the request's channels before anything is
// written or subscribed (history included). It answers the request when
// it refuses; otherwise it returns when the grant ends (zero: never).
// The token is never logged.
func (s *Server) authorizeSubscribe(w http.ResponseWriter, r *http.Request, channels []string) (time.Time, bool) {
	if s.cfg.Authorizer == nil {
		return time.Time{}, true
	}
	until, err := s.cfg.Authorizer.AuthorizeSubscribe(subscribeToken(r), channels)
	if err == nil {
		return until, true
	}
	s.cors(w, r)
	var f interface{ Forbidden() bool }
	if errors.As(err, &f) && f.Forbidden() {
		s.hub.stats.auth.forbidden.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="darktime", error="insufficient_scope"`)
		s.fail(w, http.StatusForbidden, err.Error())
		return time.Time{}, false
	}
	s.hub.stats.auth.unauthorized.Add(1)
	challenge := `Bearer realm="darktime"`
	if subscribeToken(r) != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	s.fail(w, http.StatusUnauthorized, err.Error())
	return time.Time{}, false
}

// renewNotice is the event that ends a stream whose token expired.
func renewNotice(channels []string) []byte {
	data, _ := json.Marshal(struct {
		Reason   string   `json:"reason"`
		Channels []string `json:"channels"`
	}{reasonTokenExpired, channels})
	b, _ := sse.AppendEvent(nil, sse.Event{Event: RenewEvent, Data: data})
	return b
}

// armExpiry ends the stream when its grant ends: what is queued is
// written, then the darktime.renew notice, and the stream closes
// (disconnect reason token_expired; copies that cannot be written count as
// dropped for that reason, as for any cut). Events that arrive meanwhile
// are not fanned out to it: the client resumes them from history.
//
// The notice carries the stream's position as its id (a cursor for
// several channels), so a client that got no event yet still resumes
// exactly where the stream ended. A single-channel stream that did not
// resume starts from the channel's newest id, read here (one broker call,
// only for streams that can expire).
func (s *Server) armExpiry(ctx context.Context, sub *subscriber, until time.Time, channels []string, resumedAt map[*channel]eventid.ID) {
	if until.IsZero() {
		return
	}
	if !sub.multi && len(sub.chans) == 1 && sub.chans[0] != nil {
		start, ok := resumedAt[sub.chans[0]]
		if !ok {
			last, err := s.broker.Last(ctx, sub.chans[0].name)
			if err != nil {
				s.log.Warn("read the newest id for a stream that can expire; its darktime.renew will carry none", "channel", sub.chans[0].name, "err", err)
			}
			start = last
		}
		sub.mu.Lock()
		sub.lastID = start
		sub.mu.Unlock()
	}
	notice := renewNotice(channels)
	t := time.AfterFunc(time.Until(until), func() {
		sub.sayGoodbye(notice, reasonTokenExpired, true) // counts the expired stream
	})
	sub.mu.Lock()
	closed := sub.state == stateClosed
	sub.expiry = t
	sub.mu.Unlock()
	if closed {
		t.Stop()
	}
}

// appendPositionLocked appends an id: line with the stream's position:
// the last id queued on every channel ("0-0" for a channel that has had
// none: its whole history came after the stream started).
func (s *subscriber) appendPositionLocked(dst []byte) []byte {
	dst = append(dst, "id: "...)
	if !s.multi {
		dst = s.lastID.Append(dst)
		return append(dst, '\n')
	}
	for i, ch := range s.chans {
		if ch == nil {
			continue
		}
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, ch.name...)
		dst = append(dst, '=')
		dst = s.cursor[ch.name].Append(dst)
	}
	return append(dst, '\n')
}
