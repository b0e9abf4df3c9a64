package canary

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/darktime/darktime/shadow/judge"
)

// SchemaVersion is the "schema" of the Result document (SCHEMA.md).
const SchemaVersion = 1

// Outcome is how a rollout ended.
type Outcome string

// The outcomes, and the exit codes of darktime canary.
const (
	Promoted    Outcome = "promoted"    // every step promoted: exit 0
	RolledBack  Outcome = "rolled_back" // exit 1
	Refused     Outcome = "refused"     // a proxy refused the token or a request: exit 2
	Unreachable Outcome = "unreachable" // a proxy could not be reached: exit 3
	Interrupted Outcome = "interrupted" // stopped (Ctrl-C); the share is left as it is: exit 3
)

var outcomes = []Outcome{Promoted, RolledBack, Refused, Unreachable, Interrupted}

// ExitCode is the exit code of an outcome.
func (o Outcome) ExitCode() int {
	switch o {
	case Promoted:
		return 0
	case RolledBack:
		return 1
	case Refused:
		return 2
	}
	return 3
}

// outcomeOf is the outcome of an error that stopped the rollout.
func outcomeOf(err error) Outcome {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Interrupted
	case errors.Is(err, ErrUnauthorized):
		return Refused // the token: the user's to fix, whatever else failed
	case errors.Is(err, ErrUnreachable):
		return Unreachable
	case errors.Is(err, ErrRefused):
		return Refused
	}
	return Unreachable
}

// Result is the record of a whole rollout: the document --out writes
// (SCHEMA.md).
type Result struct {
	Schema  int       `json:"schema"`
	Outcome Outcome   `json:"outcome"`
	Reason  string    `json:"reason"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Plan    PlanDoc   `json:"plan"`
	// Steps are the steps begun, in order; the last is the one the
	// rollout ended in.
	Steps    []*StepResult   `json:"steps"`
	Rollback *RollbackResult `json:"rollback,omitempty"`
}

// StepResult is what happened in one step.
type StepResult struct {
	Name    string    `json:"name"`
	Mode    string    `json:"mode"`
	Percent float64   `json:"percent"`
	Epoch   int64     `json:"epoch"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Decision is how the step ended: promote, rollback, or the outcome
	// that stopped it (interrupted, unreachable, refused); "" while it
	// runs.
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// Judgements counts the judge's verdicts, Holds and Blocked those
	// that held or whose promotion the webhook did not confirm; Polls
	// the evidence read, Stale the snapshots of another epoch ignored,
	// PollErrors the reads that failed.
	Judgements int `json:"judgements"`
	Holds      int `json:"holds"`
	Blocked    int `json:"blocked"`
	Polls      int `json:"polls"`
	Stale      int `json:"stale"`
	PollErrors int `json:"poll_errors"`
	// Verdict is the latest verdict, Evidence the counts it was made on.
	Verdict  *judge.Verdict `json:"verdict"`
	Evidence *Evidence      `json:"evidence"`
	// Confirmations are the confirm_promotion webhook's answers.
	Confirmations []HookCall `json:"confirmations,omitempty"`

	pollErr error // the last read of the evidence failed
	blocked bool  // the last promotion was not confirmed
}

// Evidence is what the latest verdict of a step was made on: the
// cohorts' counts (their samples are summarised in the checks) and the
// proxies' instances.
type Evidence struct {
	Since     time.Time     `json:"since"`
	Instances []string      `json:"instances"`
	Primary   judge.Cohort  `json:"primary"`
	Candidate judge.Cohort  `json:"candidate"`
	Baseline  *judge.Cohort `json:"baseline"`
}

// HookCall is one webhook call: its HTTP status (0 when none came) or
// its error.
type HookCall struct {
	At     time.Time `json:"at"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// RollbackResult is the rollback: at which step, why, what the proxies
// answered and what the webhook did.
type RollbackResult struct {
	At      time.Time `json:"at"`
	Step    string    `json:"step"`
	Reason  string    `json:"reason"`
	Epoch   int64     `json:"epoch"`
	Error   string    `json:"error,omitempty"`
	Webhook *HookCall `json:"webhook,omitempty"`
}

// PlanDoc is the plan as the document records it (durations as Go
// duration strings; never the token).
type PlanDoc struct {
	Admin      []string           `json:"admin"`
	Route      string             `json:"route"`
	Fleet      bool               `json:"fleet"`
	Baseline   bool               `json:"baseline"`
	Poll       string             `json:"poll"`
	Thresholds judge.Thresholds   `json:"thresholds"`
	Steps      []StepDoc          `json:"steps"`
	Webhooks   map[string]HookDoc `json:"webhooks,omitempty"`
}

// StepDoc is a step of PlanDoc.
type StepDoc struct {
	Name        string  `json:"name"`
	Mode        string  `json:"mode"`
	Percent     float64 `json:"percent"`
	MinDuration string  `json:"min_duration"`
	MinEvents   int64   `json:"min_events"`
	MaxDuration string  `json:"max_duration"`
}

// HookDoc is a webhook of PlanDoc.
type HookDoc struct {
	URL     string `json:"url"`
	Timeout string `json:"timeout"`
}

func planDoc(p Plan) PlanDoc {
	d := PlanDoc{Admin: p.Admin, Route: p.Route, Fleet: p.Fleet, Baseline: p.Baseline, Poll: p.Poll.String(), Thresholds: p.Thresholds}
	for _, s := range p.Steps {
		d.Steps = append(d.Steps, StepDoc{s.Name, s.Mode, s.Percent, s.MinDuration.String(), s.MinEvents, s.MaxDuration.String()})
	}
	hooks := map[string]*Webhook{"confirm_promotion": p.Webhooks.ConfirmPromotion, "rollback": p.Webhooks.Rollback}
	for name, h := range hooks {
		if h != nil {
			if d.Webhooks == nil {
				d.Webhooks = map[string]HookDoc{}
			}
			d.Webhooks[name] = HookDoc{redact(h.URL), h.Timeout.String()}
		}
	}
	return d
}

// WriteJSON writes the document, indented.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
