package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	cfg := ValidateConfig{
		Required: []string{"thread", "author.id"},
		Types:    map[string]string{"thread": "string", "likes": "number", "is_spam": "bool", "author": "object", "tags": "array"},
	}
	tests := []struct {
		name    string
		hook    string
		outcome string
		errText string
	}{
		{name: "valid", hook: `{"model":"post","action":"post_save","id":"1","thread":"7","author":{"id":5},"likes":2,"is_spam":false,"tags":[]}`, outcome: "ok"},
		{name: "optional typed field missing or null", hook: `{"model":"post","action":"post_save","id":"1","thread":"7","author":{"id":5},"likes":null}`, outcome: "ok"},
		{name: "missing required", hook: `{"model":"post","action":"post_save","id":"1","author":{"id":5}}`, outcome: "reject", errText: `missing required field "thread"`},
		{name: "null required", hook: `{"model":"post","action":"post_save","id":"1","thread":null,"author":{"id":5}}`, outcome: "reject", errText: `missing required field "thread"`},
		{name: "missing nested required", hook: `{"model":"post","action":"post_save","id":"1","thread":"7","author":{}}`, outcome: "reject", errText: `missing required field "author.id"`},
		{name: "wrong type", hook: `{"model":"post","action":"post_save","id":"1","thread":7,"author":{"id":5}}`, outcome: "reject", errText: `field "thread" is number, want string`},
		{name: "bool as string", hook: `{"model":"post","action":"post_save","id":"1","thread":"7","author":{"id":5},"is_spam":"no"}`, outcome: "reject", errText: `field "is_spam" is string, want bool`},
	}
	s := mustStage(t)(NewValidate(cfg))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := runStage(t, s, mustHook(t, tt.hook))
			if got := outcome(err); got != tt.outcome {
				t.Fatalf("outcome %s (%v), want %s", got, err, tt.outcome)
			}
			if err != nil && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
		})
	}
}

func TestNewStageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"validate unknown type", second(NewValidate(ValidateConfig{Types: map[string]string{"a": "integer"}})), `unknown type "integer"`},
		{"validate empty field", second(NewValidate(ValidateConfig{Required: []string{""}})), "empty field name"},
		{"validate empty path part", second(NewValidate(ValidateConfig{Required: []string{"a..b"}})), "empty part"},
		{"enrich bad template", second(NewEnrich(EnrichConfig{Set: map[string]string{"a": "{b"}})), "unclosed {"},
		{"enrich stray brace", second(NewEnrich(EnrichConfig{Set: map[string]string{"a": "b}"}})), "unmatched }"},
		{"enrich unknown var", second(NewEnrich(EnrichConfig{Set: map[string]string{"a": "{$nope}"}})), "unknown hook variable {$nope}"},
		{"enrich bad event", second(NewEnrich(EnrichConfig{Event: "post saved"})), "may only use"},
		{"enrich empty rename", second(NewEnrich(EnrichConfig{Rename: map[string]string{"a": ""}})), "empty field name"},
		{"drop nothing", second(NewDrop(DropConfig{})), "does nothing"},
		{"drop bad action", second(NewDrop(DropConfig{Actions: []string{"delete"}})), `"delete" is not`},
		{"drop list value", second(NewDrop(DropConfig{When: map[string]any{"a": []any{1}}})), "is not a string, number, bool or null"},
		{"format duplicate", second(NewFormat(FormatConfig{Fields: []string{"a", "a"}})), "listed twice"},
		{"route none", second(NewRoute(RouteConfig{})), "no channels"},
		{"route bad literal", second(NewRoute(RouteConfig{Channels: []string{"thread {thread}"}})), `text "thread " may only use`},
		{"route bad template", second(NewRoute(RouteConfig{Channels: []string{"thread:{}"}})), "empty field name"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, tt.err, tt.want)
		}
	}
}

func second(_ Stage, err error) error { return err }

