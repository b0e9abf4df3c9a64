package fanoutbench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckSet(t *testing.T) {
	good := Config{Subscribers: 10, Channels: 2, Rate: 1, Duration: time.Second, Size: 10, Ramp: 5, Drain: time.Second}
	if err := good.CheckSet(); err != nil {
		t.Fatalf("CheckSet(%+v) = %v", good, err)
	}
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Subscribers = 0 }, "--subscribers"},
		{func(c *Config) { c.Channels = 11 }, "--channels"},
		{func(c *Config) { c.Rate = 0 }, "--rate"},
		{func(c *Config) { c.Duration = 25 * time.Hour }, "--duration"},
		{func(c *Config) { c.Size = -1 }, "--size"},
		{func(c *Config) { c.Ramp = 0 }, "--ramp"},
		{func(c *Config) { c.Sources = -1 }, "--sources"},
		{func(c *Config) { c.ServerPID = -1 }, "--server-pid"},
		{func(c *Config) { c.Drain = 0 }, "--drain"},
	} {
		c := good
		tc.change(&c)
		if err := c.CheckSet(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckSet = %v, want ErrConfig naming %s", err, tc.want)
		}
	}
}
