package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/swarm"
)

// SwarmConfig is the swarm run of scenario s against target t, whose
// servers (or shadow proxies, when shadowed) are at targets. Logger,
// Progress and OnPublish are the caller's to set.
func SwarmConfig(s *scenario.Scenario, t scenario.Target, targets []string, shadowed bool) (swarm.Config, error) {
	var cfg swarm.Config
	name := t.Profile
	if t.Embedded() && s.Publishers.Endpoint == scenario.EndpointHooks {
		name = scenario.ProfileDarktimeHooks
	}
	prof, ok := swarm.LookupProfile(name)
	if !ok {
		return cfg, fmt.Errorf("no swarm profile %q", name)
	}
	if shadowed {
		// The proxy selects users by this key: one per client, the same
		// across reconnects (sticky).
		sep := "?"
		if strings.Contains(prof.Subscribe, "?") {
			sep = "&"
		}
		prof.Subscribe += sep + UserKey + "={client}"
	}
	var err error
	c := s.Clients
	cfg = swarm.Config{
		Targets: targets, Target: strings.Join(targets, ","), Profile: prof,
		Clients: c.Count, Channels: c.Channels, Ramp: c.Ramp, Sources: c.Sources,
		Rate: s.Publishers.Rate, Size: s.Publishers.Size, Publishers: s.Publishers.InFlight,
	}
	if tk := c.Token; tk != nil {
		cfg.Token = &swarm.TokenConfig{SecretEnv: tk.SecretEnv, KeyFile: tk.KeyFile, Algorithm: tk.Algorithm, TTL: tk.TTL.D()}
	}
	if cfg.Distribution, err = swarm.ParseDistribution(c.Distribution); err != nil {
		return cfg, err
	}
	if cfg.Churn, err = swarm.ParseLifetime(c.Churn); err != nil {
		return cfg, err
	}
	if cfg.Pacing, err = swarm.ParsePacing(s.Publishers.Pacing); err != nil {
		return cfg, err
	}
	for i, ph := range s.Phases {
		p := swarm.Phase{Name: ph.Name, Duration: ph.Duration.D(), Rate: s.PhaseRate(i)}
		if ph.HotChannel != nil {
			p.Hot, p.HotChannel = true, *ph.HotChannel
		}
		cfg.Phases = append(cfg.Phases, p)
		cfg.Duration += ph.Duration.D()
	}
	for _, f := range s.Faults {
		switch {
		case f.Storm:
			cfg.Storms = append(cfg.Storms, f.At.D())
		case f.SlowConsumers != nil:
			cfg.Slowdowns = append(cfg.Slowdowns, swarm.Slowdown{At: f.At.D(), Clients: f.SlowConsumers.Count, ReadDelay: f.SlowConsumers.ReadDelay.D()})
		}
	}
	return cfg, nil
}

func (r *Runner) swarmConfig(t scenario.Target, targets []string, shadowed bool) (swarm.Config, error) {
	cfg, err := SwarmConfig(r.s, t, targets, shadowed)
	if err != nil {
		return cfg, err
	}
	cfg.Logger = r.log
	if !r.cfg.Quiet {
		cfg.Progress = r.out
	}
	cfg.RunID = r.s.Name + "-" + t.Label + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg.ChannelPrefix = swarm.NewChannelPrefix() // the faults need the channels' names
	return cfg, nil
}

// runProcs runs the swarm as clients.procs worker processes (this
// executable, swarm.WorkerArgs, the run on their stdin) that start
// publishing together at one planned time, from which the runner times
// its own faults. Each worker exports its part live as live says, when
// set.
func (r *Runner) runProcs(ctx context.Context, cfg swarm.Config, sched *scheduler, dir string, live json.RawMessage) (*swarm.Result, error) {
	ramp := time.Duration(float64(cfg.Clients) / cfg.Ramp * float64(time.Second))
	settle := cfg.Settle
	if settle == 0 {
		settle = swarm.DefaultSettle
	}
	cfg.PublishAt = time.Now().Add(ramp + ramp/4 + settle + 3*time.Second)
	cfg.Progress = nil // the workers' go to their logs
	sched.begin(cfg.PublishAt)
	var logs []*os.File // closed once every worker has been waited for
	defer func() {
		for _, f := range logs {
			f.Close()
		}
	}()
	return swarm.RunProcs(ctx, cfg, swarm.Procs{N: r.s.Clients.Procs, Live: live, Command: func(ctx context.Context, part swarm.Part) *exec.Cmd {
		cmd := exec.CommandContext(ctx, r.bin, swarm.WorkerArgs()...)
		cmd.Env = append(os.Environ(), r.cfg.Env...)
		logf, err := os.Create(logPath(dir, fmt.Sprintf("swarm-%d", part.Index)))
		if err == nil {
			cmd.Stdout, cmd.Stderr = logf, logf
			logs = append(logs, logf)
		}
		return cmd
	}})
}

// reportScenario describes the run for the report: the phases as they
// happened and the faults.
func (r *Runner) reportScenario(t scenario.Target, res *swarm.Result, faults []report.Fault) *report.Scenario {
	s := r.s
	rs := &report.Scenario{Name: s.Name, Description: s.Description, File: r.cfg.File, Target: targetLine(t), Label: t.Label}
	start := res.PublishStarted
	at := start
	for i, ph := range s.Phases {
		p := report.Phase{Name: ph.Name, Start: at, Duration: ph.Duration.D(), RatePerS: s.PhaseRate(i)}
		if ph.HotChannel != nil {
			hc := *ph.HotChannel
			p.HotChannel = &hc
		}
		rs.Phases = append(rs.Phases, p)
		at = at.Add(ph.Duration.D())
	}
	rs.Faults = append(faults, swarmFaults(s, start, res.Ended)...)
	sortFaults(rs.Faults)
	return rs
}

func sortFaults(f []report.Fault) {
	slices.SortStableFunc(f, func(a, b report.Fault) int { return a.At.Compare(b.At) })
}

func writeFile(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeJSON(path string, v any) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
