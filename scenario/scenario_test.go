package scenario

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/tstest"
)

// testOpts pins the machine so results do not depend on where tests run:
// the limits of the machine darktime is built for (a process may open
// 20,000 files; 28,232 ephemeral ports).
var testOpts = Options{SkipBinaries: true, FileLimit: 20_000, EphemeralPorts: 28_232}

func TestLibraryChecks(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("library: %v files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			s, err := LoadFile(f, testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); s.Name != want {
				t.Errorf("name %q, want the file's name %q", s.Name, want)
			}
			data, _ := os.ReadFile(f)
			if !bytes.HasPrefix(data, []byte("# "+s.Name+" — ")) {
				t.Errorf("no comment header saying what %s shows", s.Name)
			}
			if s.Description == "" {
				t.Errorf("no description")
			}
		})
	}
}

// ci-smoke is CI's gate: short, small, and it must gate something.
func TestCISmokeIsAGate(t *testing.T) {
	t.Parallel()
	s, err := LoadFile("../scenarios/ci-smoke.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Limits.MaxDuration.D() > time.Minute || s.Planned() > time.Minute {
		t.Errorf("ci-smoke takes %v (limit %v): CI wants at most 60s", s.Planned(), s.Limits.MaxDuration)
	}
	if len(s.Thresholds) == 0 || s.Outputs.JUnit == "" {
		t.Errorf("ci-smoke needs thresholds and a JUnit output to be a gate")
	}
}

// TestGolden checks each testdata/*.yaml against its .golden: the
// problems found (FILE:LINE:COL: PATH: message) or "ok" and the summary.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 12 {
		t.Fatalf("%d golden cases, want at least 12", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			s, err := LoadFile(f, testOpts)
			var got string
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				got = err.Error() + "\n"
			} else {
				got = "ok " + s.Summary() + "\n"
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			tstest.Golden(t, golden, []byte(got))
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s, err := LoadFile("testdata/valid-minimal.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	want := Scenario{
		Version: 1, Name: "t",
		Target:     Target{Label: "primary", Broker: BrokerMemory, Nodes: 1, Profile: ProfileDarktime},
		Clients:    Clients{Count: 100, Ramp: 1000, Channels: 10, Distribution: "uniform", Churn: "none", Sources: 1, Procs: 1},
		Publishers: Publishers{Rate: 10, Pacing: "constant", Size: 100, Endpoint: EndpointPub},
		Phases:     []Phase{{Name: "steady", Duration: Duration(10 * time.Second)}},
		Outputs:    Outputs{Dir: "results/t", JSON: "report.json"},
		Limits:     Limits{MaxDuration: Duration(time.Minute)},
	}
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("got  %+v\nwant %+v", *s, want)
	}
	if got := s.PhaseRate(0); got != 10 {
		t.Errorf("PhaseRate = %v, want publishers.rate", got)
	}
}

func TestMissingBinaries(t *testing.T) {
	t.Parallel()
	notFound := func(string) (string, error) { return "", errors.New("not found") }
	for _, c := range []struct{ file, want string }{
		{"../scenarios/vs-nchan.yaml", "apt-get install -y nginx-light libnginx-mod-nchan"},
		{"../scenarios/redis-restart.yaml", "apt-get install -y redis-server"},
	} {
		opts := testOpts
		opts.SkipBinaries, opts.LookPath = false, notFound
		_, err := LoadFile(c.file, opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s without the binaries: %v, want a message with %q", c.file, err, c.want)
		}
	}
	// A Redis Cluster is created with redis-cli.
	opts := testOpts
	opts.SkipBinaries = false
	opts.LookPath = func(file string) (string, error) {
		if file == "redis-cli" {
			return "", errors.New("not found")
		}
		return "/usr/bin/" + file, nil
	}
	if _, err := LoadFile("../scenarios/cluster-failover.yaml", opts); err == nil || !strings.Contains(err.Error(), "needs redis-cli") {
		t.Errorf("cluster-failover without redis-cli: %v", err)
	}
	opts.LookPath = notFound
	if _, err := LoadFile("../scenarios/slow-consumers.yaml", opts); err != nil {
		t.Errorf("a memory-broker scenario needs no binary: %v", err)
	}
}

func TestCheckFiles(t *testing.T) {
	t.Parallel()
	var out, errs bytes.Buffer
	if err := CheckFiles(t.Context(), &out, &errs, []string{"testdata/valid-minimal.yaml", "../scenarios/ci-smoke.yaml"}, testOpts); err != nil {
		t.Fatalf("valid files: %v\n%s", err, errs.String())
	}
	if n := strings.Count(out.String(), "\nok ") + 1; !strings.HasPrefix(out.String(), "ok ") || n != 2 {
		t.Errorf("want one ok line per file:\n%s", out.String())
	}
	out.Reset()
	err := CheckFiles(t.Context(), &out, &errs, []string{"testdata/valid-minimal.yaml", "testdata/node-missing.yaml"}, testOpts)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(errs.String(), "node-missing.yaml:9:") {
		t.Errorf("invalid file: %v\n%s", err, errs.String())
	}
	if err := CheckFiles(t.Context(), &out, &errs, nil, testOpts); !errors.Is(err, ErrInvalid) {
		t.Errorf("no files: %v", err)
	}
	if err := CheckFiles(t.Context(), &out, &errs, []string{"testdata/no-such-file.yaml"}, testOpts); !errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParse: the parser never panics, and a scenario it accepts encodes
// to YAML that parses back to the same value.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../scenarios/*.yaml", "testdata/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("version: 1\nname: a\nclients: &c {count: 1}\npublishers: *c\n"))
	f.Add([]byte("version: !!int 1\n<<: {name: x}\n"))
	// The shapes of issue 12: refused before the YAML parser sees them.
	f.Add([]byte(aliasBomb(9)))
	f.Add([]byte("version: 1\nclients: " + deepBrackets(50_000)))
	// 64 KB of comments: a seed just over the 1 MiB cap mutates into
	// documents just under it, which take the parser a second each and
	// stall the fuzzer; TestBoundedInput covers the cap.
	f.Add([]byte(bigComment(64 << 10)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, testOpts)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		out, err := yaml.Marshal(s)
		if err != nil {
			t.Fatalf("cannot encode an accepted scenario: %v", err)
		}
		again, err := Parse(out, testOpts)
		if err != nil {
			t.Fatalf("re-encoded scenario does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the scenario:\n%+v\n%+v\n%s", s, again, out)
		}
	})
}

