package shadow

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

// TestLoadConfigGolden loads every testdata/config/*.yaml and compares the
// error (or a summary of the config) with the .golden file beside it.
func TestLoadConfigGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := LoadConfigFile(file)
			var got string
			if err != nil {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("error %v does not wrap ErrInvalidConfig", err)
				}
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Errorf("error %T is not a *ConfigError", err)
				} else if ce.Line == 0 && name != "empty" && name != "no_primary" {
					t.Errorf("error %q has no line number", err)
				}
				got = "error: " + err.Error() + "\n"
			} else {
				got = summary(cfg)
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			tstest.Golden(t, golden, []byte(got))
		})
	}
}

func summary(c Config) string {
	c = c.withDefaults()
	var b strings.Builder
	b.WriteString("primary " + c.Primary + " candidate " + c.Candidate + " mode " + string(c.Mode) + "\n")
	for _, r := range c.Routes {
		pc := c.Percent
		if r.Percent != nil {
			pc = *r.Percent
		}
		b.WriteString("route " + r.Path + " " + string(r.Mode) + " " + ftoa(pc) + "% unsafe=" + btoa(r.MirrorUnsafe) + "\n")
	}
	b.WriteString("settle " + c.Ledger.Settle.String() + " late " + c.Ledger.Late.String() + " timeout " + c.Mirror.Timeout.String() + "\n")
	if c.Fleet != (FleetConfig{}) {
		shown, _ := c.Fleet.MarshalJSON()
		b.WriteString("fleet " + string(shown) + "\n")
	}
	return b.String()
}

func ftoa(f float64) string { return strings.TrimRight(strings.TrimRight(strconvF(f), "0"), ".") }
func btoa(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestParsePercent(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"12.5": 12.5, "0.01": 0.01, "100": 100, "7%": 7} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "12abc", "-1", "100.01", "0.001", "NaN"} {
		if _, err := ParsePercent(bad); err == nil {
			t.Errorf("ParsePercent(%q) accepted", bad)
		}
	}
}

// FuzzLoadConfig: the loader never panics, and whatever it accepts builds
// a Proxy.
func FuzzLoadConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data)
	}
	// The shapes of issue 12: refused before the YAML parser sees them.
	f.Add([]byte(aliasBomb(9)))
	f.Add([]byte(deepBrackets(50_000)))
	// 64 KB of comments: a seed just over the 1 MiB cap mutates into
	// documents just under it, which stall the fuzzer; the cap has tests.
	f.Add([]byte(bigComment(64 << 10)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadConfig(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		cfg.Logger = testLogger(t)
		if cfg.Ledger.File != "" {
			// Shutdown writes the ledger: never into the source tree.
			cfg.Ledger.File = filepath.Join(t.TempDir(), "ledger.json")
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatalf("LoadConfig accepted what New refuses: %v", err)
		}
		_ = p.Shutdown(t.Context())
	})
}
