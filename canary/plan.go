package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/yamlsafe"
	"github.com/darktime/darktime/shadow/judge"
)

// ErrInvalidPlan is wrapped by every error about a plan: bad input, exit
// code 2.
var ErrInvalidPlan = errors.New("invalid canary plan")

// Plan is a rollout: the proxies to drive, what to judge with and the
// steps. Its YAML form is the plan file (README: darktime canary).
type Plan struct {
	// Admin are the admin API base URLs of the proxies (every one is
	// stepped and rolled back).
	Admin []string `yaml:"admin" json:"admin"`
	// Route is the route whose share the steps set ("" the default).
	Route string `yaml:"route" json:"route"`
	// Fleet reads the evidence with scope=fleet from the first proxy (it
	// gathers its peers'); without it every proxy is read and the
	// cohorts are added up.
	Fleet bool `yaml:"fleet" json:"fleet"`
	// Baseline says a baseline runs: the candidate is judged against it,
	// and a snapshot without one is not judged.
	Baseline bool `yaml:"baseline" json:"baseline"`
	// Poll is how often the evidence is read (default 1s).
	Poll time.Duration `yaml:"poll" json:"poll"`
	// Thresholds configure the judge; zero fields take its defaults.
	Thresholds judge.Thresholds `yaml:"thresholds" json:"thresholds"`
	Steps      []Step           `yaml:"steps" json:"steps"`
	Webhooks   Webhooks         `yaml:"webhooks" json:"webhooks"`
}

// Step is one share of users in one mode.
type Step struct {
	Name    string  `yaml:"name" json:"name"`
	Mode    string  `yaml:"mode" json:"mode"` // mirror or divert
	Percent float64 `yaml:"percent" json:"percent"`
	// MinDuration is how long the step runs before its first judgement,
	// MinEvents how many reconciled events of the candidate's cohort it
	// waits for then, and MaxDuration how long it may hold before it is
	// rolled back.
	//
	// A divert step at 100% is the full promotion (Full): it can only be
	// the last step, and it is not judged — no primary user is left to
	// compare with, so the previous step's verdict stands (as Flagger
	// promotes after its last analysis) — and its durations and events
	// are not used.
	MinDuration time.Duration `yaml:"min_duration" json:"min_duration"`
	MinEvents   int64         `yaml:"min_events" json:"min_events"`
	MaxDuration time.Duration `yaml:"max_duration" json:"max_duration"`
}

// Full says the step is the full promotion: every user diverted.
func (s Step) Full() bool { return s.Mode == "divert" && s.Percent == 100 }

// Webhooks are called at promotions and at a rollback.
type Webhooks struct {
	// ConfirmPromotion is POSTed before each promotion to the next step;
	// an answer other than 2xx blocks it.
	ConfirmPromotion *Webhook `yaml:"confirm_promotion" json:"confirm_promotion,omitempty"`
	// Rollback is POSTed after a rollback.
	Rollback *Webhook `yaml:"rollback" json:"rollback,omitempty"`
}

// Webhook is a URL and how long a call may take (default 10s).
type Webhook struct {
	URL     string        `yaml:"url" json:"url"`
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// Defaults and bounds of a plan.
const (
	DefaultPoll           = time.Second
	DefaultWebhookTimeout = 10 * time.Second
	maxSteps              = 100
	maxAdmins             = 64
)

var stepName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// PlanError is an error in a plan, with its position when known. It wraps
// ErrInvalidPlan.
type PlanError struct {
	File         string // "" when the plan did not come from a file
	Line, Column int    // from 1; 0 when unknown
	Msg          string
}

func (e *PlanError) Error() string {
	var b strings.Builder
	b.WriteString("canary plan")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d, column %d", e.Line, e.Column)
	}
	return b.String() + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidPlan) true.
func (e *PlanError) Is(target error) bool { return target == ErrInvalidPlan }

// ParsePlan parses and validates a YAML plan: unknown keys, wrong types
// and bad values are *PlanError values with the line; so are a plan over
// 1 MiB, anchors and aliases and deep nesting (internal/yamlsafe). The
// defaults are filled in.
func ParsePlan(data []byte) (Plan, error) { return parsePlan(data, nil) }

