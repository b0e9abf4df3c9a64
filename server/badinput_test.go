package server

import (
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// TestBadInputCatalogue is the server's bad-input catalogue: every way a
// careless or hostile client has been seen to get an HTTP request wrong,
// with the answer it gets. Each answer is a status and the JSON error body
// {"error", "status"}; none changes state — after the whole table the node
// has published nothing, enqueued nothing, replayed nothing and has no
// subscriber. (The swarm and shadow surfaces have their own catalogues:
// shadow/badinput_test.go; the CLI's files and flags:
// cmd/darktime TestFlagsRefused and TestInputBoundsExitCodes.)
func TestBadInputCatalogue(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	srv, base := authServer(t, Config{
		RedisURL: rds.URL, PublishToken: "pub-secret", AdminToken: "admin-secret",
		CORSOrigins: []string{"https://good.example"}, MaxBodyBytes: 1024, MaxHookBytes: 2048, MaxChannels: 4,
	})
	bearer := map[string]string{"Authorization": "Bearer pub-secret"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{"Authorization": "Bearer pub-secret"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	alien := token(t, "7", time.Now().Add(time.Hour))          // may read user:7 only
	expired := token(t, "42", time.Now().Add(-10*time.Minute)) // beyond any leeway
	cases := []struct {
		name         string
		method, path string
		hdr          map[string]string
		body         string
		status       int
		errContains  string
		allow        string // the Allow header of a 405
	}{
		// Subscribing.
		{name: "no channel", method: "GET", path: "/sub", status: 400, errContains: "no channel"},
		{name: "channel with a space", method: "GET", path: "/sub/a%20b", status: 400, errContains: "invalid channel"},
		{name: "channel of 129 characters", method: "GET", path: "/sub/" + strings.Repeat("c", 129), status: 400, errContains: "invalid channel"},
		{name: "too many channels", method: "GET", path: "/sub/a/b/c/d/e", status: 400, errContains: "the limit is 4"},
		{name: "Last-Event-ID not an id", method: "GET", path: "/sub/a", hdr: map[string]string{"Last-Event-ID": "yesterday"}, status: 400, errContains: "Last-Event-ID"},
		{name: "Last-Event-ID overflowing", method: "GET", path: "/sub/a", hdr: map[string]string{"Last-Event-ID": "9223372036854775808-0"}, status: 400, errContains: "Last-Event-ID"},
		{name: "cursor naming an invalid channel", method: "GET", path: "/sub/a/b", hdr: map[string]string{"Last-Event-ID": "a=1-0;b c=1-0"}, status: 400, errContains: "Last-Event-ID"},
		{name: "private channel without a token", method: "GET", path: "/sub/user:42", status: 401, errContains: "private"},
		{name: "private channel, resume without a token", method: "GET", path: "/sub/user:42", hdr: map[string]string{"Last-Event-ID": "0-0"}, status: 401, errContains: "private"},
		{name: "private channel, expired token", method: "GET", path: "/sub/user:42?token=" + expired, status: 401, errContains: "expired"},
		{name: "private channel, garbage token", method: "GET", path: "/sub/user:42", hdr: map[string]string{"Authorization": "Bearer not.a.jwt"}, status: 401},
		{name: "private channel, another user's token", method: "GET", path: "/sub/user:42?token=" + alien, status: 403},
		{name: "one forbidden channel among public ones", method: "GET", path: "/sub/a/user:42?token=" + alien, status: 403},
		{name: "unknown path", method: "GET", path: "/nothing-here", status: 404},
		{name: "DELETE on /sub", method: "DELETE", path: "/sub/a", status: 405, allow: "GET, HEAD, OPTIONS"},

		// Publishing.
		{name: "publish without a token", method: "POST", path: "/pub?id=a", body: "x", status: 401, errContains: "Bearer"},
		{name: "publish with a wrong token", method: "POST", path: "/pub?id=a", hdr: map[string]string{"Authorization": "Bearer nope"}, body: "x", status: 403},
		{name: "publish, Basic scheme", method: "POST", path: "/pub?id=a", hdr: map[string]string{"Authorization": "Basic cHViLXNlY3JldA=="}, body: "x", status: 401},
		{name: "publish without a channel", method: "POST", path: "/pub", hdr: bearer, body: "x", status: 400, errContains: "id="},
		{name: "publish to an invalid channel", method: "POST", path: "/pub?id=a%2Fb", hdr: bearer, body: "x", status: 400, errContains: "invalid channel"},
		{name: "publish an invalid event name", method: "POST", path: "/pub?id=a", hdr: with(map[string]string{"X-EventSource-Event": "bad name"}), body: "x", status: 400, errContains: "invalid event"},
		{name: "publish body over --max-body", method: "POST", path: "/pub?id=a", hdr: bearer, body: strings.Repeat("x", 1025), status: 413},
		{name: "batch that is not JSON", method: "POST", path: "/pub", hdr: with(map[string]string{"Content-Type": "application/json"}), body: "{nope", status: 400},
		{name: "batch with an invalid channel", method: "POST", path: "/pub", hdr: with(map[string]string{"Content-Type": "application/json"}), body: `{"events":[{"channel":"ok","data":"x"},{"channel":"no way","data":"y"}]}`, status: 400, errContains: "invalid channel"},
		{name: "publish from another origin", method: "POST", path: "/pub?id=a", hdr: with(map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}), body: "x", status: 403},
		{name: "GET on /pub", method: "GET", path: "/pub?id=a", status: 405, allow: "POST, OPTIONS"},

		// Hooks.
		{name: "hook without a token", method: "POST", path: "/hooks", body: `{"model":"post","action":"post_save","id":"1"}`, status: 401},
		{name: "hook that is not JSON", method: "POST", path: "/hooks", hdr: bearer, body: "{", status: 400},
		{name: "hook for an unknown model", method: "POST", path: "/hooks", hdr: bearer, body: `{"model":"nope","action":"post_save","id":"1"}`, status: 400, errContains: "model"},
		{name: "hook without an id", method: "POST", path: "/hooks", hdr: bearer, body: `{"model":"post","action":"post_save"}`, status: 400},
		{name: "hook batch with one bad item", method: "POST", path: "/hooks", hdr: bearer, body: `{"hooks":[{"model":"post","action":"post_save","id":"1","data":{"thread":"1","author":"1"}},{"model":"nope","action":"post_save","id":"2"}]}`, status: 400},
		{name: "hook body over --max-hook-body", method: "POST", path: "/hooks", hdr: bearer, body: `{"model":"post","action":"post_save","id":"1","data":{"x":"` + strings.Repeat("x", 2100) + `"}}`, status: 413},
		{name: "hook from another origin", method: "POST", path: "/hooks", hdr: with(map[string]string{"Origin": "https://evil.example"}), body: `{"model":"post","action":"post_save","id":"1"}`, status: 403},

		// Dead letters and the operator endpoints.
		{name: "dead letters without a token", method: "GET", path: "/queue/dead", status: 401},
		{name: "replay without a token", method: "POST", path: "/queue/dead/replay", body: `{"ids":["1-0"]}`, status: 401},
		{name: "replay of a non-id", method: "POST", path: "/queue/dead/replay", hdr: map[string]string{"Authorization": "Bearer admin-secret"}, body: `{"ids":["nope"]}`, status: 400},
		{name: "replay of an unknown dead letter", method: "POST", path: "/queue/dead/replay", hdr: map[string]string{"Authorization": "Bearer admin-secret"}, body: `{"ids":["1-0"]}`, status: 404},
		{name: "replay from another origin", method: "POST", path: "/queue/dead/replay", hdr: map[string]string{"Authorization": "Bearer admin-secret", "Origin": "https://evil.example"}, body: `{"ids":["1-0"]}`, status: 403},
		{name: "PUT on /stats", method: "PUT", path: "/stats", status: 405, allow: "GET, HEAD, OPTIONS"},
		{name: "CORS preflight from another origin", method: "OPTIONS", path: "/pub", hdr: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tstest.Refused(t, tstest.BadRequest{Method: tc.method, URL: base + tc.path, Header: tc.hdr, Body: tc.body, Status: tc.status, Contains: tc.errContains})
			if tc.allow != "" && h.Get("Allow") != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, h.Get("Allow"), tc.allow)
			}
		})
	}
	// Nothing of it changed anything.
	st := srv.Stats()
	if st.Totals.Published != 0 || st.Totals.Subscribers != 0 || st.Totals.HistoryReplayed != 0 || st.Totals.FannedOut != 0 {
		t.Errorf("after the catalogue: published %d, subscribers %d, history replayed %d, fanned out %d; want all 0",
			st.Totals.Published, st.Totals.Subscribers, st.Totals.HistoryReplayed, st.Totals.FannedOut)
	}
	if n, err := rds.Client().Exists(t.Context(), "darktime:jobs").Result(); err != nil || n != 0 {
		t.Errorf("the job queue exists (%d, %v): a refused hook was enqueued", n, err)
	}
}
