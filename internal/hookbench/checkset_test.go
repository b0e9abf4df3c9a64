package hookbench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckSet(t *testing.T) {
	t.Parallel()
	good := Config{Phase: PhaseBoth, Subscribers: 10, Jobs: 100, Batch: 10, Posters: 2, Rate: 100, Duration: time.Second, LatencyBatch: 5, Drain: time.Second}
	if err := good.CheckSet(); err != nil {
		t.Fatalf("CheckSet(%+v) = %v", good, err)
	}
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Phase = "warmup" }, "--phase"},
		{func(c *Config) { c.Subscribers = 0 }, "--subscribers"},
		{func(c *Config) { c.Jobs = 0 }, "--jobs"},
		{func(c *Config) { c.Batch = MaxBatch + 1 }, "--batch"},
		{func(c *Config) { c.Posters = 0 }, "--posters"},
		{func(c *Config) { c.Rate = -1 }, "--rate"},
		{func(c *Config) { c.Duration = 25 * time.Hour }, "--duration"},
		{func(c *Config) { c.LatencyBatch = 0 }, "--latency-batch"},
		{func(c *Config) { c.Drain = 0 }, "--drain"},
	} {
		c := good
		tc.change(&c)
		if err := c.CheckSet(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckSet = %v, want ErrConfig naming %s", err, tc.want)
		}
	}
}
