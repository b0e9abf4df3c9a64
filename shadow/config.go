package shadow

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mode says what a route does with selected users.
type Mode string

const (
	// ModeOff proxies everyone to the primary and selects no one.
	ModeOff Mode = "off"
	// ModeDivert serves selected users from the candidate (a canary).
	ModeDivert Mode = "divert"
	// ModeMirror serves everyone from the primary and, for selected users,
	// sends the same request to the candidate too (a dark launch).
	ModeMirror Mode = "mirror"
)

// Key sources: where the user key that picks a bucket comes from.
const (
	KeyCookie = "cookie"
	KeyHeader = "header"
	KeyQuery  = "query"
	KeyIP     = "ip"
)

// Identities of events in the reconciliation ledger.
const (
	// IdentityData identifies an event by a digest of its type and data:
	// right when primary and candidate assign their own ids.
	IdentityData = "data"
	// IdentityID identifies an event by its type and id field: right when
	// both sides share ids (one broker, e.g. the same Redis).
	IdentityID = "id"
)

// DefaultHeader marks every request the proxy sends to the candidate or
// the baseline, so their side effects can stay in their own world.
const DefaultHeader = "X-Darktime-Shadow"

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid shadow config")

// Config configures a Proxy. Only Primary (and Candidate, unless every
// route is off) are required; every other zero value means the default
// documented on the field. It is also the YAML config file's schema (see
// LoadConfig), so field names below are given with their YAML keys.
type Config struct {
	// Listen and Admin are the addresses of the proxy and its admin API
	// (used by the CLI; a Proxy itself serves whatever listener it gets).
	Listen string `yaml:"listen" json:"listen,omitempty"`
	Admin  string `yaml:"admin" json:"admin,omitempty"`

	// Primary is the production service's base URL (http or https).
	Primary string `yaml:"primary" json:"primary"`
	// Candidate is the new code's base URL.
	Candidate string `yaml:"candidate" json:"candidate,omitempty"`
	// Baseline, optional, is a second primary: mirrored like the candidate
	// and reconciled in its own ledger, it measures the natural noise.
	Baseline string `yaml:"baseline" json:"baseline,omitempty"`

	// Mode and Percent are the defaults of routes that do not set their
	// own (mode "off", 0%). Percent has at most two decimals.
	Mode    Mode    `yaml:"mode" json:"mode"`
	Percent float64 `yaml:"percent" json:"percent"`
	// MirrorUnsafe is Route.MirrorUnsafe for requests no route matches.
	MirrorUnsafe bool `yaml:"mirror_unsafe" json:"mirror_unsafe,omitempty"`

	// Key picks the user key that selects a bucket.
	Key KeyConfig `yaml:"key" json:"key"`

	// Routes are matched by longest path prefix; a request no route
	// matches uses Mode and Percent.
	Routes []Route `yaml:"routes" json:"routes,omitempty"`

	// TrustedProxies (addresses or CIDR prefixes) are the peers whose
	// X-Forwarded-For / Forwarded chain the proxy passes on, to the primary
	// and the mirrors; from anyone else it sends only the peer's address
	// (and no Forwarded), so a client cannot pose as another — or as
	// loopback — to the servers behind. The ip key follows the same rule:
	// the client a trusted proxy forwarded for, else the peer.
	TrustedProxies []string `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`

	// CandidateHeaders are the header rules of requests to the candidate
	// and the baseline where a route has none of its own (default: what
	// the primary gets).
	CandidateHeaders *HeaderRules `yaml:"candidate_headers" json:"candidate_headers,omitempty"`

	// AdminToken, when set, is required as "Authorization: Bearer TOKEN"
	// on every admin endpoint but /_darktime/healthz (401 without, 403
	// when wrong). It is never in the config file, never shown by GET
	// /_darktime/config, and Reload keeps the one the Proxy started with:
	// the admin API cannot change who may call it. darktime shadow takes
	// it from --admin-token or DARKTIME_SHADOW_ADMIN_TOKEN and refuses an
	// admin listener beyond loopback without one (CheckAdminListener).
	AdminToken string `yaml:"-" json:"-"`

	Mirror  MirrorConfig  `yaml:"mirror" json:"mirror"`
	Breaker BreakerConfig `yaml:"breaker" json:"breaker"`
	Ledger  LedgerConfig  `yaml:"ledger" json:"ledger"`

	// Fleet, when its Redis is set, shares the rollout state (modes,
	// shares, epoch) and the evidence with the other instances of the
	// fleet (fleet.go). It is fixed at New: Reload keeps the first.
	Fleet FleetConfig `yaml:"fleet" json:"fleet,omitzero"`

	// Logger defaults to discarding (the CLI injects its logger).
	Logger *slog.Logger `yaml:"-" json:"-"`
	// Registerer, if set, receives the proxy's metrics (never the global
	// registry by default). Gatherer serves /metrics on the admin handler.
	Registerer prometheus.Registerer `yaml:"-" json:"-"`
	Gatherer   prometheus.Gatherer   `yaml:"-" json:"-"`
	// Now is the clock of reconciliation (time.Now).
	Now func() time.Time `yaml:"-" json:"-"`
}

