package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseHook(f *testing.F) {
	for _, seed := range []string{
		postSave,
		`{"model":"post","action":"post_delete","id":9007199254740993}`,
		`{"model":"thread","action":"post_save","id":"a:b.c-d_e","nested":{"a":[1,2,{"b":null}]}}`,
		`{"model":"post","action":"post_save","id":1e3}`,
		`{"model":"post","action":"post_save","id":"x","id":"y"}`,
		`{"model":"post"}`, `[]`, `null`, ``, `{`, `{"model":"\u00e9","action":"post_save","id":"1"}`,
	} {
		f.Add([]byte(seed))
	}
	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsEncodingJSON(t, data)
		h, err := ParseHook(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidHook) {
				t.Fatalf("error %v does not wrap ErrInvalidHook", err)
			}
			return
		}
		if !validName(h.Model, maxModelLen, isModelByte) || !validName(h.ID, maxIDLen, isNameByte) ||
			(h.Action != ActionSave && h.Action != ActionDelete) {
			t.Fatalf("accepted a bad hook %+v", h)
		}
		for _, k := range []string{"model", "action", "id"} {
			if _, ok := h.Fields[k]; ok {
				t.Fatalf("Fields keeps %q", k)
			}
		}
		// A valid hook survives a round trip unchanged.
		out, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := ParseHook(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		if !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip changed the hook:\n%+v\n%+v", h, again)
		}
		// The default pipelines never panic, and publish valid JSON.
		res, err := cfg.Run(context.Background(), h)
		if errors.Is(err, errPanic) {
			t.Fatal(err)
		}
		for _, e := range res.Events {
			if !json.Valid(e.Data) || !ValidChannel(e.Channel) {
				t.Fatalf("bad event %s %s", e.Channel, e.Data)
			}
		}
	})
}

// checkSameAsEncodingJSON compares parseJSONObject with encoding/json
// decoding into a map with UseNumber: same verdict, same value.
func checkSameAsEncodingJSON(t *testing.T, data []byte) {
	t.Helper()
	got, err := parseJSONObject(data)
	var want map[string]any
	trimmed := trimJSONSpace(data)
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	wantErr := dec.Decode(&want)
	if wantErr == nil {
		if _, tokErr := dec.Token(); tokErr != io.EOF {
			wantErr = errors.New("data after the object")
		}
	}
	if wantErr == nil && (len(trimmed) == 0 || trimmed[0] != '{') {
		wantErr = errors.New("not an object")
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("parseJSONObject(%q) error %v, encoding/json error %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("parseJSONObject(%q) =\n%#v\nencoding/json:\n%#v", data, got, want)
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add(defaultYAML)
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("models: {post: {stages: [{enrich: {set: {a: '{b}', c: 'x{$id}'}, event: '{$model}.x'}}, {route: {channels: ['{a}']}}]}}"))
	f.Add([]byte("models: &a {post: {stages: [*a]}}"))
	// The shapes of issue 12: refused before the YAML parser sees them.
	// (64 KB of comments instead of the shape over the 1 MiB cap: its
	// mutations just under the cap stall the fuzzer; the cap has tests.)
	for name, shape := range bombShapes() {
		if name == "big comment" {
			shape = "models: {}\n" + strings.Repeat("# a comment line, repeated\n", 64<<10/27)
		}
		f.Add([]byte(shape))
	}
	hooks := []Hook{
		{Model: "post", Action: ActionSave, ID: "1", Fields: map[string]any{"thread": "7", "forum": "f", "author": "a", "is_spam": false}},
		{Model: "post", Action: ActionDelete, ID: "2", Fields: map[string]any{"thread": "7"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadConfig(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		if len(cfg.Models) == 0 {
			t.Fatal("a valid config without models")
		}
		for name, p := range cfg.Models {
			if !validName(name, maxModelLen, isModelByte) || len(p) == 0 {
				t.Fatalf("accepted model %q with %d stages", name, len(p))
			}
			for _, h := range hooks {
				h.Model = name
				res, err := p.Run(context.Background(), h)
				if errors.Is(err, errPanic) {
					t.Fatal(err)
				}
				for _, e := range res.Events {
					if !json.Valid(e.Data) || !ValidChannel(e.Channel) || !ValidChannel(e.Event) {
						t.Fatalf("bad event %q %q %s", e.Channel, e.Event, e.Data)
					}
				}
			}
		}
	})
}