func TestEnrich(t *testing.T) {
	t.Parallel()
	const base = `{"model":"post","action":"post_delete","id":"9","thread":"7","author":{"id":5,"name":"ann"},"email":"a@b","n":12345678901234567890}`
	tests := []struct {
		name      string
		cfg       EnrichConfig
		want      map[string]any // fields to check; nil value means absent
		wantEvent string
		outcome   string
	}{
		{
			name: "constants and hook variables",
			cfg: EnrichConfig{Set: map[string]string{
				"type": "{$model}", "action": "{$verb}", "hook_action": "{$action}", "received_at": "{$received}",
				"source": "app", "key": "{$model}:{$id}", "job": "{$job}#{$attempt}",
			}},
			want: map[string]any{
				"type": "post", "action": "deleted", "hook_action": "post_delete", "received_at": "2013-03-16T10:00:01.250Z",
				"source": "app", "key": "post:9", "job": "1-0#1",
			},
		},
		{
			name: "single placeholder copies with type",
			cfg:  EnrichConfig{Set: map[string]string{"author_id": "{author.id}", "big": "{n}", "who": "{author}"}},
			want: map[string]any{"author_id": json.Number("5"), "big": json.Number("12345678901234567890"), "who": map[string]any{"id": json.Number("5"), "name": "ann"}},
		},
		{
			name: "templates render to strings and skip missing fields",
			cfg:  EnrichConfig{Set: map[string]string{"url": "/t/{thread}#{id}", "gone": "x{missing}", "alsogone": "{missing}", "obj": "x{author}"}},
			want: map[string]any{"url": "/t/7#9", "gone": nil, "alsogone": nil, "obj": nil},
		},
		{
			name: "sets see the document before any set",
			cfg:  EnrichConfig{Set: map[string]string{"a": "{thread}", "thread": "new", "z": "{thread}"}},
			want: map[string]any{"a": "7", "thread": "new", "z": "7"},
		},
		{
			name: "rename then set then remove",
			cfg: EnrichConfig{
				Rename: map[string]string{"thread": "thread_id", "missing": "x"},
				Set:    map[string]string{"link": "/t/{thread_id}", "thread": "{thread}"},
				Remove: []string{"email", "thread_id"},
			},
			want: map[string]any{"link": "/t/7", "thread": nil, "thread_id": nil, "email": nil, "x": nil},
		},
		{
			name:      "event name",
			cfg:       EnrichConfig{Event: "{$model}.{$verb}.{author.name}"},
			wantEvent: "post.deleted.ann",
		},
		{
			name:      "event name unchanged when missing",
			cfg:       EnrichConfig{Event: "x.{missing}"},
			wantEvent: "post.deleted",
		},
		{
			name:    "bad rendered event name rejects",
			cfg:     EnrichConfig{Event: "x.{email}"},
			outcome: "reject",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustStage(t)(NewEnrich(tt.cfg))
			it, err := runStage(t, s, mustHook(t, base))
			want := tt.outcome
			if want == "" {
				want = "ok"
			}
			if got := outcome(err); got != want {
				t.Fatalf("outcome %s (%v), want %s", got, err, want)
			}
			if err != nil {
				return
			}
			for k, v := range tt.want {
				got, ok := it.Doc[k]
				if v == nil {
					if ok {
						t.Errorf("Doc[%q] = %#v, want absent", k, got)
					}
					continue
				}
				if !reflect.DeepEqual(got, v) {
					t.Errorf("Doc[%q] = %#v, want %#v", k, got, v)
				}
			}
			if tt.wantEvent != "" && it.Event != tt.wantEvent {
				t.Errorf("Event = %q, want %q", it.Event, tt.wantEvent)
			}
		})
	}
}

func TestEnrichReceivedMissing(t *testing.T) {
	t.Parallel()
	s := mustStage(t)(NewEnrich(EnrichConfig{Set: map[string]string{"received_at": "{$received}", "r2": "at {$received}"}}))
	h := mustHook(t, `{"model":"post","action":"post_save","id":"1"}`)
	it, err := runStage(t, s, h)
	if err != nil || it.Doc["r2"] != "at 2013-03-16T10:00:01.250Z" {
		t.Fatalf("with a received time: Doc = %v, err %v", it.Doc, err)
	}
	h.Received = time.Time{}
	it, err = runStage(t, s, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"received_at", "r2"} {
		if _, ok := it.Doc[k]; ok {
			t.Errorf("%s set without a received time: %v", k, it.Doc)
		}
	}
}

