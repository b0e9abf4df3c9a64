package pipeline

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseHook(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Hook
		wantErr string // substring; empty means success
	}{
		{
			name: "string id",
			in:   `{"model":"post","action":"post_save","id":"123","thread":"7","n":1.5,"big":12345678901234567890}`,
			want: Hook{Model: "post", Action: ActionSave, ID: "123", Fields: map[string]any{
				"thread": "7", "n": json.Number("1.5"), "big": json.Number("12345678901234567890"),
			}},
		},
		{
			name: "number id keeps every digit",
			in:   ` {"model":"post","action":"post_delete","id":9007199254740993} `,
			want: Hook{Model: "post", Action: ActionDelete, ID: "9007199254740993", Fields: map[string]any{}},
		},
		{
			name: "id with every allowed character",
			in:   `{"model":"a_1","action":"post_save","id":"aZ0_:.-"}`,
			want: Hook{Model: "a_1", Action: ActionSave, ID: "aZ0_:.-", Fields: map[string]any{}},
		},
		{
			name: "null field kept",
			in:   `{"model":"post","action":"post_save","id":"1","parent":null}`,
			want: Hook{Model: "post", Action: ActionSave, ID: "1", Fields: map[string]any{"parent": nil}},
		},
		{name: "empty body", in: ``, wantErr: "empty body"},
		{name: "array", in: `[{"model":"post"}]`, wantErr: "body is an array, not a JSON object"},
		{name: "null", in: `null`, wantErr: "body is null"},
		{name: "string", in: `"post"`, wantErr: "body is a string"},
		{name: "bad JSON", in: `{"model":"post",}`, wantErr: "bad JSON"},
		{name: "truncated", in: `{"model":"post"`, wantErr: "bad JSON"},
		{name: "trailing data", in: `{"model":"post","action":"post_save","id":"1"} {}`, wantErr: "data after the object"},
		{name: "missing model", in: `{"action":"post_save","id":"1"}`, wantErr: `missing "model"`},
		{name: "null model", in: `{"model":null,"action":"post_save","id":"1"}`, wantErr: `missing "model"`},
		{name: "empty model", in: `{"model":"","action":"post_save","id":"1"}`, wantErr: `empty "model"`},
		{name: "number model", in: `{"model":5,"action":"post_save","id":"1"}`, wantErr: `"model" must be a string, not a number`},
		{name: "upper-case model", in: `{"model":"Post","action":"post_save","id":"1"}`, wantErr: `model "Post" must match`},
		{name: "long model", in: `{"model":"` + strings.Repeat("m", 65) + `","action":"post_save","id":"1"}`, wantErr: "must match [a-z0-9_]{1,64}"},
		{name: "missing action", in: `{"model":"post","id":"1"}`, wantErr: `missing "action"`},
		{name: "bad action", in: `{"model":"post","action":"save","id":"1"}`, wantErr: `action "save" must be "post_save" or "post_delete"`},
		{name: "missing id", in: `{"model":"post","action":"post_save"}`, wantErr: `missing "id"`},
		{name: "empty id", in: `{"model":"post","action":"post_save","id":""}`, wantErr: `id "" must match`},
		{name: "float id", in: `{"model":"post","action":"post_save","id":1.5}`, wantErr: `id "1.5" must be a string or a non-negative integer`},
		{name: "negative id", in: `{"model":"post","action":"post_save","id":-1}`, wantErr: "non-negative integer"},
		{name: "bool id", in: `{"model":"post","action":"post_save","id":true}`, wantErr: "not a boolean"},
		{name: "id with space", in: `{"model":"post","action":"post_save","id":"a b"}`, wantErr: `id "a b" must match [A-Za-z0-9_:.-]{1,128}`},
		{name: "long id", in: `{"model":"post","action":"post_save","id":"` + strings.Repeat("1", 129) + `"}`, wantErr: "{1,128}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseHook([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseHook succeeded with %+v, want error containing %q", got, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidHook) {
					t.Errorf("error %v does not wrap ErrInvalidHook", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHook: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseHook = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHookMarshalJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := `{"model":"post","action":"post_save","id":42,"thread":"7","big":12345678901234567890,"tags":["a"]}`
	h, err := ParseHook([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"post_save","big":12345678901234567890,"id":"42","model":"post","tags":["a"],"thread":"7"}`
	if string(out) != want {
		t.Errorf("MarshalJSON = %s, want %s", out, want)
	}
	again, err := ParseHook(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, h) {
		t.Errorf("round trip = %+v, want %+v", again, h)
	}
}

func TestParseHookBatch(t *testing.T) {
	t.Parallel()
	const ok1 = `{"model":"post","action":"post_save","id":"1"}`
	const ok2 = `{"model":"thread","action":"post_delete","id":2}`
	tests := []struct {
		name     string
		in       string
		wantErr  string   // whole-batch error
		wantIDs  []string // "" for an invalid item
		itemErrs []string // per item, substring; "" for a valid one
	}{
		{name: "array", in: `[` + ok1 + `,` + ok2 + `]`, wantIDs: []string{"1", "2"}, itemErrs: []string{"", ""}},
		{name: "object", in: `{"hooks":[` + ok1 + `]}`, wantIDs: []string{"1"}, itemErrs: []string{""}},
		{name: "empty array", in: `[]`, wantIDs: []string{}, itemErrs: []string{}},
		{
			name:     "bad items keep their index",
			in:       `[` + ok1 + `,{"model":"post"},42,` + ok2 + `]`,
			wantIDs:  []string{"1", "", "", "2"},
			itemErrs: []string{"", `hooks[1]: invalid hook: missing "action"`, "hooks[2]: invalid hook: body is a number", ""},
		},
		{name: "empty", in: ` `, wantErr: "empty body"},
		{name: "scalar", in: `"x"`, wantErr: "batch is a string"},
		{name: "object without hooks", in: `{"model":"post","action":"post_save","id":"1"}`, wantErr: "bad JSON: json: unknown field"},
		{name: "hooks null", in: `{"hooks":null}`, wantErr: `no "hooks" array`},
		{name: "hooks not array", in: `{"hooks":{}}`, wantErr: "bad JSON"},
		{name: "trailing", in: `[] []`, wantErr: "data after the batch"},
		{name: "too many", in: `[` + strings.TrimSuffix(strings.Repeat(ok1+",", MaxBatch+1), ",") + `]`, wantErr: "1001 hooks, more than 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items, err := ParseHookBatch([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidHook) {
					t.Fatalf("ParseHookBatch error = %v, want one wrapping ErrInvalidHook containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHookBatch: %v", err)
			}
			if len(items) != len(tt.wantIDs) {
				t.Fatalf("got %d items, want %d", len(items), len(tt.wantIDs))
			}
			for i, it := range items {
				if it.Index != i {
					t.Errorf("item %d has Index %d", i, it.Index)
				}
				if it.Hook.ID != tt.wantIDs[i] {
					t.Errorf("item %d: ID %q, want %q", i, it.Hook.ID, tt.wantIDs[i])
				}
				switch {
				case tt.itemErrs[i] == "" && it.Err != nil:
					t.Errorf("item %d: unexpected error %v", i, it.Err)
				case tt.itemErrs[i] != "" && (it.Err == nil || !strings.Contains(it.Err.Error(), tt.itemErrs[i]) || !errors.Is(it.Err, ErrInvalidHook)):
					t.Errorf("item %d: error %v, want one containing %q", i, it.Err, tt.itemErrs[i])
				}
				if _, err := ParseHook(it.Raw); (err == nil) != (it.Err == nil) {
					t.Errorf("item %d: Raw %s parses differently from the item", i, it.Raw)
				}
			}
		})
	}
}

func BenchmarkParseHook(b *testing.B) {
	data := []byte(postSave)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHook(data); err != nil {
			b.Fatal(err)
		}
	}
}
