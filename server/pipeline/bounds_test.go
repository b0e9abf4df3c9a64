package pipeline

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

// bombShapes are the YAML shapes of issue 12: an alias bomb (9^9 strings
// once expanded), 50,000 nested brackets, and comments over the 1 MiB cap.
func bombShapes() map[string]string {
	var bomb strings.Builder
	bomb.WriteString("x0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < 9; i++ {
		p := "*a" + string(rune('0'+i-1))
		bomb.WriteString("x" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(p+",", 8) + p + "]\n")
	}
	bomb.WriteString("models: {post: {stages: [{route: {channels: ['thread:{thread}']}}]}}\n")
	return map[string]string{
		"alias bomb":  bomb.String(),
		"deep":        "models: " + strings.Repeat("[", 50_000) + strings.Repeat("]", 50_000) + "\n",
		"big comment": "models: {}\n" + strings.Repeat("# a comment line, repeated\n", 1<<20/27+1),
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
