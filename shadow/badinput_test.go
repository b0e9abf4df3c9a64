package shadow

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

// TestBadInputCatalogue is the shadow proxy's bad-input catalogue: what
// its admin API and its own front door answer to requests a careless or
// hostile client sends. Every answer is a status and a JSON error; none
// changes the proxy's config. (What the proxy forwards is the primary's to
// judge: server/badinput_test.go.)
func TestBadInputCatalogue(t *testing.T) {
	t.Parallel()
	primary, candidate := startRef(t), startRef(t)
	p, url, admin := startProxy(t, mirrorConfig(primary.url, candidate.url))
	// As darktime shadow does: the proxy knows its own listener.
	self, err := net.ResolveTCPAddr("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetListeners(self); err != nil {
		t.Fatal(err)
	}
	// A second proxy whose admin API takes a token: what it answers
	// without the right one.
	pt, _, tokAdmin := startProxy(t, Config{Primary: primary.url, AdminToken: testAdminToken})
	before, beforeTok := p.Config(), pt.Config()
	bearerOf := func(v string) map[string]string { return map[string]string{"Authorization": v} }
	crossSite := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
	bomb := "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
	cases := []struct {
		name         string
		base         string // admin or url
		method, path string
		hdr          map[string]string
		body         string
		status       int
		errContains  string
	}{
		{name: "config that is not YAML", base: admin, method: "PUT", path: "/_darktime/config", body: "primary: [", status: 400},
		{name: "config with an unknown key", base: admin, method: "PUT", path: "/_darktime/config", body: "primary: " + primary.url + "\nprimery: x\n", status: 400, errContains: "primery"},
		{name: "config alias bomb", base: admin, method: "PUT", path: "/_darktime/config", body: bomb, status: 400, errContains: "anchors"},
		{name: "config nested 100 deep", base: admin, method: "PUT", path: "/_darktime/config", body: "a: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", status: 400, errContains: "nest"},
		{name: "config over 1 MiB", base: admin, method: "PUT", path: "/_darktime/config", body: "# " + strings.Repeat("x", 1<<20) + "\n", status: 413},
		{name: "config with percent 150", base: admin, method: "PUT", path: "/_darktime/config", body: "primary: " + primary.url + "\ncandidate: " + candidate.url + "\nmode: mirror\npercent: 150\n", status: 400, errContains: "percent"},
		{name: "config whose candidate is the proxy itself", base: admin, method: "PUT", path: "/_darktime/config", body: "primary: " + primary.url + "\ncandidate: " + url + "\nmode: mirror\npercent: 10\n", status: 400, errContains: "own listener"},
		{name: "percent that is not a number", base: admin, method: "POST", path: "/_darktime/percent", hdr: form, body: "percent=lots", status: 400, errContains: "not a number"},
		{name: "percent out of range", base: admin, method: "POST", path: "/_darktime/percent", hdr: form, body: "percent=-1", status: 400},
		{name: "percent with three decimals", base: admin, method: "POST", path: "/_darktime/percent", hdr: form, body: "percent=1.234", status: 400},
		{name: "percent of an unknown route", base: admin, method: "POST", path: "/_darktime/percent", hdr: form, body: "route=/nowhere&percent=5", status: 400, errContains: "no route"},
		{name: "step that is not JSON", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x",`, status: 400, errContains: "JSON"},
		{name: "step with an unknown field", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "divert", "percnt": 5}`, status: 400, errContains: "percnt"},
		{name: "step with an unknown mode", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "canary", "percent": 5}`, status: 400, errContains: "mode"},
		{name: "step without a mode", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "percent": 5}`, status: 400, errContains: "mode"},
		{name: "step with percent 101", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "divert", "percent": 101}`, status: 400, errContains: "percent"},
		{name: "step with percent -1", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "divert", "percent": -1}`, status: 400, errContains: "percent"},
		{name: "step with three decimals", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "divert", "percent": 1.234}`, status: 400, errContains: "decimals"},
		{name: "step with a percent in quotes", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "divert", "percent": "5"}`, status: 400, errContains: "JSON"},
		{name: "step of an unknown route", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "divert", "percent": 5, "route": "/nowhere"}`, status: 400, errContains: "no route"},
		{name: "step body over 64 KiB", base: admin, method: "POST", path: "/_darktime/step", body: `{"name": "` + strings.Repeat("x", 64<<10) + `"}`, status: 413},
		{name: "step with two JSON values", base: admin, method: "POST", path: "/_darktime/step", body: `{"mode": "off"} {"mode": "off"}`, status: 400},
		{name: "rollback that is not JSON", base: admin, method: "POST", path: "/_darktime/rollback", body: `route=/sub/`, status: 400, errContains: "JSON"},
		{name: "rollback of an unknown route", base: admin, method: "POST", path: "/_darktime/rollback", body: `{"route": "/nowhere"}`, status: 400, errContains: "no route"},
		{name: "rollback body over 64 KiB", base: admin, method: "POST", path: "/_darktime/rollback", body: `{"route": "` + strings.Repeat("x", 64<<10) + `"}`, status: 413},
		{name: "GET a step", base: admin, method: "GET", path: "/_darktime/step", status: 405},
		{name: "POST the cohorts", base: admin, method: "POST", path: "/_darktime/cohorts", status: 405},
		{name: "cohorts of an unknown scope", base: admin, method: "GET", path: "/_darktime/cohorts?scope=planet", status: 400, errContains: "scope"},
		{name: "cohorts of the fleet without a fleet", base: admin, method: "GET", path: "/_darktime/cohorts?scope=fleet", status: 503, errContains: "no fleet"},
		{name: "ledger of the fleet without a fleet", base: admin, method: "GET", path: "/_darktime/ledger?scope=fleet", status: 503, errContains: "no fleet"},
		{name: "admin token missing: step", base: tokAdmin, method: "POST", path: "/_darktime/step", body: `{"name": "x", "mode": "off"}`, status: 401},
		{name: "admin token missing: rollback", base: tokAdmin, method: "POST", path: "/_darktime/rollback", status: 401},
		{name: "admin token missing: cohorts", base: tokAdmin, method: "GET", path: "/_darktime/cohorts", status: 401},
		{name: "admin step from another origin's page", base: admin, method: "POST", path: "/_darktime/step", hdr: crossSite, body: `{"name": "x", "mode": "off"}`, status: 403, errContains: "cross-origin"},
		{name: "admin rollback from another origin's page", base: admin, method: "POST", path: "/_darktime/rollback", hdr: crossSite, status: 403, errContains: "cross-origin"},
		{name: "DELETE the config", base: admin, method: "DELETE", path: "/_darktime/config", status: 405},
		{name: "unknown admin path", base: admin, method: "GET", path: "/_darktime/secrets", status: 404},
		{name: "admin token missing: ledger", base: tokAdmin, method: "GET", path: "/_darktime/ledger", status: 401, errContains: "Bearer"},
		{name: "admin token missing: config PUT", base: tokAdmin, method: "PUT", path: "/_darktime/config", body: "primary: " + primary.url + "\ncandidate: http://evil.example\nmode: mirror\npercent: 100\n", status: 401},
		{name: "admin token missing: percent", base: tokAdmin, method: "POST", path: "/_darktime/percent", hdr: form, body: "percent=100", status: 401},
		{name: "admin token missing: metrics", base: tokAdmin, method: "GET", path: "/metrics", status: 401},
		{name: "admin token missing: unknown path", base: tokAdmin, method: "GET", path: "/_darktime/secrets", status: 401},
		{name: "admin token wrong", base: tokAdmin, method: "PUT", path: "/_darktime/config", hdr: bearerOf("Bearer " + testAdminToken + "x"), body: "primary: " + primary.url + "\n", status: 403, errContains: "wrong admin token"},
		{name: "admin token a prefix of the right one", base: tokAdmin, method: "GET", path: "/_darktime/ledger", hdr: bearerOf("Bearer " + testAdminToken[:8]), status: 403},
		{name: "admin token with another scheme", base: tokAdmin, method: "GET", path: "/_darktime/config", hdr: bearerOf("Basic " + testAdminToken), status: 401},
		{name: "admin token without a scheme", base: tokAdmin, method: "GET", path: "/_darktime/config", hdr: bearerOf(testAdminToken), status: 401},
		{name: "admin token empty", base: tokAdmin, method: "GET", path: "/_darktime/config", hdr: bearerOf("Bearer "), status: 401},
		{name: "admin percent from another origin's page", base: admin, method: "POST", path: "/_darktime/percent", hdr: crossSite, body: "percent=100", status: 403, errContains: "cross-origin"},
		{name: "a request that came back through the proxy", base: url, method: "GET", path: "/sub/a", hdr: map[string]string{HopHeader: p.InstanceID()}, status: 508},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tstest.Refused(t, tstest.BadRequest{Method: tc.method, URL: tc.base + tc.path, Header: tc.hdr, Body: tc.body, Status: tc.status, Contains: tc.errContains})
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer (%q)", tc.method, tc.path, h.Get("WWW-Authenticate"))
			}
		})
	}
	if after, was := fmt.Sprintf("%+v", p.Config()), fmt.Sprintf("%+v", before); after != was {
		t.Errorf("the config changed:\n%s\nwas\n%s", after, was)
	}
	if after, was := fmt.Sprintf("%+v", pt.Config()), fmt.Sprintf("%+v", beforeTok); after != was {
		t.Errorf("the config of the proxy with a token changed:\n%s\nwas\n%s", after, was)
	}
}

var form = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
