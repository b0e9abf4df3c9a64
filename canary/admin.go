package canary

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/darktime/darktime/shadow/ledgerfile"
)

// Sentinel errors of the admin API, which the exit code follows.
var (
	// ErrUnreachable: a proxy did not answer, or answered 5xx (exit 3).
	ErrUnreachable = errors.New("proxy unreachable")
	// ErrUnauthorized: a proxy refused the admin token, 401 or 403
	// (exit 2).
	ErrUnauthorized = errors.New("admin token refused")
	// ErrRefused: a proxy refused a request as bad input, another 4xx
	// (exit 2); a 404 on POST /_darktime/step is a proxy without the step
	// API.
	ErrRefused = errors.New("refused by the proxy")
)

// Admin is what the canary needs of the proxies.
type Admin interface {
	// Step sets the share of users and opens a new epoch on every
	// proxy; the answer is the epoch the evidence must carry.
	Step(ctx context.Context, req StepRequest) (StepAnswer, error)
	// Rollback takes the candidate's share to 0 at once on every proxy.
	Rollback(ctx context.Context, route string) (StepAnswer, error)
	// Cohorts is the evidence gathered so far.
	Cohorts(ctx context.Context) (Cohorts, error)
}

// StepRequest is the body of POST /_darktime/step.
type StepRequest struct {
	Name    string  `json:"name"`
	Mode    string  `json:"mode"` // divert, mirror or off
	Percent float64 `json:"percent"`
	Route   string  `json:"route"`
}

// StepAnswer is what POST /_darktime/step and /_darktime/rollback answer.
type StepAnswer struct {
	Epoch  int64           `json:"epoch"`
	Step   string          `json:"step"`
	Config json.RawMessage `json:"config,omitempty"`
}

// Cohorts is the GET /_darktime/cohorts document and CohortStats one
// cohort's evidence in it (shadow/LEDGER.md, "Cohorts"): the proxy's own
// types, from the leaf package that links no proxy engine.
type (
	Cohorts     = ledgerfile.Cohorts
	CohortStats = ledgerfile.CohortStats
)

// HTTPAdmin drives proxies through their admin API.
type HTTPAdmin struct {
	// URLs are the admin API base URLs; Fleet reads the cohorts of the
	// whole fleet from the first.
	URLs  []string
	Fleet bool
	// Token is the bearer token, TokenSource where it came from
	// ("--admin-token", the environment variable), named when a proxy
	// refuses it.
	Token, TokenSource string
	// Client makes the requests (default: one with a 10s timeout).
	Client *http.Client

	mu     sync.Mutex
	epochs map[string]int64 // each proxy's epoch of the last step
}

var _ Admin = (*HTTPAdmin)(nil)

// maxAnswer bounds an admin API answer (cohorts carry samples).
const maxAnswer = 256 << 20

// Step posts the step to every proxy. The answer's epoch is the first
// proxy's; with several proxies and no fleet scope, Cohorts checks each
// proxy's own.
func (a *HTTPAdmin) Step(ctx context.Context, req StepRequest) (StepAnswer, error) {
	return a.postAll(ctx, "/_darktime/step", req)
}

// Rollback posts the rollback to every proxy, every one even when one
// fails.
func (a *HTTPAdmin) Rollback(ctx context.Context, route string) (StepAnswer, error) {
	return a.postAll(ctx, "/_darktime/rollback", map[string]string{"route": route})
}

func (a *HTTPAdmin) postAll(ctx context.Context, path string, body any) (StepAnswer, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return StepAnswer{}, err
	}
	var first StepAnswer
	var errs []error
	for i, base := range a.URLs {
		var ans StepAnswer
		err := a.do(ctx, http.MethodPost, base+path, data, &ans)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i == 0 {
			first = ans
		}
		a.setEpoch(base, ans.Epoch)
	}
	return first, errors.Join(errs...)
}

func (a *HTTPAdmin) setEpoch(base string, e int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.epochs == nil {
		a.epochs = map[string]int64{}
	}
	a.epochs[base] = e
}

func (a *HTTPAdmin) epochOf(base string) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.epochs[base]
	return e, ok
}

// Cohorts reads the evidence: the fleet's from the first proxy with
// Fleet, or every proxy's added up. A proxy whose snapshot is of another
// epoch than its last step's makes the sum's epoch -1, which the canary
// ignores.
func (a *HTTPAdmin) Cohorts(ctx context.Context) (Cohorts, error) {
	if a.Fleet {
		var c Cohorts
		err := a.do(ctx, http.MethodGet, a.URLs[0]+"/_darktime/cohorts?scope=fleet", nil, &c)
		return c, err
	}
	parts := make([]Cohorts, 0, len(a.URLs))
	stale := false
	for _, base := range a.URLs {
		var c Cohorts
		if err := a.do(ctx, http.MethodGet, base+"/_darktime/cohorts", nil, &c); err != nil {
			return Cohorts{}, err
		}
		if want, ok := a.epochOf(base); ok && c.Epoch != want {
			stale = true
		}
		parts = append(parts, c)
	}
	// Without a fleet each proxy numbers its own epochs: once each is
	// checked against its own step's, they are one step's evidence.
	first := parts[0].Epoch
	baselines := 0
	for i := range parts {
		parts[i].Epoch = first
		if parts[i].Baseline != nil {
			baselines++
		}
	}
	sum, err := ledgerfile.MergeCohorts(parts...)
	if err != nil {
		return Cohorts{}, err
	}
	if baselines != len(parts) {
		sum.Baseline = nil // judged only when every proxy has one
	}
	if stale {
		sum.Epoch = -1 // the canary ignores it and polls again
	}
	return sum, nil
}

// apiError is an admin API error answer.
type apiError struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func (a *HTTPAdmin) do(ctx context.Context, method, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrRefused, method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	client := a.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s %s: %w", ErrUnreachable, method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading the answer: %w", ErrUnreachable, method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return a.statusError(method, url, resp.StatusCode, data)
	}
	if len(data) > maxAnswer {
		return fmt.Errorf("%w: %s %s: answer over %d bytes", ErrRefused, method, url, maxAnswer)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s %s: the answer is not the admin API's JSON: %w", ErrRefused, method, url, err)
	}
	return nil
}

func (a *HTTPAdmin) statusError(method, url string, status int, data []byte) error {
	var ae apiError
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &ae) == nil && ae.Error != "" {
		msg = ae.Error
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	what := fmt.Sprintf("%s %s: %d", method, url, status)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		src := a.TokenSource
		if a.Token == "" || src == "" {
			src = "no token was given (--admin-token or DARKTIME_SHADOW_ADMIN_TOKEN)"
		} else {
			src = "the token from " + src + " is not the proxy's"
		}
		return fmt.Errorf("%w: %s: %s: %s", ErrUnauthorized, what, src, msg)
	case status == http.StatusNotFound && strings.HasSuffix(url, "/_darktime/step"):
		return fmt.Errorf("%w: %s: this proxy has no step API (an older darktime shadow?): %s", ErrRefused, what, msg)
	case status >= 500:
		return fmt.Errorf("%w: %s: %s", ErrUnreachable, what, msg)
	}
	return fmt.Errorf("%w: %s: %s", ErrRefused, what, msg)
}