func TestOverrides(t *testing.T) {
	for _, c := range []struct {
		file string
		ov   Overrides
		want string // an error, or "" for a scenario that checks
		then func(t *testing.T, s *Scenario)
	}{
		{"steady-state", Overrides{Embedded: true, ShadowPercent: 10, Clients: 5000, TimeScale: 0.25, Dir: "/tmp/x"}, "", func(t *testing.T, s *Scenario) {
			if !s.Target.Embedded() || s.Target.Broker != BrokerMemory || s.Target.Nodes != 1 || s.Target.Redis != nil {
				t.Errorf("target %+v, want one memory node", s.Target)
			}
			if s.Shadow == nil || s.Shadow.Percent != 10 || s.Shadow.Mode != ModeMirror || s.Shadow.Candidate != CandidateEmbedded {
				t.Errorf("shadow %+v", s.Shadow)
			}
			if s.Clients.Count != 5000 || s.Outputs.Dir != "/tmp/x" {
				t.Errorf("clients %d, dir %q", s.Clients.Count, s.Outputs.Dir)
			}
			if got := s.RunLength(); got != 90*time.Second {
				t.Errorf("run length %v, want 90s (a quarter of 6m)", got)
			}
			if s.Limits.MaxDuration.D() < s.Planned() {
				t.Errorf("max_duration %v is below the planned %v", s.Limits.MaxDuration, s.Planned())
			}
		}},
		{"redis-restart", Overrides{Embedded: true}, "restart_redis: needs a Redis broker darktime starts: set target.broker: redis (with --embedded)", nil},
		{"node-failure", Overrides{TimeScale: 0.1}, "", func(t *testing.T, s *Scenario) {
			if s.Faults[0].At.D() != 6*time.Second {
				t.Errorf("fault at %v, want 6s", s.Faults[0].At)
			}
		}},
		{"slow-consumers", Overrides{Clients: 100}, "slow_consumers.count: 200: want 1 to clients.count (100) (with --clients 100)", nil},
	} {
		s, err := LoadFile("../scenarios/"+c.file+".yaml", Options{SkipBinaries: true, FileLimit: 20_000, EphemeralPorts: 28_232, Overrides: c.ov})
		switch {
		case c.want != "":
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s with %s: error %v, want %q", c.file, c.ov, err, c.want)
			}
		case err != nil:
			t.Errorf("%s with %s: %v", c.file, c.ov, err)
		default:
			c.then(t, s)
		}
	}
}

// TestCheckCanary: the plan shadow.canary names is resolved against the
// scenario's folder and given to Options.CheckCanary.
func TestCheckCanary(t *testing.T) {
	t.Parallel()
	var got string
	opts := testOpts
	opts.CheckCanary = func(_ context.Context, path string) error {
		got = path
		return errors.New("steps: none")
	}
	_, err := LoadFile("../scenarios/canary-rollout.yaml", opts)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "shadow.canary: steps: none") {
		t.Errorf("error %v", err)
	}
	if got != filepath.Join("..", "scenarios", "plans", "canary-rollout.yaml") {
		t.Errorf("plan path %q", got)
	}
}

// TestClusterDefaults: broker: redis-cluster fills in its layout, and
// HotChannelAt names the phase's hot channel.
func TestClusterDefaults(t *testing.T) {
	t.Parallel()
	s, err := LoadFile("testdata/redis-cluster.yaml", testOpts)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Target.Redis
	if r == nil || r.Shards != 3 || r.ReplicasPerShard() != 1 || r.NodeTimeout.D() != 2*time.Second || r.Persistence != "none" {
		t.Errorf("redis %+v: want 3 shards, 1 replica each, node_timeout 2s, no persistence", r)
	}
	if k := s.Faults[2].Kind(); k != "kill_redis_link" {
		t.Errorf("kind %q", k)
	}
	hot := 4
	s.Phases = []Phase{{Name: "a", Duration: Duration(time.Second)}, {Name: "b", Duration: Duration(time.Second), HotChannel: &hot}}
	for at, want := range map[time.Duration]int{0: 0, 1500 * time.Millisecond: 4, 3 * time.Second: 0} {
		if got := s.HotChannelAt(at); got != want {
			t.Errorf("HotChannelAt(%v) = %d, want %d", at, got, want)
		}
	}
}
