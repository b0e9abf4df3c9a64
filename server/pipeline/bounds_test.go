package pipeline

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

// bombShapes are the YAML shapes of issue 12: an alias bomb (9^9 strings
// once expanded), 50,000 nested brackets, and comments over the 1 MiB cap.
func bombShapes() map[string]string {
	return map[string]string{
		"alias bomb":  tstest.AliasBomb("x{i}: ", 9) + "models: {post: {stages: [{route: {channels: ['thread:{thread}']}}]}}\n",
		"deep":        "models: " + tstest.Nested(50_000),
		"big comment": "models: {}\n" + tstest.Comments(1<<20),
	}
}

// TestLoadConfigBombs: every shape is a *ConfigError, with its line where
// it has one, and costs little memory (a generous bound; the parser took
// gigabytes for the first two).
func TestLoadConfigBombs(t *testing.T) {
	want := map[string]string{
		"alias bomb":  "pipeline config: line 1, column 5: YAML anchors (&name) are not supported",
		"deep":        "pipeline config: line 1, column 72: nesting deeper than 64 levels",
		"big comment": "pipeline config: 1048610 bytes is over the limit of 1048576 bytes",
	}
	for name, shape := range bombShapes() {
		data := []byte(shape)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := LoadConfig(data)
		runtime.ReadMemStats(&after)
		var ce *ConfigError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), want[name]) {
			t.Errorf("%s: LoadConfig = %v, want %q", name, err, want[name])
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%s: LoadConfig allocated %d bytes, want under 1 MiB", name, grew)
		}
	}
}
