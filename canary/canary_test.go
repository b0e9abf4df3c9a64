package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/darktime/darktime/shadow/judge"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func run(t *testing.T, p Plan, a Admin) (*Result, string, error) {
	t.Helper()
	var out bytes.Buffer
	c, err := New(Config{Plan: p, Admin: a, Out: &out, Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context())
	return res, out.String(), err
}

// TestStepMachine: what each kind of evidence makes of a plan.
func TestStepMachine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		evidence  func(StepRequest, int64, int) (Cohorts, error)
		outcome   Outcome
		steps     []string // stepped, in order
		rollbacks int
		reason    string // part of the result's reason
	}{
		{"identical: promoted through every step", func(StepRequest, int64, int) (Cohorts, error) { return same(20000), nil },
			Promoted, []string{"mirror-5", "divert-1", "divert-5"}, 0, "every step promoted"},
		{"drops at divert-1: rolled back there", func(s StepRequest, _ int64, _ int) (Cohorts, error) {
			c := same(20000)
			if s.Mode == "divert" {
				c.Candidate.Unexplained = 20 // 1000 per million
			}
			return c, nil
		}, RolledBack, []string{"mirror-5", "divert-1"}, 1, "rolled back at step divert-1: delivery: 20 unexplained"},
		{"40 ms slower: rolled back at the first step", func(StepRequest, int64, int) (Cohorts, error) {
			c := same(20000)
			c.Candidate = cohort(2000, 40, 20000, 0)
			return c, nil
		}, RolledBack, []string{"mirror-5"}, 1, "delay: slower by more than"},
		{"too few events for the judge: holds, then rolled back", func(StepRequest, int64, int) (Cohorts, error) { return same(500), nil },
			RolledBack, []string{"mirror-5"}, 1, "evidence never sufficed in the step's max_duration 200ms: delivery: 500 reconciled events, fewer than the 10000 needed"},
		{"enough events later: held, then promoted", func(_ StepRequest, _ int64, poll int) (Cohorts, error) {
			return same(int64(poll) * 4000), nil
		}, Promoted, []string{"mirror-5", "divert-1", "divert-5"}, 0, "every step promoted"},
		{"snapshots of an old epoch are ignored", func(_ StepRequest, epoch int64, poll int) (Cohorts, error) {
			if poll <= 3 {
				c := same(20000)
				c.Epoch = epoch + 100           // not this step's
				c.Candidate.Unexplained = 20000 // would roll back if it were looked at
				return c, nil
			}
			return same(20000), nil
		}, Promoted, []string{"mirror-5", "divert-1", "divert-5"}, 0, "every step promoted"},
		{"a proxy that stops answering mid-step", func(StepRequest, int64, int) (Cohorts, error) {
			return Cohorts{}, fmt.Errorf("%w: connection refused", ErrUnreachable)
		}, Unreachable, []string{"mirror-5"}, 0, "the evidence could not be read"},
		{"a proxy that fails once", func(_ StepRequest, _ int64, poll int) (Cohorts, error) {
			if poll == 1 {
				return Cohorts{}, fmt.Errorf("%w: 502", ErrUnreachable)
			}
			return same(20000), nil
		}, Promoted, []string{"mirror-5", "divert-1", "divert-5"}, 0, "every step promoted"},
		{"a token refused mid-run", func(StepRequest, int64, int) (Cohorts, error) {
			return Cohorts{}, fmt.Errorf("%w: 403", ErrUnauthorized)
		}, Refused, []string{"mirror-5"}, 0, "admin token refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fa := &fakeAdmin{evidence: c.evidence}
			res, out, err := run(t, testPlan("mirror-5", "divert-1", "divert-5"), fa)
			t.Log(out)
			if res.Outcome != c.outcome || !strings.Contains(res.Reason, c.reason) {
				t.Errorf("outcome %s: %s; want %s with %q", res.Outcome, res.Reason, c.outcome, c.reason)
			}
			if (err == nil) != (c.outcome == Promoted || c.outcome == RolledBack) {
				t.Errorf("error %v for outcome %s", err, res.Outcome)
			}
			if got := fa.stepNames(); !slices.Equal(got, c.steps) {
				t.Errorf("stepped %v; want %v", got, c.steps)
			}
			if fa.rollbacks != c.rollbacks {
				t.Errorf("%d rollbacks; want %d", fa.rollbacks, c.rollbacks)
			}
			if len(res.Steps) != len(c.steps) {
				t.Fatalf("%d steps recorded", len(res.Steps))
			}
			last := res.Steps[len(res.Steps)-1]
			if last.Decision == "" || last.Ended.IsZero() {
				t.Errorf("the last step is not closed: %+v", last)
			}
			if res.Outcome == RolledBack && (res.Rollback == nil || res.Rollback.Step != last.Name || res.Rollback.Reason == "") {
				t.Errorf("rollback record %+v", res.Rollback)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for o, want := range map[Outcome]int{Promoted: 0, RolledBack: 1, Refused: 2, Unreachable: 3, Interrupted: 3} {
		if got := o.ExitCode(); got != want {
			t.Errorf("%s exits %d; want %d", o, got, want)
		}
	}
	for err, want := range map[error]Outcome{
		context.Canceled: Interrupted, fmt.Errorf("x: %w", ErrUnauthorized): Refused,
		fmt.Errorf("x: %w", ErrRefused): Refused, fmt.Errorf("x: %w", ErrUnreachable): Unreachable,
	} {
		if got := outcomeOf(err); got != want {
			t.Errorf("outcomeOf(%v) = %s; want %s", err, got, want)
		}
	}
}

func TestStepRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want Outcome
	}{
		{fmt.Errorf("%w: no step API", ErrRefused), Refused},
		{fmt.Errorf("%w: dial: connection refused", ErrUnreachable), Unreachable},
	} {
		fa := &fakeAdmin{stepErr: c.err}
		res, _, err := run(t, testPlan("a"), fa)
		if res.Outcome != c.want || !errors.Is(err, c.err) || res.Outcome.ExitCode() != c.want.ExitCode() {
			t.Errorf("step error %v: outcome %s, %v", c.err, res.Outcome, err)
		}
		if fa.rollbacks != 0 {
			t.Error("rolled back a step that never started")
		}
	}
}