// KeyConfig says where the user key comes from.
type KeyConfig struct {
	// From is cookie, header, query or ip (default ip: the peer's address,
	// or the client a trusted proxy forwarded for; see TrustedProxies).
	From string `yaml:"from" json:"from"`
	// Name is the cookie, header or query parameter (not used for ip).
	Name string `yaml:"name" json:"name,omitempty"`
	// Salt is hashed with the key: change it to reshuffle who is selected.
	// Every proxy instance must use the same salt.
	Salt string `yaml:"salt" json:"salt,omitempty"`
}

// Route configures requests whose path starts with Path.
type Route struct {
	Path string `yaml:"path" json:"path"`
	// Mode and Percent default to the Config's.
	Mode    Mode     `yaml:"mode" json:"mode,omitempty"`
	Percent *float64 `yaml:"percent" json:"percent,omitempty"`
	// MirrorUnsafe allows mirroring non-idempotent requests (POST, PUT,
	// PATCH, DELETE), e.g. publishes. Off by default: a mirrored write
	// runs on the candidate too, so turn it on only where the candidate's
	// side effects stay in its own world.
	MirrorUnsafe bool `yaml:"mirror_unsafe" json:"mirror_unsafe,omitempty"`
	// CandidatePath, when set, replaces Path in requests sent to the
	// candidate and baseline (their own publish endpoint, say).
	CandidatePath string `yaml:"candidate_path" json:"candidate_path,omitempty"`
	// CandidateHeaders, when given, replace Config.CandidateHeaders for
	// this route (an empty mapping, {}, forwards everything again).
	CandidateHeaders *HeaderRules `yaml:"candidate_headers" json:"candidate_headers,omitempty"`
}

// MirrorConfig bounds what mirroring may cost.
type MirrorConfig struct {
	// Timeout bounds a mirrored request, and the wait for a mirrored
	// stream's or a diverted request's response headers (5s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	// MaxBody is the largest request body mirrored; larger bodies go to
	// the primary only (64 KiB).
	MaxBody int64 `yaml:"max_body" json:"max_body"`
	// MaxInflight bounds mirrored ordinary requests in flight (1000);
	// beyond it requests are not mirrored (counted).
	MaxInflight int `yaml:"max_inflight" json:"max_inflight"`
	// MaxStreams bounds mirrored streams open at once (20000).
	MaxStreams int `yaml:"max_streams" json:"max_streams"`
	// MaxPending bounds the events one stream's reconciliation may wait
	// for (10000); past it the stream stops being reconciled (counted).
	MaxPending int `yaml:"max_pending" json:"max_pending"`
	// Header marks mirrored and diverted requests (X-Darktime-Shadow).
	Header string `yaml:"header" json:"header"`
	// Identity is data (default) or id: see IdentityData and IdentityID.
	Identity string `yaml:"identity" json:"identity"`
	// IgnoreEvents lists event types left out of reconciliation; a
	// trailing * matches a prefix (default: darktime.*, the reference
	// server's per-node control events).
	IgnoreEvents []string `yaml:"ignore_events" json:"ignore_events"`
}

