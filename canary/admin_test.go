package canary

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// contractProxy answers the admin API's step, rollback and cohorts
// endpoints as the contract says, for the HTTP client's tests.
type contractProxy struct {
	mu      sync.Mutex
	epoch   int64
	token   string
	bodies  []string
	queries []string
	noStep  bool
	stats   CohortStats
}

func (p *contractProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if p.token != "" && r.Header.Get("Authorization") != "Bearer "+p.token {
		writeJSON(http.StatusForbidden, map[string]any{"error": "wrong admin token", "status": 403})
		return
	}
	body, _ := io.ReadAll(r.Body)
	p.bodies = append(p.bodies, r.Method+" "+r.URL.Path+" "+strings.TrimSpace(string(body)))
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/_darktime/step" && !p.noStep:
		var req StepRequest
		if err := json.Unmarshal(body, &req); err != nil {
			writeJSON(http.StatusBadRequest, map[string]any{"error": err.Error(), "status": 400})
			return
		}
		p.epoch++
		writeJSON(http.StatusOK, map[string]any{"epoch": p.epoch, "step": req.Name, "config": map[string]any{}})
	case r.Method == http.MethodPost && r.URL.Path == "/_darktime/rollback":
		p.epoch++
		writeJSON(http.StatusOK, map[string]any{"epoch": p.epoch, "step": "rollback", "config": map[string]any{}})
	case r.Method == http.MethodGet && r.URL.Path == "/_darktime/cohorts":
		p.queries = append(p.queries, r.URL.RawQuery)
		writeJSON(http.StatusOK, Cohorts{Epoch: p.epoch, Step: "s", Instances: []string{r.Host}, Primary: p.stats, Candidate: p.stats})
	default:
		writeJSON(http.StatusNotFound, map[string]any{"error": "no admin endpoint " + r.Method + " " + r.URL.Path, "status": 404})
	}
}

func startContract(t *testing.T, p *contractProxy) string {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestHTTPAdmin(t *testing.T) {
	t.Parallel()
	p1 := &contractProxy{token: "t", stats: CohortStats{Events: 10, DelayMS: []float64{1, 2}, Streams: 1}}
	p2 := &contractProxy{token: "t", stats: CohortStats{Events: 5, DelayMS: []float64{3}, Streams: 2}, epoch: 40}
	a := &HTTPAdmin{URLs: []string{startContract(t, p1), startContract(t, p2)}, Token: "t", TokenSource: "--admin-token"}
	ans, err := a.Step(t.Context(), StepRequest{Name: "divert-5", Mode: "divert", Percent: 5, Route: "/sub/"})
	if err != nil || ans.Epoch != 1 || ans.Step != "divert-5" {
		t.Fatalf("Step = %+v, %v", ans, err)
	}
	if got := p1.bodies[0]; got != `POST /_darktime/step {"name":"divert-5","mode":"divert","percent":5,"route":"/sub/"}` {
		t.Errorf("step request %s", got)
	}
	c, err := a.Cohorts(t.Context())
	if err != nil || c.Epoch != 1 || c.Candidate.Events != 15 || len(c.Candidate.DelayMS) != 3 || c.Primary.Streams != 3 || len(c.Instances) != 2 {
		t.Fatalf("summed cohorts %+v, %v", c, err)
	}
	p2.mu.Lock()
	p2.epoch++ // a step of someone else's on one proxy
	p2.mu.Unlock()
	if c, _ := a.Cohorts(t.Context()); c.Epoch != -1 {
		t.Errorf("a proxy of another epoch: sum's epoch %d, want -1", c.Epoch)
	}
	if _, err := a.Rollback(t.Context(), "/sub/"); err != nil || p2.bodies[len(p2.bodies)-1] != `POST /_darktime/rollback {"route":"/sub/"}` {
		t.Errorf("rollback: %v, %v", err, p2.bodies)
	}
	fleet := &HTTPAdmin{URLs: a.URLs, Fleet: true, Token: "t"}
	if _, err := fleet.Cohorts(t.Context()); err != nil || p1.queries[len(p1.queries)-1] != "scope=fleet" {
		t.Errorf("fleet: %v, queries %v", err, p1.queries)
	}
}

func TestHTTPAdminErrors(t *testing.T) {
	t.Parallel()
	closed := func() string { // a port nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}()
	tokenURL := startContract(t, &contractProxy{token: "right"})
	oldURL := startContract(t, &contractProxy{noStep: true})
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error": "boom", "status": 500}`, http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	cases := []struct {
		name string
		a    *HTTPAdmin
		want error
		msg  string
	}{
		{"unreachable", &HTTPAdmin{URLs: []string{closed}}, ErrUnreachable, "connection refused"},
		{"wrong token", &HTTPAdmin{URLs: []string{tokenURL}, Token: "wrong", TokenSource: "DARKTIME_SHADOW_ADMIN_TOKEN"}, ErrUnauthorized,
			"the token from DARKTIME_SHADOW_ADMIN_TOKEN is not the proxy's: wrong admin token"},
		{"no token", &HTTPAdmin{URLs: []string{tokenURL}}, ErrUnauthorized, "no token was given (--admin-token or DARKTIME_SHADOW_ADMIN_TOKEN)"},
		{"no step API", &HTTPAdmin{URLs: []string{oldURL}}, ErrRefused, "this proxy has no step API"},
		{"5xx", &HTTPAdmin{URLs: []string{broken.URL}}, ErrUnreachable, "500: boom"},
	}
	for _, c := range cases {
		_, err := c.a.Step(t.Context(), StepRequest{Name: "a", Mode: "divert", Percent: 1})
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want %v with %q", c.name, err, c.want, c.msg)
		}
		if strings.Contains(err.Error(), "wrong") && c.name == "wrong token" && strings.Contains(err.Error(), "Bearer") {
			t.Errorf("%s: the error shows the token: %v", c.name, err)
		}
	}
}
