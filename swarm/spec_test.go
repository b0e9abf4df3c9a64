package swarm

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fullConfig sets every kind of field a spec carries.
func fullConfig() Config {
	hot := Phase{Name: "pope", Duration: 2 * time.Second, Rate: 50, Hot: true, HotChannel: 1}
	return Config{
		Targets: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, Profile: builtinProfiles["darktime"],
		Clients: 60, Channels: 6, Distribution: Distribution{Kind: DistSeveral, PerClient: 2},
		Rate: 20, Pacing: Pacing{Kind: PaceSine, Period: time.Second, Amplitude: 5},
		Phases: []Phase{{Name: "warm", Duration: time.Second}, hot},
		Churn:  Lifetime{Kind: LifeUniform, Min: time.Second, Max: 2 * time.Second},
		Storms: []time.Duration{time.Second}, Slowdowns: []Slowdown{{At: time.Second, Clients: 3, ReadDelay: time.Millisecond}},
		PublishAt: time.Unix(1_700_000_000, 5).UTC(), RunID: "spec", Seed: 7,
		Token: &TokenConfig{SecretEnv: "DARKTIME_SWARM_TEST_SPEC_SECRET", TTL: time.Minute, Claims: map[string]string{"role": "load"}},
	}
}

func TestRunSpecRoundTrip(t *testing.T) {
	t.Setenv("DARKTIME_SWARM_TEST_SPEC_SECRET", "0123456789abcdef0123456789abcdef")
	spec, err := newSpec(fullConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	spec.Part, spec.Out, spec.Progress, spec.JoinTimeout = Part{Index: 2, Count: 3}, "/tmp/out.json", true, time.Minute
	var b bytes.Buffer
	if err := spec.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `{"version":1,"config":{`) {
		t.Errorf("spec starts %.40q", b.String())
	}
	got, err := ReadSpec(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, spec) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, spec)
	}
	// The receiving side computes the same run: defaults are filled once.
	if again := got.Config.withDefaults(); !reflect.DeepEqual(again.Targets, spec.Config.Targets) || again.Seed != 7 || again.ChannelPrefix != spec.Config.ChannelPrefix || again.Duration != 3*time.Second {
		t.Errorf("defaults moved on the receiving side: %+v", again)
	}
}

func TestReadSpecRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, in, says string }{
		{"another version", `{"version":2,"config":{},"part":{"index":0,"count":1}}`, "version 2, and this darktime reads version 1 only"},
		{"no version", `{"config":{},"part":{"index":0,"count":1}}`, `no "version"`},
		{"the old agent form", `{"proto":"darktime.swarm.agent/v1","run_id":"r","agents":2,"config":{}}`, `no "version"`},
		{"unknown field", `{"version":1,"config":{},"part":{"index":0,"count":1},"procs":2}`, `unknown field "procs"`},
		{"unknown config field", `{"version":1,"config":{"Clientz":3},"part":{"index":0,"count":1}}`, `unknown field "Clientz"`},
		{"trailing data", `{"version":1,"config":{},"part":{"index":0,"count":1}} {}`, "after top-level value"},
		{"bad part", `{"version":1,"config":{},"part":{"index":2,"count":2}}`, "part 2/2"},
		{"not JSON", `version: 1`, "not a run spec"},
		{"too large", `{"version":1,"out":"` + strings.Repeat("x", MaxSpecBytes) + `"}`, "over 1048576 bytes"},
	} {
		_, err := ReadSpec(strings.NewReader(c.in))
		if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want ErrSpec saying %q", c.name, err, c.says)
		}
	}
}

func TestSpecRefusesWhatCannotTravel(t *testing.T) {
	t.Parallel()
	cfg := fullConfig()
	cfg.Token = &TokenConfig{Secret: []byte("0123456789abcdef0123456789abcdef")}
	if _, err := newSpec(cfg, 2); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "SecretEnv or KeyFile") {
		t.Errorf("a secret as bytes: %v", err)
	}
	// A config that cannot run is refused before any worker starts.
	bad := fullConfig()
	bad.Channels = 2
	_, err := RunProcs(context.Background(), bad, Procs{N: 3, Command: func(context.Context, Part) *exec.Cmd {
		t.Error("a worker was started")
		return exec.Command("false")
	}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "parts need at least as many channels") {
		t.Errorf("3 parts of 2 channels: %v", err)
	}
}
