package params

import (
	"errors"
	"testing"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"uniform", "zipf", "zipf:1.3", "one", "several:4"} {
		if _, err := ParseDistribution(s); err != nil {
			t.Errorf("ParseDistribution(%q): %v", s, err)
		}
	}
	for _, s := range []string{"zipf:0.5", "several:x", "pareto", "one:2"} {
		if _, err := ParseDistribution(s); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseDistribution(%q) = %v, want ErrConfig", s, err)
		}
	}
	for _, s := range []string{"constant", "linear:5", "sine:10s:3"} {
		if _, err := ParsePacing(s); err != nil {
			t.Errorf("ParsePacing(%q): %v", s, err)
		}
	}
	for _, s := range []string{"linear", "sine:10s", "burst"} {
		if _, err := ParsePacing(s); !errors.Is(err, ErrConfig) {
			t.Errorf("ParsePacing(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"none", "fixed:30s", "exp:10s", "uniform:1s-5s"} {
		if _, err := ParseLifetime(s); err != nil {
			t.Errorf("ParseLifetime(%q): %v", s, err)
		}
	}
	for _, s := range []string{"fixed:1ms", "uniform:5s-1s", "exp"} {
		if _, err := ParseLifetime(s); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseLifetime(%q) = %v", s, err)
		}
	}
}