// BreakerConfig configures the circuit breaker of each candidate.
type BreakerConfig struct {
	// Failures in a row that open the circuit (5).
	Failures int `yaml:"failures" json:"failures"`
	// Cooldown is how long it stays open before one probe (10s).
	Cooldown time.Duration `yaml:"cooldown" json:"cooldown"`
}

// LedgerConfig configures reconciliation.
type LedgerConfig struct {
	// Settle is how long an event may wait for its counterpart before it
	// counts as missing on the candidate, or extra (5s).
	Settle time.Duration `yaml:"settle" json:"settle"`
	// Late: a candidate event delivered more than this after the
	// primary's counts as late (250ms).
	Late time.Duration `yaml:"late" json:"late"`
	// Edge is the guard of a stream's edges: an unmatched event delivered
	// within it of the later open (or the other side's close) may have
	// been published while only one side was listening, and counts as
	// edge_missing or edge_extra (LEDGER.md). Shorter than Settle (Late,
	// at most half of Settle).
	Edge time.Duration `yaml:"edge" json:"edge"`
	// File, when set, receives the ledger as JSON on Shutdown.
	File string `yaml:"file" json:"file,omitempty"`
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeOff
	}
	if c.Key.From == "" {
		c.Key.From = KeyIP
	}
	m := &c.Mirror
	if m.Timeout <= 0 {
		m.Timeout = 5 * time.Second
	}
	if m.MaxBody <= 0 {
		m.MaxBody = 64 << 10
	}
	if m.MaxInflight <= 0 {
		m.MaxInflight = 1000
	}
	if m.MaxStreams <= 0 {
		m.MaxStreams = 20000
	}
	if m.MaxPending <= 0 {
		m.MaxPending = 10000
	}
	if m.Header == "" {
		m.Header = DefaultHeader
	}
	if m.Identity == "" {
		m.Identity = IdentityData
	}
	if m.IgnoreEvents == nil {
		m.IgnoreEvents = []string{"darktime.*"}
	}
	if c.Breaker.Failures <= 0 {
		c.Breaker.Failures = 5
	}
	if c.Breaker.Cooldown <= 0 {
		c.Breaker.Cooldown = 10 * time.Second
	}
	if c.Ledger.Settle <= 0 {
		c.Ledger.Settle = 5 * time.Second
	}
	if c.Ledger.Late <= 0 {
		c.Ledger.Late = 250 * time.Millisecond
	}
	if c.Ledger.Edge <= 0 {
		c.Ledger.Edge = min(c.Ledger.Late, c.Ledger.Settle/2)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// fieldError is a validation error at a YAML path ("$.routes[1].percent"),
// which LoadConfig turns into a line number.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string {
	return strings.TrimPrefix(strings.TrimPrefix(e.path, "$"), ".") + ": " + e.msg
}

func (e *fieldError) Is(target error) bool { return target == ErrInvalidConfig }