// parsePlan is ParsePlan where admin, when given, replaces the plan's
// admin: before validation.
func parsePlan(data []byte, admin []string) (Plan, error) {
	var p Plan
	if err := yamlsafe.Check(data, yamlsafe.Limits{}); err != nil {
		pe := &PlanError{Msg: err.Error()}
		var ye *yamlsafe.Error
		if errors.As(err, &ye) {
			pe.Line, pe.Column, pe.Msg = ye.Line, ye.Column, ye.Msg
		}
		return p, pe
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return p, &PlanError{Msg: "empty plan: admin: [URL] and steps: are needed"}
	}
	if err := decodeYAML(data, &p); err != nil {
		pe := &PlanError{}
		pe.Msg, pe.Line, pe.Column = yamlsafe.Position(err)
		if strings.Contains(pe.Msg, `unknown field "token"`) || strings.Contains(pe.Msg, `unknown field "admin_token"`) {
			pe.Msg += ": the admin token is not kept in the plan: use --admin-token or DARKTIME_SHADOW_ADMIN_TOKEN"
		}
		if pe.Line == 0 {
			pe.Line, pe.Column = yamlsafe.QuotedPosition(data, pe.Msg)
		}
		return Plan{}, pe
	}
	if admin != nil {
		p.Admin = append([]string(nil), admin...)
	}
	if err := p.Validate(); err != nil {
		pe := &PlanError{Msg: err.Error()}
		var fe *fieldError
		if errors.As(err, &fe) {
			pe.Line, pe.Column = yamlsafe.PathPosition(data, fe.path)
		}
		return Plan{}, pe
	}
	return p, nil
}

// ReadPlanFile reads and parses a plan file: a regular file (or, with
// allowSpecial, a FIFO or a device) of at most 1 MiB; ctx stops the read.
func ReadPlanFile(ctx context.Context, name string, allowSpecial bool) (Plan, error) {
	return ReadPlanFileWith(ctx, name, allowSpecial, nil)
}

// ReadPlanFileWith is ReadPlanFile for a run that owns its proxies
// (darktime run): admin, when given, replaces the plan's admin: before
// validation, so the file may leave it out.
func ReadPlanFileWith(ctx context.Context, name string, allowSpecial bool, admin []string) (Plan, error) {
	data, err := inputfile.Read(ctx, name, inputfile.Options{
		MaxBytes: yamlsafe.MaxBytes, AllowSpecial: allowSpecial, AllowSpecialHint: "--allow-special-files",
	})
	if err != nil {
		return Plan{}, fmt.Errorf("%w: %w", ErrInvalidPlan, err)
	}
	p, err := parsePlan(data, admin)
	var pe *PlanError
	if errors.As(err, &pe) {
		pe.File = name
	}
	return p, err
}

// fieldError is a validation error at a YAML path ("$.steps[2].percent").
type fieldError struct {
	path, msg string
}

func (e *fieldError) Error() string { return e.msg }

func fieldErr(path, format string, args ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, args...)}
}

// Validate checks a plan and fills in its defaults.
func (p *Plan) Validate() error {
	if err := p.validateAdmin(); err != nil {
		return err
	}
	switch {
	case p.Poll < 0:
		return fieldErr("$.poll", "poll: %v is negative", p.Poll)
	case p.Poll == 0:
		p.Poll = DefaultPoll
	case p.Poll < time.Millisecond:
		return fieldErr("$.poll", "poll: %v is under 1ms", p.Poll)
	}
	if err := validateThresholds(p.Thresholds); err != nil {
		return err
	}
	if err := p.validateSteps(); err != nil {
		return err
	}
	if err := p.Webhooks.ConfirmPromotion.validate("$.webhooks.confirm_promotion"); err != nil {
		return err
	}
	return p.Webhooks.Rollback.validate("$.webhooks.rollback")
}

func (p *Plan) validateAdmin() error {
	if len(p.Admin) == 0 {
		return fieldErr("$.admin", "admin: no proxy: give the admin API URL of at least one (admin: [http://127.0.0.1:9092])")
	}
	if len(p.Admin) > maxAdmins {
		return fieldErr("$.admin", "admin: %d proxies, more than %d", len(p.Admin), maxAdmins)
	}
	seen := map[string]bool{}
	for i, a := range p.Admin {
		path := fmt.Sprintf("$.admin[%d]", i)
		if err := checkURL(a, false); err != nil {
			return fieldErr(path, "admin[%d]: %v", i, err)
		}
		a = strings.TrimRight(a, "/")
		if seen[a] {
			return fieldErr(path, "admin[%d]: %s is listed twice", i, a)
		}
		seen[a] = true
		p.Admin[i] = a
	}
	return nil
}

// checkURL accepts an absolute http or https URL with a host and no
// credentials or fragment, and a query only when query is set (a
// webhook's secret is often there).
func checkURL(s string, query bool) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the URL must start with http:// or https://", s)
	case u.Host == "":
		return fmt.Errorf("%q: the URL has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q: no credentials in the URL (the admin token comes from --admin-token)", redact(u.Redacted()))
	case u.Fragment != "" || (u.RawQuery != "" && !query):
		return fmt.Errorf("%q: no query or fragment in the URL", redact(s))
	}
	return nil
}

