package shadow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		o    RunOptions
		says string
	}{
		{RunOptions{ShutdownTimeout: -time.Second}, "--shutdown-timeout -1s is negative"},
		{RunOptions{Load: func() (Config, error) { return Config{}, fmt.Errorf("%w: primary: required", ErrInvalidConfig) }}, "primary: required"},
		{RunOptions{Load: func() (Config, error) {
			return Config{Primary: "http://127.0.0.1:1", Mode: ModeOff, Listen: "256.0.0.1:1"}, nil
		}}, "listen on 256.0.0.1:1"},
	} {
		err := Run(context.Background(), c.o)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%v, want ErrInvalidConfig saying %q", err, c.says)
		}
	}
}
