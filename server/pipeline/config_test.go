package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

// TestLoadConfigGolden loads every testdata/config/*.yaml and compares the
// error (or the list of models) with the .golden file beside it.
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
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(data)
			var got string
			if err != nil {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("error %v does not wrap ErrInvalidConfig", err)
				}
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Errorf("error %T is not a *ConfigError", err)
				} else if ce.Line == 0 && name != "empty" {
					t.Errorf("error %q has no line number", err)
				}
				got = "error: " + err.Error() + "\n"
			} else {
				got = "models: " + strings.Join(cfg.ModelNames(), ", ") + "\n"
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			tstest.Golden(t, golden, []byte(got))
		})
	}
}

func TestDefaultConfigPostSave(t *testing.T) {
	t.Parallel()
	res, err := DefaultConfig().Run(context.Background(), mustHook(t, postSave))
	if err != nil {
		t.Fatal(err)
	}
	const data = `{"type":"post","action":"saved","data":{"id":"123","thread":"7","forum":"pycon","author":"42","parent":null,` +
		`"message":"Hello \u003cworld\u003e","created_at":"2013-03-16T10:00:00Z","received_at":"2013-03-16T10:00:01.250Z"}}`
	want := []Event{
		{Channel: "thread:7", Event: "post.saved", Data: []byte(data)},
		{Channel: "forum:pycon", Event: "post.saved", Data: []byte(data)},
		{Channel: "user:42", Event: "post.saved", Data: []byte(data)},
	}
	checkEvents(t, res, want)
}

func TestDefaultConfigPostDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hook string
		want []Event
	}{
		{
			name: "id and thread only",
			hook: `{"model":"post","action":"post_delete","id":"123","thread":"7"}`,
			want: []Event{{Channel: "thread:7", Event: "post.deleted", Data: []byte(`{"type":"post","action":"deleted","data":{"id":"123","thread":"7"}}`)}},
		},
		{
			name: "full object: every channel, but only id and thread",
			hook: strings.Replace(postSave, "post_save", "post_delete", 1),
			want: []Event{
				{Channel: "thread:7", Event: "post.deleted", Data: []byte(`{"type":"post","action":"deleted","data":{"id":"123","thread":"7"}}`)},
				{Channel: "forum:pycon", Event: "post.deleted", Data: []byte(`{"type":"post","action":"deleted","data":{"id":"123","thread":"7"}}`)},
				{Channel: "user:42", Event: "post.deleted", Data: []byte(`{"type":"post","action":"deleted","data":{"id":"123","thread":"7"}}`)},
			},
		},
		{
			// A deleted spam post was never shown, but removing it is harmless
			// and the drop stages only look at saves.
			name: "spam",
			hook: `{"model":"post","action":"post_delete","id":"123","thread":"7","is_spam":true}`,
			want: []Event{{Channel: "thread:7", Event: "post.deleted", Data: []byte(`{"type":"post","action":"deleted","data":{"id":"123","thread":"7"}}`)}},
		},
	}
	cfg := DefaultConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := cfg.Run(context.Background(), mustHook(t, tt.hook))
			if err != nil {
				t.Fatal(err)
			}
			checkEvents(t, res, tt.want)
		})
	}
}

func TestDefaultConfigOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		hook    string
		outcome string
		reason  string
		errText string
		events  []string // channels
	}{
		{name: "spam dropped", hook: strings.Replace(postSave, `"is_spam":false`, `"is_spam":true`, 1), outcome: "drop", reason: "spam"},
		{name: "unapproved dropped", hook: strings.Replace(postSave, `"is_approved":true`, `"is_approved":false`, 1), outcome: "drop", reason: "awaiting moderation"},
		{name: "save without author rejected", hook: `{"model":"post","action":"post_save","id":"1","thread":"7","forum":"f"}`, outcome: "reject", errText: `missing required field "author"`},
		{name: "delete without thread rejected", hook: `{"model":"post","action":"post_delete","id":"1"}`, outcome: "reject", errText: `missing required field "thread"`},
		{name: "message must be a string", hook: `{"model":"post","action":"post_save","id":"1","thread":"7","forum":"f","author":"a","message":5}`, outcome: "reject"},
		{name: "bad channel rejected", hook: `{"model":"post","action":"post_save","id":"1","thread":"7 8","forum":"f","author":"a"}`, outcome: "reject", errText: "channel"},
		{name: "unknown model rejected", hook: `{"model":"vote","action":"post_save","id":"1"}`, outcome: "reject", errText: `unknown model "vote": add it under models: in the pipeline config (known: post, thread)`},
		{name: "thread saved", hook: `{"model":"thread","action":"post_save","id":"7","forum":"pycon","title":"Hi","posts":3}`, outcome: "ok", events: []string{"thread:7", "forum:pycon"}},
		{name: "thread deleted", hook: `{"model":"thread","action":"post_delete","id":"7","forum":"pycon"}`, outcome: "ok", events: []string{"thread:7", "forum:pycon"}},
	}
	cfg := DefaultConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := cfg.Run(context.Background(), mustHook(t, tt.hook))
			got := outcome(err)
			if res.Dropped {
				got = "drop"
			}
			if got != tt.outcome || res.DropReason != tt.reason {
				t.Fatalf("outcome %s %q (err %v), want %s %q", got, res.DropReason, err, tt.outcome, tt.reason)
			}
			if err != nil && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
			if tt.outcome == "reject" && strings.Contains(tt.name, "unknown model") && !errors.Is(err, ErrUnknownModel) {
				t.Errorf("error %v does not wrap ErrUnknownModel", err)
			}
			var channels []string
			for _, e := range res.Events {
				channels = append(channels, e.Channel)
			}
			if strings.Join(channels, " ") != strings.Join(tt.events, " ") {
				t.Errorf("channels %q, want %q", channels, tt.events)
			}
		})
	}
}