func TestInterruptedLeavesTheShare(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	fa := &fakeAdmin{evidence: func(_ StepRequest, _ int64, poll int) (Cohorts, error) {
		if poll == 3 {
			cancel()
		}
		return same(10), nil // holds
	}}
	p := testPlan("a", "b")
	p.Steps[0].MaxDuration = time.Minute
	c, err := New(Config{Plan: p, Admin: fa})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx)
	if !errors.Is(err, context.Canceled) || res.Outcome != Interrupted || res.Outcome.ExitCode() != 3 {
		t.Fatalf("outcome %s, %v", res.Outcome, err)
	}
	if fa.rollbacks != 0 {
		t.Error("an interrupted rollout rolled back")
	}
	if res.Steps[0].Decision != string(Interrupted) {
		t.Errorf("the step's decision: %q", res.Steps[0].Decision)
	}
}

func TestBaselineNeeded(t *testing.T) {
	t.Parallel()
	fa := &fakeAdmin{evidence: func(StepRequest, int64, int) (Cohorts, error) { return same(20000), nil }}
	p := testPlan("a")
	p.Baseline = true
	res, _, _ := run(t, p, fa)
	if res.Outcome != RolledBack || !strings.Contains(res.Reason, "no baseline cohort") {
		t.Fatalf("%s: %s", res.Outcome, res.Reason)
	}
}

// TestBaselineAbsorbsNoise: a candidate as slow as its baseline (both on
// busier new instances) is promoted when judged against the baseline, and
// rolled back when judged against the primary.
func TestBaselineAbsorbsNoise(t *testing.T) {
	t.Parallel()
	noisy := func(StepRequest, int64, int) (Cohorts, error) {
		c := same(20000)
		c.Candidate = cohort(2000, 30, 20000, 0)
		b := cohort(2000, 30, 20000, 0)
		c.Baseline = &b
		return c, nil
	}
	p := testPlan("a")
	p.Baseline = true
	if res, out, _ := run(t, p, &fakeAdmin{evidence: noisy}); res.Outcome != Promoted || !strings.Contains(out, "noise (baseline against primary") {
		t.Errorf("with the baseline: %s: %s\n%s", res.Outcome, res.Reason, out)
	}
	p.Baseline = false
	if res, _, _ := run(t, p, &fakeAdmin{evidence: noisy}); res.Outcome != RolledBack {
		t.Errorf("against the primary: %s: %s", res.Outcome, res.Reason)
	}
}

