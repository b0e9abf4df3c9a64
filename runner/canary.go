package runner

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/darktime/darktime/canary"
	"github.com/darktime/darktime/internal/defect"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/scenario"
)

// placeholderAdmin stands for the run's proxies when a plan is checked
// before they exist.
var placeholderAdmin = []string{"http://127.0.0.1:1"}

// checkCanary reads the scenario's rollout plan, if any, before anything
// starts.
func (r *Runner) checkCanary(ctx context.Context) error {
	sh := r.s.Shadow
	if sh == nil || sh.Canary == "" {
		return nil
	}
	if _, err := canary.ReadPlanFileWith(ctx, sh.Canary, false, placeholderAdmin); err != nil {
		return fmt.Errorf("shadow.canary: %w", err)
	}
	return nil
}

// canaryRun is the scenario's rollout, run beside the swarm from the
// first publish on the run's own proxies.
type canaryRun struct {
	c      *canary.Canary
	expect string
	dir    string
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	res    *canary.Result
	err    error
}

// newCanary prepares the rollout of shadow.canary; nil when there is none.
func (r *Runner) newCanary(ctx context.Context, c *cluster, dir string) (*canaryRun, error) {
	sh := r.s.Shadow
	if sh == nil || sh.Canary == "" || len(c.adminURLs) == 0 {
		return nil, nil
	}
	plan, err := canary.ReadPlanFileWith(ctx, sh.Canary, false, c.adminURLs)
	if err != nil {
		return nil, fmt.Errorf("shadow.canary: %w", err)
	}
	cn, err := canary.New(canary.Config{Plan: plan, Admin: &canary.HTTPAdmin{URLs: plan.Admin}, Out: r.out, Logger: r.log})
	if err != nil {
		return nil, err
	}
	return &canaryRun{c: cn, expect: sh.Expect, dir: dir, done: make(chan struct{})}, nil
}

// begin starts the rollout (once); ctx bounds it.
func (cr *canaryRun) begin(ctx context.Context) {
	if cr == nil {
		return
	}
	cr.once.Do(func() {
		ctx, cr.cancel = context.WithCancel(ctx)
		go func() {
			defer close(cr.done)
			cr.res, cr.err = cr.c.Run(ctx)
		}()
	})
}

// stop ends a rollout the swarm outlived (it ends interrupted) and waits
// for it, before the proxies stop.
func (cr *canaryRun) stop() {
	if cr == nil {
		return
	}
	cr.once.Do(func() { close(cr.done) }) // never begun: nothing was published
	if cr.cancel != nil {
		cr.cancel()
	}
	<-cr.done
}

// record writes canary.json and gates the run on the rollout's outcome.
func (cr *canaryRun) record(to *TargetOutcome) {
	if cr == nil {
		return
	}
	cr.stop()
	gate := report.GateResult{Gate: report.Gate{Expr: "canary == " + cr.expect, Metric: "canary_outcome", Op: "==", Threshold: float64(exitOf(cr.expect))}}
	if cr.res == nil {
		gate.Value = -1
		to.Notes = append(to.Notes, "canary: the rollout never began (no publish)")
		to.Gates = append(to.Gates, gate)
		return
	}
	path := filepath.Join(cr.dir, "canary.json")
	if err := writeFile(path, cr.res.WriteJSON); err == nil {
		to.Files = append(to.Files, path)
	}
	gate.Value = float64(cr.res.Outcome.ExitCode())
	gate.Pass = string(cr.res.Outcome) == cr.expect
	to.Notes = append(to.Notes, fmt.Sprintf("canary %s (expected %s): %s", cr.res.Outcome, cr.expect, cr.res.Reason))
	to.Gates = append(to.Gates, gate)
}

func exitOf(outcome string) int { return canary.Outcome(outcome).ExitCode() }

// startDefect serves the candidate behind the scenario's defect on a
// loopback port of the runner's own; it returns the URL the proxies use.
func (c *cluster) startDefect(sh *scenario.Shadow) (string, error) {
	if sh.Defect == "" {
		return c.candURL, nil
	}
	d, err := defect.Parse(sh.Defect)
	if err != nil {
		return "", fmt.Errorf("shadow.defect: %w", err)
	}
	up, err := url.Parse(c.candURL)
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: defect.Proxy(up, d), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	c.stopDefect = func() {
		_ = srv.Close() // streams end with the candidate anyway
		<-done
	}
	return "http://" + l.Addr().String(), nil
}