func checkEvents(t *testing.T, res Result, want []Event) {
	t.Helper()
	if res.Dropped {
		t.Fatalf("dropped: %s", res.DropReason)
	}
	if len(res.Events) != len(want) {
		t.Fatalf("got %d events %+v, want %d", len(res.Events), res.Events, len(want))
	}
	for i, e := range res.Events {
		if e.Channel != want[i].Channel || e.Event != want[i].Event || string(e.Data) != string(want[i].Data) {
			t.Errorf("event %d =\n%s %s %s\nwant\n%s %s %s", i, e.Channel, e.Event, e.Data, want[i].Channel, want[i].Event, want[i].Data)
		}
	}
}

func TestDefaultYAMLIsDefaultConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.ModelNames(), ","); got != "post,thread" {
		t.Errorf("models %s", got)
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	type tagOptions struct {
		Key   string `yaml:"key"`
		Value string `yaml:"value"`
	}
	reg := NewRegistry()
	reg.Register("tag", func(decode func(any) error) (Stage, error) {
		opts := tagOptions{Key: "tagged", Value: "yes"}
		if err := decode(&opts); err != nil {
			return nil, err
		}
		if opts.Key == "" {
			return nil, errors.New("key must not be empty")
		}
		return StageFunc(func(_ context.Context, it *Item) error {
			it.Doc[opts.Key] = opts.Value
			return nil
		}), nil
	})
	reg.Register("panics", func(func(any) error) (Stage, error) { panic("oops") })
	reg.Register("nothing", func(func(any) error) (Stage, error) { return nil, nil })

	cfg, err := reg.LoadConfig([]byte(`
models:
  post:
    stages:
      - tag:
      - tag: {key: color, value: red}
        only: [post_save]
      - format: {}
      - route: {channels: ["all"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := cfg.Run(context.Background(), mustHook(t, `{"model":"post","action":"post_save","id":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.Events[0].Data), `{"color":"red","id":"1","tagged":"yes"}`; got != want {
		t.Errorf("data %s, want %s", got, want)
	}

	errTests := []struct{ yaml, want string }{
		{"models: {post: {stages: [{tag: {kee: x}}]}}", `line 1, column 33: tag: unknown field "kee"`},
		{"models: {post: {stages: [{tag: {key: ''}}]}}", "line 1, column 32: tag: key must not be empty"},
		{"models:\n  post:\n    stages:\n      - panics:\n", "line 4, column 9: panics: build function panicked: oops"},
		{"models:\n  post:\n    stages:\n      - nothing: {}\n", "line 4, column 9: nothing: build function returned no stage"},
	}
	for _, tt := range errTests {
		_, err := reg.LoadConfig([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%q) error = %v, want %q", tt.yaml, err, tt.want)
		}
	}
	// Other registries do not see the kind.
	if _, err := NewRegistry().LoadConfig([]byte("models: {post: {stages: [{tag: {}}]}}")); err == nil {
		t.Error("a fresh registry knows the tag kind")
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	build := func(func(any) error) (Stage, error) { return StageFunc(nil), nil }
	tests := []struct {
		name string
		kind string
		fn   BuildFunc
	}{
		{"duplicate", "route", build},
		{"reserved", "only", build},
		{"bad name", "My-Stage", build},
		{"nil build", "fine", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", tt.kind)
				}
			}()
			NewRegistry().Register(tt.kind, tt.fn)
		})
	}
}
