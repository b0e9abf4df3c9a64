package canary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/darktime/darktime/shadow/judge"
)

// Config is a canary run. Plan and Admin are needed.
type Config struct {
	Plan  Plan
	Admin Admin
	// Out gets the verdicts as the terminal shows them (nil: none).
	Out io.Writer
	// Client calls the webhooks (default: http.DefaultClient, each call
	// bounded by its webhook's timeout).
	Client     *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now stamps the document (default time.Now); waits use real time.
	Now func() time.Time
}

// Canary runs one rollout.
type Canary struct {
	plan    Plan
	admin   Admin
	out     io.Writer
	client  *http.Client
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time
}

// rollbackTimeout bounds the rollback, which goes on after the context
// is cancelled.
const rollbackTimeout = 30 * time.Second

// New checks the config and registers the metrics.
func New(cfg Config) (*Canary, error) {
	if cfg.Admin == nil {
		return nil, errors.New("canary: Config.Admin is nil")
	}
	p := cfg.Plan
	p.Admin = append([]string(nil), p.Admin...)
	p.Steps = append([]Step(nil), p.Steps...)
	if err := p.Validate(); err != nil {
		return nil, &PlanError{Msg: err.Error()}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Canary{plan: p, admin: cfg.Admin, out: cfg.Out, client: cfg.Client, log: cfg.Logger, metrics: m, now: cfg.Now}
	if c.out == nil {
		c.out = io.Discard
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Run walks the plan's steps. The Result is never nil; the error is
// non-nil when the rollout neither promoted nor rolled back: a proxy
// unreachable or refusing (ErrUnreachable, ErrUnauthorized, ErrRefused)
// or ctx cancelled (the current share is left as it is).
func (c *Canary) Run(ctx context.Context) (*Result, error) {
	res := &Result{Schema: SchemaVersion, Started: c.now(), Plan: planDoc(c.plan)}
	err := c.run(ctx, res)
	if err != nil {
		res.Outcome, res.Reason = outcomeOf(err), err.Error()
		if n := len(res.Steps); n > 0 && res.Steps[n-1].Decision == "" {
			last := res.Steps[n-1]
			last.Decision, last.Reason, last.Ended = string(res.Outcome), err.Error(), c.now()
		}
	}
	res.Ended = c.now()
	c.metrics.ended(res.Outcome)
	c.printEnd(res)
	return res, err
}

func (c *Canary) run(ctx context.Context, res *Result) error {
	for i := range c.plan.Steps {
		c.metrics.step.Set(float64(i + 1))
		sr, err := c.runStep(ctx, i, res)
		if err != nil {
			return err
		}
		if sr.Decision == string(judge.Rollback) {
			return c.rollback(ctx, res, sr)
		}
	}
	res.Outcome = Promoted
	res.Reason = fmt.Sprintf("every step promoted, the last at %g%% (%s)", c.plan.Steps[len(c.plan.Steps)-1].Percent, c.plan.Steps[len(c.plan.Steps)-1].Name)
	return nil
}

// runStep starts step i and collects and judges until it is promoted
// (and confirmed) or must be rolled back; the error is what stopped it
// otherwise.
func (c *Canary) runStep(ctx context.Context, i int, res *Result) (*StepResult, error) {
	st := c.plan.Steps[i]
	sr := &StepResult{Name: st.Name, Mode: st.Mode, Percent: st.Percent, Started: c.now()}
	res.Steps = append(res.Steps, sr)
	fmt.Fprintf(c.out, "step %d/%d %s: %s %g%%\n", i+1, len(c.plan.Steps), st.Name, st.Mode, st.Percent)
	ans, err := c.admin.Step(ctx, StepRequest{Name: st.Name, Mode: st.Mode, Percent: st.Percent, Route: c.plan.Route})
	if err != nil {
		return sr, fmt.Errorf("step %s: %w", st.Name, err)
	}
	sr.Epoch = ans.Epoch
	c.log.Info("canary step", "step", st.Name, "mode", st.Mode, "percent", st.Percent, "epoch", ans.Epoch)
	if st.Full() {
		sr.Decision, sr.Ended = string(judge.Promote), c.now()
		sr.Reason = "the full promotion: every user is on the candidate and no primary user is left to judge against; the previous step's verdict stands"
		fmt.Fprintf(c.out, "  %s: %s\n", st.Name, sr.Reason)
		return sr, nil
	}
	start := time.Now()
	deadline := start.Add(st.MaxDuration)
	if err := sleep(ctx, st.MinDuration); err != nil {
		return sr, err
	}
	for {
		waiting, err := c.collect(ctx, i, sr)
		if err != nil || sr.Decision != "" {
			return sr, err
		}
		if !time.Now().Before(deadline) {
			if sr.pollErr != nil {
				return sr, sr.pollErr
			}
			sr.Decision = string(judge.Rollback)
			sr.Reason = fmt.Sprintf("evidence never sufficed in the step's max_duration %v: %s", st.MaxDuration, waiting)
			if sr.blocked {
				sr.Reason = fmt.Sprintf("the promotion was never confirmed in the step's max_duration %v: %s", st.MaxDuration, waiting)
			}
			sr.Ended = c.now()
			fmt.Fprintf(c.out, "  %s: rollback: %s\n", st.Name, sr.Reason)
			return sr, nil
		}
		if err := sleep(ctx, min(c.plan.Poll, time.Until(deadline))); err != nil {
			return sr, err
		}
	}
}

// collect reads the evidence once and judges it when it suffices. It
// sets sr.Decision when the step is over, and otherwise says what it is
// waiting for.
func (c *Canary) collect(ctx context.Context, i int, sr *StepResult) (waiting string, err error) {
	st := c.plan.Steps[i]
	snap, err := c.admin.Cohorts(ctx)
	sr.Polls++
	sr.pollErr, sr.blocked = nil, false
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrRefused):
		return "", fmt.Errorf("step %s: %w", st.Name, err)
	case err != nil:
		// Tried again until the step's time is out: then exit 3.
		sr.PollErrors++
		sr.pollErr = fmt.Errorf("step %s: the evidence could not be read: %w", st.Name, err)
		c.log.Warn("canary: reading the evidence", "step", st.Name, "err", err)
		return sr.pollErr.Error(), nil
	case snap.Epoch != sr.Epoch:
		sr.Stale++
		return fmt.Sprintf("no evidence of epoch %d yet (the proxy answered epoch %d)", sr.Epoch, snap.Epoch), nil
	case c.plan.Baseline && snap.Baseline == nil:
		return "the plan has baseline: true but the evidence has no baseline cohort", nil
	case snap.Candidate.Events < st.MinEvents:
		return fmt.Sprintf("%d reconciled events of the candidate's cohort, fewer than min_events %d", snap.Candidate.Events, st.MinEvents), nil
	}
	in := judge.Input{Primary: snap.Primary.Judge(), Candidate: snap.Candidate.Judge()}
	if c.plan.Baseline {
		b := snap.Baseline.Judge()
		in.Baseline = &b
	}
	v := guard(judge.Judge(in, c.plan.Thresholds))
	sr.Judgements++
	sr.Verdict, sr.Evidence = &v, evidence(snap, in)
	c.metrics.judged(st.Name, v, in)
	c.printVerdict(i, sr, v)
	switch v.Decision {
	case judge.Rollback:
		sr.Decision, sr.Reason, sr.Ended = string(judge.Rollback), v.Reason, c.now()
	case judge.Hold:
		sr.Holds++
		return v.Reason, nil
	case judge.Promote:
		if why := c.confirm(ctx, i, sr, v); why != "" {
			sr.Blocked++
			sr.blocked = true
			return why, nil
		}
		sr.Decision, sr.Reason, sr.Ended = string(judge.Promote), v.Reason, c.now()
	}
	return "", nil
}

func evidence(snap Cohorts, in judge.Input) *Evidence {
	return &Evidence{Since: snap.Since, Instances: snap.Instances, Primary: in.Primary, Candidate: in.Candidate, Baseline: in.Baseline}
}

// rollback takes the candidate's share to 0 on every proxy — even when
// ctx is cancelled meanwhile — and calls the rollback webhook.
func (c *Canary) rollback(ctx context.Context, res *Result, sr *StepResult) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	rr := &RollbackResult{At: c.now(), Step: sr.Name, Reason: sr.Reason}
	res.Rollback = rr
	var ans StepAnswer
	var err error
	for attempt := range 3 {
		if ans, err = c.admin.Rollback(ctx, c.plan.Route); err == nil || !errors.Is(err, ErrUnreachable) {
			break
		}
		c.log.Warn("canary: rollback failed, retrying", "attempt", attempt+1, "err", err)
		_ = sleep(ctx, time.Second)
	}
	rr.Epoch = ans.Epoch
	if err != nil {
		rr.Error = err.Error()
		fmt.Fprintf(c.out, "ROLLBACK FAILED at step %s: %v: the candidate may still have its share\n", sr.Name, err)
		return fmt.Errorf("the rollback at step %s failed, the candidate may still have its share: %w", sr.Name, err)
	}
	c.log.Warn("canary rolled back", "step", sr.Name, "reason", sr.Reason, "epoch", ans.Epoch)
	if h := c.plan.Webhooks.Rollback; h != nil {
		call := c.callHook(ctx, h, hookPayload{Event: "rollback", Step: sr.Name, Epoch: sr.Epoch, Decision: string(judge.Rollback), Reason: sr.Reason, Verdict: sr.Verdict})
		rr.Webhook = &call
	}
	res.Outcome = RolledBack
	res.Reason = fmt.Sprintf("rolled back at step %s: %s", sr.Name, sr.Reason)
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
