package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/scenario"
	"github.com/darktime/darktime/swarm"
)

func load(t *testing.T, name string, ov scenario.Overrides) *scenario.Scenario {
	t.Helper()
	s, err := scenario.LoadFile("../scenarios/"+name+".yaml", scenario.Options{SkipBinaries: true, FileLimit: 20_000, EphemeralPorts: 28_232, Overrides: ov})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSwarmConfig(t *testing.T) {
	targets := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	for _, c := range []struct {
		name     string
		ov       scenario.Overrides
		shadowed bool
		check    func(t *testing.T, cfg swarm.Config)
	}{
		{"pope-day", scenario.Overrides{}, false, func(t *testing.T, cfg swarm.Config) {
			if len(cfg.Phases) != 4 || !cfg.Phases[2].Hot || cfg.Phases[2].HotChannel != 0 || cfg.Phases[2].Rate != 5000 {
				t.Errorf("phases %+v: want the third hot on channel 0 at 50 x 100/s", cfg.Phases)
			}
			if cfg.Phases[0].Hot || cfg.Phases[0].Rate != 100 || cfg.Duration != 270*time.Second {
				t.Errorf("phases %+v, duration %v", cfg.Phases, cfg.Duration)
			}
			if cfg.Distribution.Kind != swarm.DistZipf || cfg.Size != 300 || cfg.Clients != 15000 {
				t.Errorf("config %+v", cfg)
			}
		}},
		{"ci-smoke", scenario.Overrides{}, false, func(t *testing.T, cfg swarm.Config) {
			if len(cfg.Storms) != 1 || cfg.Storms[0] != 16*time.Second {
				t.Errorf("storms %v, want [16s]", cfg.Storms)
			}
			if cfg.Phases[0].Rate != 100 {
				t.Errorf("warm-up at %v/s, want half of 200", cfg.Phases[0].Rate)
			}
			if strings.Contains(cfg.Profile.Subscribe, "uid") {
				t.Errorf("subscribe %q carries a user key without a shadow", cfg.Profile.Subscribe)
			}
		}},
		{"slow-consumers", scenario.Overrides{}, false, func(t *testing.T, cfg swarm.Config) {
			want := swarm.Slowdown{At: 30 * time.Second, Clients: 200, ReadDelay: 500 * time.Millisecond}
			if len(cfg.Slowdowns) != 1 || cfg.Slowdowns[0] != want {
				t.Errorf("slowdowns %+v, want %+v", cfg.Slowdowns, want)
			}
		}},
		{"shadow-canary", scenario.Overrides{}, true, func(t *testing.T, cfg swarm.Config) {
			if !strings.HasSuffix(cfg.Profile.Subscribe, "?"+UserKey+"={client}") {
				t.Errorf("subscribe %q: want the sticky user key", cfg.Profile.Subscribe)
			}
		}},
		{"steady-state", scenario.Overrides{Embedded: true, TimeScale: 0.25}, false, func(t *testing.T, cfg swarm.Config) {
			if cfg.Churn.Kind != swarm.LifeExp || cfg.Duration != 90*time.Second || len(cfg.Targets) != 2 {
				t.Errorf("churn %+v, duration %v, targets %v", cfg.Churn, cfg.Duration, cfg.Targets)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := load(t, c.name, c.ov)
			cfg, err := SwarmConfig(s, s.Target, targets, c.shadowed)
			if err != nil {
				t.Fatal(err)
			}
			if err := swarm.Check(cfg); err != nil {
				t.Fatalf("the swarm refuses the config: %v", err)
			}
			c.check(t, cfg)
		})
	}
}

func TestSwarmConfigHooks(t *testing.T) {
	s, err := scenario.Parse([]byte(`version: 1
name: hooks
target: {broker: redis, workers: 2}
clients: {count: 10}
publishers: {rate: 10, endpoint: hooks}
phases: [{name: steady, duration: 1s}]
limits: {max_duration: 1m}
`), scenario.Options{SkipBinaries: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := SwarmConfig(s, s.Target, []string{"http://127.0.0.1:1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile.Name != scenario.ProfileDarktimeHooks {
		t.Errorf("profile %q, want %q for endpoint: hooks", cfg.Profile.Name, scenario.ProfileDarktimeHooks)
	}
}

// clients.token becomes the swarm's TokenConfig; target.auth (resolved
// next to the scenario) goes to the nodes as --auth.
func TestSwarmConfigToken(t *testing.T) {
	s, err := scenario.LoadFile("../cmd/darktime/testdata/private-small.yaml", scenario.Options{SkipBinaries: true, FileLimit: 20_000, EphemeralPorts: 28_232})
	if err != nil {
		t.Fatal(err)
	}
	if s.Target.Auth != "../cmd/darktime/testdata/private-small-auth.yaml" {
		t.Errorf("target.auth %q: want it next to the scenario", s.Target.Auth)
	}
	cfg, err := SwarmConfig(s, s.Target, []string{"http://127.0.0.1:1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if tk := cfg.Token; tk == nil || tk.SecretEnv != "DARKTIME_TEST_JWT_SECRET" || tk.TTL != time.Second {
		t.Errorf("token %+v", cfg.Token)
	}
}
