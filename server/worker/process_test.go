package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunProcessRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		pc   ProcessConfig
		says string
	}{
		{ProcessConfig{}, "--redis is required"},
		{ProcessConfig{RedisURL: "http://nope"}, `--redis "http://nope"`},
	} {
		err := RunProcess(context.Background(), c.pc)
		if !errors.Is(err, ErrProcessConfig) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%+v: %v, want ErrProcessConfig saying %q", c.pc, err, c.says)
		}
	}
}