func TestDrop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    DropConfig
		hook   string
		reason string // "" means not dropped
	}{
		{"bool matches", DropConfig{When: map[string]any{"is_spam": true}}, `{"is_spam":true}`, "is_spam=true"},
		{"bool differs", DropConfig{When: map[string]any{"is_spam": true}}, `{"is_spam":false}`, ""},
		{"string is not bool", DropConfig{When: map[string]any{"is_spam": true}}, `{"is_spam":"true"}`, ""},
		{"missing field", DropConfig{When: map[string]any{"is_spam": true}}, `{}`, ""},
		{"all must match", DropConfig{When: map[string]any{"is_spam": true, "forum": "x"}}, `{"is_spam":true,"forum":"y"}`, ""},
		{"all match", DropConfig{When: map[string]any{"is_spam": true, "forum": "x"}}, `{"is_spam":true,"forum":"x"}`, `forum="x",is_spam=true`},
		{"yaml uint matches json number", DropConfig{When: map[string]any{"score": uint64(3)}}, `{"score":3}`, "score=3"},
		{"yaml int matches float text", DropConfig{When: map[string]any{"score": int64(-3)}}, `{"score":-3.0}`, "score=-3"},
		{"number differs", DropConfig{When: map[string]any{"score": 1.5}}, `{"score":2}`, ""},
		{"number is not string", DropConfig{When: map[string]any{"score": 3}}, `{"score":"3"}`, ""},
		{"null matches missing", DropConfig{When: map[string]any{"parent": nil}}, `{}`, "parent=null"},
		{"null matches null", DropConfig{When: map[string]any{"parent": nil}}, `{"parent":null}`, "parent=null"},
		{"null differs", DropConfig{When: map[string]any{"parent": nil}}, `{"parent":"1"}`, ""},
		{"nested field", DropConfig{When: map[string]any{"author.banned": true}}, `{"author":{"banned":true}}`, "author.banned=true"},
		{"action", DropConfig{Actions: []string{ActionDelete}}, `{}`, "action post_delete"},
		{"other action", DropConfig{Actions: []string{ActionSave}}, `{}`, ""},
		{"action with reason", DropConfig{Actions: []string{ActionDelete}, Reason: "no deletes"}, `{}`, "no deletes"},
		{"when with reason", DropConfig{When: map[string]any{"a": "b"}, Reason: "spam"}, `{"a":"b"}`, "spam"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustStage(t)(NewDrop(tt.cfg))
			hook := `{"model":"post","action":"post_delete","id":"1",` + strings.TrimPrefix(tt.hook, "{")
			hook = strings.Replace(hook, `"1",}`, `"1"}`, 1)
			_, err := runStage(t, s, mustHook(t, hook))
			reason, dropped := IsDrop(err)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want no drop", err)
				}
				return
			}
			if !dropped || reason != tt.reason {
				t.Fatalf("got %v, want drop %q", err, tt.reason)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	const hook = `{"model":"post","action":"post_save","id":"1","thread":"7","n":1.50,"big":12345678901234567890,` +
		`"msg":"<a href=\"x\">\u2028\n\t\u0001é</a>","tags":["a",1,null],"author":{"z":1,"a":true},"flag":false,"nil":null}`
	tests := []struct {
		name string
		cfg  FormatConfig
		del  []string       // fields deleted before formatting
		doc  map[string]any // values set in Go before formatting
		want string
	}{
		{
			name: "fields in order, missing ones left out",
			cfg:  FormatConfig{Fields: []string{"thread", "id", "missing", "n", "big", "flag", "nil"}},
			want: `{"thread":"7","id":"1","n":1.50,"big":12345678901234567890,"flag":false,"nil":null}`,
		},
		{
			name: "escaping like encoding/json",
			cfg:  FormatConfig{Fields: []string{"msg"}},
			want: `{"msg":"\u003ca href=\"x\"\u003e\u2028\n\t\u0001é\u003c/a\u003e"}`,
		},
		{
			name: "nested values with sorted keys",
			cfg:  FormatConfig{Fields: []string{"tags", "author"}},
			want: `{"tags":["a",1,null],"author":{"a":true,"z":1}}`,
		},
		{
			name: "envelope",
			cfg:  FormatConfig{Fields: []string{"id"}, Envelope: true},
			want: `{"type":"post","action":"saved","data":{"id":"1"}}`,
		},
		{
			name: "envelope with nothing selected",
			cfg:  FormatConfig{Fields: []string{"missing"}, Envelope: true},
			want: `{"type":"post","action":"saved","data":{}}`,
		},
		{
			name: "all fields sorted",
			cfg:  FormatConfig{},
			del:  []string{"msg", "tags", "author", "n", "flag"},
			want: `{"big":12345678901234567890,"id":"1","nil":null,"thread":"7"}`,
		},
		{
			name: "Go values from custom stages",
			cfg:  FormatConfig{Fields: []string{"i", "f", "whole", "s", "u"}},
			doc:  map[string]any{"i": 3, "f": 0.25, "whole": 2.0, "s": struct{ A int }{1}, "u": uint8(7)},
			want: `{"i":3,"f":0.25,"whole":2,"s":{"A":1},"u":7}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustStage(t)(NewFormat(tt.cfg))
			it := NewItem(mustHook(t, hook))
			for _, k := range tt.del {
				delete(it.Doc, k)
			}
			for k, v := range tt.doc {
				it.Doc[k] = v
			}
			if err := s.Process(context.Background(), it); err != nil {
				t.Fatal(err)
			}
			if string(it.Data) != tt.want {
				t.Errorf("Data =\n%s\nwant\n%s", it.Data, tt.want)
			}
			if !json.Valid(it.Data) {
				t.Errorf("Data is not valid JSON: %s", it.Data)
			}
		})
	}
}

func TestFormatMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "\x00\x1f\x7f", "a\xffb", "\u2029", `"\/`, "日本語", "<>&", "\xed\xa0\x80"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestFormatRejectsUnencodable(t *testing.T) {
	t.Parallel()
	s := mustStage(t)(NewFormat(FormatConfig{Fields: []string{"c", "n"}}))
	for name, v := range map[string]any{"channel": make(chan int), "bad number": json.Number("1x")} {
		it := NewItem(mustHook(t, `{"model":"post","action":"post_save","id":"1"}`))
		it.Doc["c"] = v
		if err := s.Process(context.Background(), it); !IsReject(err) {
			t.Errorf("%s: got %v, want a rejection", name, err)
		}
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	channels := []string{"thread:{thread}", "forum:{forum}", "user:{author}", "user:{author}", "post:{$id}", "org:{author.org}"}
	tests := []struct {
		name    string
		hook    string
		want    []string
		outcome string
		errText string
	}{
		{
			name:    "all channels, deduplicated",
			hook:    `{"model":"post","action":"post_save","id":"1","thread":"7","forum":"pycon","author":42}`,
			want:    []string{"thread:7", "forum:pycon", "user:42", "post:1"},
			outcome: "ok",
		},
		{
			name:    "missing, null, empty and object fields are skipped",
			hook:    `{"model":"post","action":"post_save","id":"1","thread":"","forum":null,"author":{"org":"acme"}}`,
			want:    []string{"post:1", "org:acme"},
			outcome: "ok",
		},
		{
			name:    "bad rendered channel rejects",
			hook:    `{"model":"post","action":"post_save","id":"1","thread":"a b"}`,
			outcome: "reject",
			errText: `channel "thread:a b" from "thread:{thread}" must match`,
		},
		{
			name:    "too long rejects",
			hook:    `{"model":"post","action":"post_save","id":"1","thread":"` + strings.Repeat("x", 130) + `"}`,
			outcome: "reject",
		},
	}
	s := mustStage(t)(NewRoute(RouteConfig{Channels: channels}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			it, err := runStage(t, s, mustHook(t, tt.hook))
			if got := outcome(err); got != tt.outcome {
				t.Fatalf("outcome %s (%v), want %s", got, err, tt.outcome)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not contain %q", err, tt.errText)
				}
				return
			}
			if !reflect.DeepEqual(it.Channels, tt.want) {
				t.Errorf("Channels = %q, want %q", it.Channels, tt.want)
			}
		})
	}
}

func TestRouteNoChannelDrops(t *testing.T) {
	t.Parallel()
	s := mustStage(t)(NewRoute(RouteConfig{Channels: []string{"thread:{thread}"}}))
	_, err := runStage(t, s, mustHook(t, `{"model":"post","action":"post_save","id":"1"}`))
	if reason, ok := IsDrop(err); !ok || reason != "no route" {
		t.Fatalf("got %v, want drop \"no route\"", err)
	}
}

func TestPipelineRunOutcomes(t *testing.T) {
	t.Parallel()
	route := mustStage(t)(NewRoute(RouteConfig{Channels: []string{"thread:{thread}", "forum:{forum}"}}))
	setMeta := StageFunc(func(_ context.Context, it *Item) error { it.Meta["seen"] = "yes"; return nil })
	tests := []struct {
		name    string
		p       Pipeline
		outcome string // ok, drop, reject or retry
		reason  string
		errText string
		events  int
		data    string
	}{
		{name: "default data is the document", p: Pipeline{setMeta, route}, outcome: "ok", events: 2, data: `{"forum":"f","id":"1","thread":"7"}`},
		{name: "no route stage drops", p: Pipeline{setMeta}, outcome: "drop", reason: "no route"},
		{name: "drop stops the pipeline", p: Pipeline{setMeta, StageFunc(func(context.Context, *Item) error { return Drop("bored") }), failing("should not run")}, outcome: "drop", reason: "bored"},
		{name: "wrapped drop", p: Pipeline{StageFunc(func(context.Context, *Item) error { return errors.Join(Drop("x")) })}, outcome: "drop", reason: "x"},
		{name: "reject", p: Pipeline{setMeta, StageFunc(func(context.Context, *Item) error { return Reject(errors.New("bad data")) })}, outcome: "reject", errText: "stage 2: bad data"},
		{name: "wrapped ErrReject", p: Pipeline{StageFunc(func(context.Context, *Item) error { return errors.Join(errors.New("x"), ErrReject) })}, outcome: "reject"},
		{name: "transient", p: Pipeline{route, failing("cache unavailable")}, outcome: "retry", errText: "stage 2: cache unavailable"},
		{name: "panic rejects", p: Pipeline{StageFunc(func(context.Context, *Item) error { panic("boom") })}, outcome: "reject", errText: "stage panicked: boom"},
		{name: "nested pipelines", p: Pipeline{Pipeline{setMeta}, Pipeline{route}}, outcome: "ok", events: 2},
		{name: "bad event name rejects", p: Pipeline{route, StageFunc(func(_ context.Context, it *Item) error { it.Event = "a\nb"; return nil })}, outcome: "reject"},
		{name: "ForActions skips other actions", p: Pipeline{ForActions(failing("x"), ActionDelete), route}, outcome: "ok", events: 2},
		{name: "ForActions runs listed actions", p: Pipeline{ForActions(failing("x"), ActionSave, ActionDelete), route}, outcome: "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mustHook(t, `{"model":"post","action":"post_save","id":"1","thread":"7","forum":"f"}`)
			res, err := tt.p.Run(context.Background(), h)
			got := outcome(err)
			if res.Dropped {
				got = "drop"
				if err != nil {
					t.Errorf("dropped with error %v", err)
				}
			}
			if got != tt.outcome {
				t.Fatalf("outcome %s (res %+v, err %v), want %s", got, res, err, tt.outcome)
			}
			if res.DropReason != tt.reason {
				t.Errorf("DropReason %q, want %q", res.DropReason, tt.reason)
			}
			if err != nil && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q does not contain %q", err, tt.errText)
			}
			if len(res.Events) != tt.events {
				t.Errorf("%d events, want %d", len(res.Events), tt.events)
			}
			if tt.data != "" && (len(res.Events) == 0 || string(res.Events[0].Data) != tt.data) {
				t.Errorf("events %+v, want data %s", res.Events, tt.data)
			}
			for _, e := range res.Events {
				if e.Event != "post.saved" {
					t.Errorf("event name %q, want post.saved", e.Event)
				}
			}
		})
	}
}

func failing(msg string) Stage {
	return StageFunc(func(context.Context, *Item) error { return errors.New(msg) })
}

func TestRunCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Pipeline{}.Run(ctx, mustHook(t, `{"model":"post","action":"post_save","id":"1"}`))
	if !errors.Is(err, context.Canceled) || IsReject(err) {
		t.Fatalf("got %v, want a transient context.Canceled", err)
	}
}

func TestRejectNil(t *testing.T) {
	t.Parallel()
	if Reject(nil) != nil {
		t.Error("Reject(nil) != nil")
	}
	if IsReject(nil) || IsReject(errors.New("x")) {
		t.Error("IsReject of nil or a plain error")
	}
	if _, ok := IsDrop(nil); ok {
		t.Error("IsDrop(nil)")
	}
}