func validateThresholds(t judge.Thresholds) error {
	pos := []struct {
		name string
		v    float64
	}{
		{"alpha", t.Alpha}, {"tolerance_ms", t.ToleranceMS}, {"tolerance", t.Tolerance}, {"tail_ratio", t.TailRatio},
		{"min_samples", float64(t.MinSamples)}, {"min_tail_samples", float64(t.MinTailSamples)},
		{"min_events", float64(t.MinEvents)}, {"max_unexplained_ppm", t.MaxUnexplainedPPM},
		{"max_error_rate_delta", t.MaxErrorRateDelta}, {"max_reconnect_rate_delta", t.MaxReconnectRateDelta},
		{"min_streams", float64(t.MinStreams)},
	}
	for _, f := range pos {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fieldErr("$.thresholds."+f.name, "thresholds.%s: %v: must be a positive number (0 or absent: the judge's default)", f.name, f.v)
		}
	}
	if t.Alpha >= 0.5 {
		return fieldErr("$.thresholds.alpha", "thresholds.alpha: %v: a significance level is below 0.5 (default 0.01)", t.Alpha)
	}
	if t.TailRatio != 0 && t.TailRatio < 1 {
		return fieldErr("$.thresholds.tail_ratio", "thresholds.tail_ratio: %v: below 1 would fail a candidate identical to the reference", t.TailRatio)
	}
	return nil
}

func (p *Plan) validateSteps() error {
	if len(p.Steps) == 0 {
		return fieldErr("$.steps", "steps: none: a plan needs at least one step ({name, mode, percent, max_duration})")
	}
	if len(p.Steps) > maxSteps {
		return fieldErr("$.steps", "steps: %d, more than %d", len(p.Steps), maxSteps)
	}
	seen := map[string]int{}
	for i := range p.Steps {
		if err := p.Steps[i].validate(i); err != nil {
			return err
		}
		if j, dup := seen[p.Steps[i].Name]; dup {
			return fieldErr(fmt.Sprintf("$.steps[%d].name", i), "steps[%d]: the name %q is also step %d's: names must be unique", i, p.Steps[i].Name, j)
		}
		seen[p.Steps[i].Name] = i
		if p.Steps[i].Full() && i != len(p.Steps)-1 {
			return fieldErr(fmt.Sprintf("$.steps[%d].percent", i), "steps[%d] (%s): divert 100%% is the full promotion: it can only be the last step", i, p.Steps[i].Name)
		}
		if p.Steps[i].Full() && i == 0 {
			return fieldErr(fmt.Sprintf("$.steps[%d].percent", i), "steps[%d] (%s): divert 100%% is the full promotion, not judged: a plan needs a judged step before it", i, p.Steps[i].Name)
		}
	}
	return nil
}

func (s *Step) validate(i int) error {
	at := func(f string) string { return fmt.Sprintf("$.steps[%d].%s", i, f) }
	if !stepName.MatchString(s.Name) {
		return fieldErr(at("name"), "steps[%d].name: %q: a name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", i, s.Name)
	}
	if s.Mode != "mirror" && s.Mode != "divert" {
		return fieldErr(at("mode"), "steps[%d] (%s).mode: %q: mirror or divert", i, s.Name, s.Mode)
	}
	if math.IsNaN(s.Percent) || s.Percent <= 0 || s.Percent > 100 {
		return fieldErr(at("percent"), "steps[%d] (%s).percent: %v: more than 0, at most 100", i, s.Name, s.Percent)
	}
	if c := s.Percent * 100; math.Abs(c-math.Round(c)) > 1e-6 {
		return fieldErr(at("percent"), "steps[%d] (%s).percent: %v: two decimals at most (one bucket is 0.01%%)", i, s.Name, s.Percent)
	}
	if s.MinDuration < 0 {
		return fieldErr(at("min_duration"), "steps[%d] (%s).min_duration: %v is negative", i, s.Name, s.MinDuration)
	}
	if s.MinEvents < 0 {
		return fieldErr(at("min_events"), "steps[%d] (%s).min_events: %d is negative", i, s.Name, s.MinEvents)
	}
	if s.MaxDuration <= 0 && !s.Full() {
		return fieldErr(at("max_duration"), "steps[%d] (%s).max_duration: needed and positive: how long the step may hold before it is rolled back", i, s.Name)
	}
	if s.MaxDuration < s.MinDuration {
		return fieldErr(at("max_duration"), "steps[%d] (%s).max_duration: %v is shorter than min_duration %v", i, s.Name, s.MaxDuration, s.MinDuration)
	}
	return nil
}

func (w *Webhook) validate(path string) error {
	if w == nil {
		return nil
	}
	name := strings.TrimPrefix(path, "$.")
	if err := checkURL(w.URL, true); err != nil {
		return fieldErr(path+".url", "%s.url: %v", name, err)
	}
	switch {
	case w.Timeout < 0:
		return fieldErr(path+".timeout", "%s.timeout: %v is negative", name, w.Timeout)
	case w.Timeout == 0:
		w.Timeout = DefaultWebhookTimeout
	}
	return nil
}

// decodeYAML decodes strictly, and turns a panic of the YAML library on
// malformed input into an error.
func decodeYAML(data []byte, p *Plan) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot parse the YAML (%v)", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, p, yaml.DisallowUnknownField())
}
