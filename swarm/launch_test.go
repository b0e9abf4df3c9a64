package swarm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLaunchCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Launch
		want string // "" when valid
	}{
		{"one process", Launch{Procs: 1, Out: "r.json"}, ""},
		{"agents", Launch{Procs: 1, Agents: 3, Coordination: Coordination{RedisURL: "redis://x"}, Out: "r.json"}, ""},
		{"no out", Launch{Procs: 1}, "--out FILE is required"},
		{"procs 0", Launch{Out: "r.json"}, "--procs must be between 1 and 64"},
		{"procs too many", Launch{Procs: MaxProcs + 1, Out: "r.json"}, "--procs must be between"},
		{"agents without redis", Launch{Procs: 1, Agents: 2, Out: "r.json"}, "--agents N (1 to 1000) needs --redis"},
		{"agents and procs", Launch{Procs: 2, Agents: 2, Coordination: Coordination{RedisURL: "redis://x"}, Out: "r.json"}, "--agents N"},
		{"negative join timeout", Launch{Procs: 1, Coordination: Coordination{JoinTimeout: -1}, Out: "r.json"}, "--join-timeout -1ns is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check() = %v, want valid", err)
			case tc.want != "" && (!errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("Check() = %v, want ErrConfig starting %q", err, tc.want)
			}
		})
	}
}

func TestLoadProfile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.json"), filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(`{"subscribe": "{target}/s/{channel}"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"nope": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(p string) ([]byte, error) { return os.ReadFile(p) }
	if p, err := LoadProfile("nchan", "", read); err != nil || p.Subscribe == "" {
		t.Errorf("LoadProfile(nchan) = %+v, %v", p, err)
	}
	if p, err := LoadProfile("", good, read); err != nil || p.Subscribe != "{target}/s/{channel}" {
		t.Errorf("LoadProfile(file) = %+v, %v", p, err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"unknown", "", "unknown --profile \"unknown\""},
		{"", bad, "--profile-file " + bad + ": "},
		{"", filepath.Join(dir, "none.json"), "--profile-file: "},
	} {
		if _, err := LoadProfile(tc.name, tc.file, read); !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("LoadProfile(%q, %q) = %v, want ErrConfig starting %q", tc.name, tc.file, err, tc.want)
		}
	}
}