func fieldErr(path, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

// Validate reports the first problem of c (after defaults), with a
// message that says how to fix it. The error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := checkURL("$.primary", c.Primary, true); err != nil {
		return err
	}
	needCandidate := c.Mode != ModeOff
	for _, r := range c.Routes {
		if r.Mode != "" && r.Mode != ModeOff {
			needCandidate = true
		}
	}
	if err := checkURL("$.candidate", c.Candidate, needCandidate); err != nil {
		return err
	}
	if err := checkURL("$.baseline", c.Baseline, false); err != nil {
		return err
	}
	if err := checkMode("$.mode", c.Mode); err != nil {
		return err
	}
	if _, err := parseTrusted(c.TrustedProxies); err != nil {
		return err
	}
	if err := checkAdminToken(c.AdminToken); err != nil {
		return err
	}
	if err := c.Fleet.check(); err != nil {
		return err
	}
	if err := c.CandidateHeaders.check("$.candidate_headers", neverNamed(c)); err != nil {
		return err
	}
	if _, err := basisPoints("$.percent", c.Percent); err != nil {
		return err
	}
	switch c.Key.From {
	case KeyCookie, KeyHeader, KeyQuery:
		if c.Key.Name == "" {
			return fieldErr("$.key.name", "key.from %s needs the %s's name", c.Key.From, c.Key.From)
		}
	case KeyIP:
	default:
		return fieldErr("$.key.from", "%q is not cookie, header, query or ip", c.Key.From)
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		at := fmt.Sprintf("$.routes[%d]", i)
		if !strings.HasPrefix(r.Path, "/") {
			return fieldErr(at+".path", "path %q must start with /", r.Path)
		}
		if seen[r.Path] {
			return fieldErr(at+".path", "path %q is listed twice", r.Path)
		}
		seen[r.Path] = true
		if r.Mode != "" {
			if err := checkMode(at+".mode", r.Mode); err != nil {
				return err
			}
		}
		if r.Percent != nil {
			if _, err := basisPoints(at+".percent", *r.Percent); err != nil {
				return err
			}
		}
		if r.CandidatePath != "" && !strings.HasPrefix(r.CandidatePath, "/") {
			return fieldErr(at+".candidate_path", "%q must start with /", r.CandidatePath)
		}
		if err := r.CandidateHeaders.check(at+".candidate_headers", neverNamed(c)); err != nil {
			return err
		}
	}
	if c.Mirror.Identity != IdentityData && c.Mirror.Identity != IdentityID {
		return fieldErr("$.mirror.identity", "%q is not data or id", c.Mirror.Identity)
	}
	if c.Ledger.Edge >= c.Ledger.Settle {
		return fieldErr("$.ledger.edge", "edge %v must be shorter than settle %v (an edge is judged when its event settles)", c.Ledger.Edge, c.Ledger.Settle)
	}
	if strings.ContainsAny(c.Mirror.Header, " :\r\n") {
		return fieldErr("$.mirror.header", "%q is not a header name", c.Mirror.Header)
	}
	return nil
}

func checkMode(path string, m Mode) error {
	switch m {
	case ModeOff, ModeDivert, ModeMirror:
		return nil
	}
	return fieldErr(path, "mode %q is not divert, mirror or off", string(m))
}

func checkURL(path, raw string, required bool) error {
	if raw == "" {
		if required {
			return fieldErr(path, "missing: give the service's base URL, e.g. http://127.0.0.1:8080")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fieldErr(path, "bad URL %q: %v", raw, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fieldErr(path, "bad URL %q: the scheme must be http or https", raw)
	}
	if u.Host == "" {
		return fieldErr(path, "bad URL %q: no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fieldErr(path, "bad URL %q: a base URL has no user, query or fragment", raw)
	}
	return nil
}

// basisPoints turns a percentage with at most two decimals into 0..10000.
func basisPoints(path string, p float64) (int, error) {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return 0, fieldErr(path, "percent %v is not between 0 and 100", p)
	}
	bp := math.Round(p * 100)
	if math.Abs(p*100-bp) > 1e-6 {
		return 0, fieldErr(path, "percent %v has more than two decimals (buckets are 0.01%% each)", p)
	}
	return int(bp), nil
}

// ParsePercent parses a percentage as given on a command line or to the
// admin API ("12.5", "0.01", "100").
func ParsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: percent %q is not a number", ErrInvalidConfig, s)
	}
	if _, err := basisPoints("$.percent", p); err != nil {
		return 0, err
	}
	return p, nil
}