func TestConfirmPromotion(t *testing.T) {
	t.Parallel()
	good := func(StepRequest, int64, int) (Cohorts, error) { return same(20000), nil }
	t.Run("allowed after two refusals", func(t *testing.T) {
		t.Parallel()
		h := newHook(t, func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		p := testPlan("a", "b", "c")
		p.Webhooks.ConfirmPromotion = &Webhook{URL: h.url}
		res, _, err := run(t, p, &fakeAdmin{evidence: good})
		if err != nil || res.Outcome != Promoted {
			t.Fatalf("%s: %s %v", res.Outcome, res.Reason, err)
		}
		calls := h.got()
		if len(calls) != 4 || calls[0].Step != "a" || calls[0].Next != "b" || calls[3].Next != "c" || calls[0].Event != "confirm_promotion" || calls[0].Verdict == nil {
			t.Errorf("webhook calls %+v", calls)
		}
		if res.Steps[0].Blocked != 2 || len(res.Steps[0].Confirmations) != 3 || res.Steps[0].Confirmations[0].Status != 503 {
			t.Errorf("step a: blocked %d, confirmations %+v", res.Steps[0].Blocked, res.Steps[0].Confirmations)
		}
	})
	t.Run("never confirmed: rolled back at max_duration", func(t *testing.T) {
		t.Parallel()
		h := newHook(t, func(int) int { return http.StatusForbidden })
		rb := newHook(t, func(int) int { return http.StatusOK })
		p := testPlan("a", "b")
		p.Webhooks.ConfirmPromotion = &Webhook{URL: h.url}
		p.Webhooks.Rollback = &Webhook{URL: rb.url}
		fa := &fakeAdmin{evidence: good}
		res, _, _ := run(t, p, fa)
		if res.Outcome != RolledBack || !strings.Contains(res.Reason, "the promotion was never confirmed") || !strings.Contains(res.Reason, "answered 403") {
			t.Fatalf("%s: %s", res.Outcome, res.Reason)
		}
		if fa.rollbacks != 1 || len(rb.got()) != 1 || rb.got()[0].Event != "rollback" || res.Rollback.Webhook.Status != 200 {
			t.Errorf("rollbacks %d, rollback webhook %+v, record %+v", fa.rollbacks, rb.got(), res.Rollback)
		}
	})
	t.Run("a later rollback verdict wins over waiting", func(t *testing.T) {
		t.Parallel()
		h := newHook(t, func(int) int { return http.StatusInternalServerError })
		p := testPlan("a", "b")
		p.Steps[0].MaxDuration = time.Minute
		p.Webhooks.ConfirmPromotion = &Webhook{URL: h.url}
		res, _, _ := run(t, p, &fakeAdmin{evidence: func(_ StepRequest, _ int64, poll int) (Cohorts, error) {
			c := same(20000)
			if poll > 3 {
				c.Candidate.Unexplained = 100
			}
			return c, nil
		}})
		if res.Outcome != RolledBack || !strings.Contains(res.Reason, "delivery") {
			t.Fatalf("%s: %s", res.Outcome, res.Reason)
		}
	})
	t.Run("not asked after the last step", func(t *testing.T) {
		t.Parallel()
		h := newHook(t, func(int) int { return http.StatusForbidden })
		p := testPlan("only")
		p.Webhooks.ConfirmPromotion = &Webhook{URL: h.url}
		if res, _, _ := run(t, p, &fakeAdmin{evidence: good}); res.Outcome != Promoted || len(h.got()) != 0 {
			t.Fatalf("%s, %d calls", res.Outcome, len(h.got()))
		}
	})
}

func TestRollbackFails(t *testing.T) {
	t.Parallel()
	fa := &fakeAdmin{rollErr: fmt.Errorf("%w: 403", ErrUnauthorized), evidence: func(StepRequest, int64, int) (Cohorts, error) {
		c := same(20000)
		c.Candidate.Unexplained = 1000
		return c, nil
	}}
	res, out, err := run(t, testPlan("a"), fa)
	if err == nil || res.Outcome != Refused || res.Rollback == nil || res.Rollback.Error == "" || !strings.Contains(out, "ROLLBACK FAILED") {
		t.Fatalf("%s: %v; rollback %+v\n%s", res.Outcome, err, res.Rollback, out)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	fa := &fakeAdmin{evidence: func(s StepRequest, _ int64, _ int) (Cohorts, error) {
		c := same(20000)
		if s.Name == "b" {
			c.Candidate.Unexplained = 1000
		}
		return c, nil
	}}
	c, err := New(Config{Plan: testPlan("a", "b"), Admin: fa, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"darktime_canary_step", nil, 2},
		{"darktime_canary_verdict", map[string]string{"step": "a", "decision": "promote"}, 1},
		{"darktime_canary_verdict", map[string]string{"step": "a", "decision": "rollback"}, 0},
		{"darktime_canary_verdict", map[string]string{"step": "b", "decision": "rollback"}, 1},
		{"darktime_canary_verdict", map[string]string{"step": "b", "decision": "promote"}, 0},
		{"darktime_canary_judgements_total", map[string]string{"step": "b", "decision": "rollback"}, 1},
		{"darktime_canary_check_value", map[string]string{"step": "b", "check": "delivery"}, 50000},
		{"darktime_canary_events", map[string]string{"step": "b", "cohort": "candidate"}, 20000},
		{"darktime_canary_outcome", map[string]string{"outcome": "rolled_back"}, 1},
		{"darktime_canary_outcome", map[string]string{"outcome": "promoted"}, 0},
	} {
		got, ok := metricValue(t, reg, w.name, w.labels)
		if !ok || got != w.want {
			t.Errorf("%s%v = %v (found %v); want %v", w.name, w.labels, got, ok, w.want)
		}
	}
	if _, err := New(Config{Plan: testPlan("a"), Admin: fa, Registerer: reg}); err == nil {
		t.Error("a second canary registered the same metrics")
	}
}

// metricValue is the value of the gauge or counter with these labels.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// TestGuardHoldsOnNaN: a check the judge passed with a number that is
// not finite holds, and its numbers are recorded as -1.
func TestGuardHoldsOnNaN(t *testing.T) {
	t.Parallel()
	v := guard(judge.Verdict{Decision: judge.Promote, Checks: []judge.Check{
		{Name: "delay", Decision: judge.Promote, P: 0.5},
		{Name: "delay_tail", Decision: judge.Promote, Value: math.NaN(), Threshold: 1.5, P: -1},
	}})
	if v.Decision != judge.Hold || v.Checks[1].Decision != judge.Hold || v.Checks[1].Value != -1 || !strings.Contains(v.Reason, "delay_tail: not a finite number") {
		t.Fatalf("%+v", v)
	}
	if v.Checks[0].Decision != judge.Promote {
		t.Errorf("a finite check changed: %+v", v.Checks[0])
	}
}

// TestSkewedClocksHold: delays of -5 ms on both sides made the judge's
// tail ratio 0/0, which it passed; the judge now holds the tail check
// itself, so the canary rolls back for want of evidence instead of
// promoting, and the result encodes.
func TestSkewedClocksHold(t *testing.T) {
	t.Parallel()
	skewed := func(StepRequest, int64, int) (Cohorts, error) {
		c := same(20000)
		for i := range c.Primary.DelayMS {
			c.Primary.DelayMS[i], c.Candidate.DelayMS[i] = -5, -5
		}
		return c, nil
	}
	res, _, _ := run(t, testPlan("a"), &fakeAdmin{evidence: skewed})
	if res.Outcome != RolledBack || !strings.Contains(res.Reason, "evidence never sufficed") || !strings.Contains(res.Reason, "delay_tail: p99 -5.0 vs -5.0 ms") {
		t.Fatalf("%s: %s", res.Outcome, res.Reason)
	}
	var buf bytes.Buffer
	if err := res.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
}

// TestFullPromotionIsNotJudged: divert 100% leaves no primary user to
// compare with; it is stepped and promoted on the previous step's
// verdict, never judged (which would hold until rolled back).
func TestFullPromotionIsNotJudged(t *testing.T) {
	t.Parallel()
	judged := map[string]int{}
	fa := &fakeAdmin{evidence: func(s StepRequest, _ int64, _ int) (Cohorts, error) {
		judged[s.Name]++
		return same(20000), nil
	}}
	p := testPlan("mirror-5", "divert-5")
	p.Steps = append(p.Steps, Step{Name: "divert-100", Mode: "divert", Percent: 100})
	res, out, err := run(t, p, fa)
	t.Log(out)
	if err != nil || res.Outcome != Promoted {
		t.Fatalf("outcome %s (%v): %s", res.Outcome, err, res.Reason)
	}
	if got := fa.stepNames(); !slices.Equal(got, []string{"mirror-5", "divert-5", "divert-100"}) {
		t.Errorf("stepped %v", got)
	}
	last := res.Steps[len(res.Steps)-1]
	if judged["divert-100"] != 0 || last.Judgements != 0 || last.Decision != "promote" || !strings.Contains(last.Reason, "full promotion") {
		t.Errorf("the full promotion was judged %d times, recorded %+v", judged["divert-100"], last)
	}
}
