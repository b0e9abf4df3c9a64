package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ValidateConfig configures a validate stage. A hook that fails validation
// is rejected: retrying the same data cannot help.
type ValidateConfig struct {
	// Required fields must be present and not null.
	Required []string `yaml:"required"`
	// Types maps fields to the JSON type they must have when present and
	// not null: string, number, bool, object or array.
	Types map[string]string `yaml:"types"`
}

var jsonTypes = []string{"string", "number", "bool", "object", "array"}

// NewValidate returns a stage that checks the document against cfg.
func NewValidate(cfg ValidateConfig) (Stage, error) {
	v := &validate{}
	for _, f := range cfg.Required {
		p, err := parsePath(f)
		if err != nil {
			return nil, fmt.Errorf("validate: required: %v", err)
		}
		v.required = append(v.required, p)
	}
	for _, f := range sortedKeys(cfg.Types) {
		p, err := parsePath(f)
		if err != nil {
			return nil, fmt.Errorf("validate: types: %v", err)
		}
		typ := cfg.Types[f]
		if !slices.Contains(jsonTypes, typ) {
			return nil, fmt.Errorf("validate: types: field %q: unknown type %q; use one of %s", f, typ, strings.Join(jsonTypes, ", "))
		}
		v.types = append(v.types, typeCheck{field: p, typ: typ})
	}
	return v, nil
}

type typeCheck struct {
	field path
	typ   string
}

type validate struct {
	required []path
	types    []typeCheck
}

func (v *validate) Process(_ context.Context, it *Item) error {
	for _, p := range v.required {
		if val, ok := p.lookup(it.Doc); !ok || val == nil {
			return Rejectf("validate: %s hook %s: missing required field %q", it.Hook.Model, it.Hook.ID, p)
		}
	}
	for _, c := range v.types {
		val, ok := c.field.lookup(it.Doc)
		if !ok || val == nil {
			continue
		}
		if got := jsonType(val); got != c.typ {
			return Rejectf("validate: %s hook %s: field %q is %s, want %s", it.Hook.Model, it.Hook.ID, c.field, got, c.typ)
		}
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number, float64, float32, int, int64, int32, uint, uint64, uint32:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// EnrichConfig configures an enrich stage, which adds computed fields. It
// renames first, then sets, then removes. Every Set template is rendered
// against the document as it was before any Set, so the order of the map
// does not matter.
type EnrichConfig struct {
	// Rename maps old field names to new ones; missing fields are skipped.
	Rename map[string]string `yaml:"rename"`
	// Set maps field names to templates, e.g. {type: post, url: "/t/{thread}",
	// received_at: "{$received}"}. A template that is a single placeholder
	// copies the value with its type ({author.id} stays a number); others
	// render to strings. A template that cannot be rendered is skipped.
	Set map[string]string `yaml:"set"`
	// Remove lists fields to delete, e.g. private ones.
	Remove []string `yaml:"remove"`
	// Event, when set, is a template for the SSE event name, e.g.
	// "{$model}.{status}". If it cannot be rendered the name is unchanged.
	Event string `yaml:"event"`
}

type setField struct {
	name string
	tmpl *template
}

type enrich struct {
	rename [][2]string
	set    []setField
	remove []string
	event  *template
}

// NewEnrich returns a stage that adds computed fields to the document.
func NewEnrich(cfg EnrichConfig) (Stage, error) {
	e := &enrich{}
	for _, from := range sortedKeys(cfg.Rename) {
		to := cfg.Rename[from]
		if from == "" || to == "" {
			return nil, fmt.Errorf("enrich: rename %q to %q: empty field name", from, to)
		}
		e.rename = append(e.rename, [2]string{from, to})
	}
	for _, name := range sortedKeys(cfg.Set) {
		if name == "" {
			return nil, fmt.Errorf("enrich: set: empty field name")
		}
		t, err := parseTemplate(cfg.Set[name])
		if err != nil {
			return nil, fmt.Errorf("enrich: set %s: %v", name, err)
		}
		e.set = append(e.set, setField{name: name, tmpl: t})
	}
	for _, name := range cfg.Remove {
		if name == "" {
			return nil, fmt.Errorf("enrich: remove: empty field name")
		}
		e.remove = append(e.remove, name)
	}
	if cfg.Event != "" {
		t, err := parseTemplate(cfg.Event)
		if err != nil {
			return nil, fmt.Errorf("enrich: event: %v", err)
		}
		for _, lit := range t.literals() {
			if !validName(lit, maxChannelLen, isNameByte) {
				return nil, fmt.Errorf("enrich: event %q: text %q may only use [A-Za-z0-9_:.-]", cfg.Event, lit)
			}
		}
		e.event = t
	}
	return e, nil
}

func (e *enrich) Process(_ context.Context, it *Item) error {
	for _, r := range e.rename {
		if v, ok := it.Doc[r[0]]; ok {
			delete(it.Doc, r[0])
			it.Doc[r[1]] = v
		}
	}
	if len(e.set) > 0 {
		var buf [128]byte
		var small [8]any
		values := small[:0]
		if len(e.set) > len(small) {
			values = make([]any, 0, len(e.set))
		}
		values = values[:len(e.set)]
		for i, s := range e.set {
			if seg, ok := s.tmpl.single(); ok {
				if v, ok := seg.value(it); ok {
					values[i] = v
				}
				continue
			}
			if b, ok := s.tmpl.render(buf[:0], it); ok {
				values[i] = string(b)
			}
		}
		for i, s := range e.set {
			if values[i] != nil {
				it.Doc[s.name] = values[i]
			}
		}
	}
	for _, name := range e.remove {
		delete(it.Doc, name)
	}
	if e.event != nil {
		var buf [128]byte
		if b, ok := e.event.render(buf[:0], it); ok {
			if !validName(string(b), maxChannelLen, isNameByte) {
				return Rejectf("enrich: event name %s must match [A-Za-z0-9_:.-]{1,128}", quoteShort(string(b)))
			}
			it.Event = string(b)
		}
	}
	return nil
}

// DropConfig configures a drop stage. The item is dropped when every When
// field equals its value (a When field that is null matches a missing
// field too), or when the hook's action is in Actions.
type DropConfig struct {
	When    map[string]any `yaml:"when"`
	Actions []string       `yaml:"actions"`
	// Reason is reported in Result.DropReason; by default it describes the
	// match, e.g. "is_spam=true".
	Reason string `yaml:"reason"`
}

type match struct {
	field path
	want  any // nil, bool, string or float64
	text  string
}

type dropStage struct {
	when       []match
	actions    []string
	reason     string // from the config; overrides the two below
	whenReason string
}

// NewDrop returns a stage that drops the items cfg describes.
func NewDrop(cfg DropConfig) (Stage, error) {
	if len(cfg.When) == 0 && len(cfg.Actions) == 0 {
		return nil, fmt.Errorf("drop: set when, actions or both, or the stage does nothing")
	}
	d := &dropStage{reason: cfg.Reason}
	var why []string
	for _, f := range sortedKeys(cfg.When) {
		p, err := parsePath(f)
		if err != nil {
			return nil, fmt.Errorf("drop: when: %v", err)
		}
		m := match{field: p}
		switch v := cfg.When[f].(type) {
		case nil:
			m.text = "null"
		case bool:
			m.want, m.text = v, strconv.FormatBool(v)
		case string:
			m.want, m.text = v, strconv.Quote(v)
		default:
			n, ok := toFloat(v)
			if !ok {
				return nil, fmt.Errorf("drop: when: field %q: %s is not a string, number, bool or null", f, typeName(v))
			}
			m.want, m.text = n, strconv.FormatFloat(n, 'f', -1, 64)
		}
		d.when = append(d.when, m)
		why = append(why, f+"="+m.text)
	}
	for _, a := range cfg.Actions {
		if a != ActionSave && a != ActionDelete {
			return nil, fmt.Errorf("drop: actions: %q is not %q or %q", a, ActionSave, ActionDelete)
		}
		d.actions = append(d.actions, a)
	}
	d.whenReason = strings.Join(why, ",")
	return d, nil
}

func (d *dropStage) Process(_ context.Context, it *Item) error {
	for _, a := range d.actions {
		if a == it.Hook.Action {
			if d.reason != "" {
				return Drop(d.reason)
			}
			return Drop("action " + a)
		}
	}
	if len(d.when) == 0 {
		return nil
	}
	for _, m := range d.when {
		if !m.matches(it.Doc) {
			return nil
		}
	}
	if d.reason != "" {
		return Drop(d.reason)
	}
	return Drop(d.whenReason)
}

func (m *match) matches(doc map[string]any) bool {
	got, ok := m.field.lookup(doc)
	if !ok || got == nil {
		return m.want == nil
	}
	switch want := m.want.(type) {
	case bool:
		b, ok := got.(bool)
		return ok && b == want
	case string:
		s, ok := got.(string)
		return ok && s == want
	case float64:
		n, ok := toFloat(got)
		return ok && n == want
	}
	return false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil && !math.IsInf(f, 0)
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint:
		return float64(v), true
	case uint64:
		return float64(v), true
	case uint32:
		return float64(v), true
	}
	return 0, false
}

// RouteConfig configures a route stage.
type RouteConfig struct {
	// Channels are templates such as "thread:{thread}" or "user:{author}".
	// A template whose fields are missing or empty is skipped; the others
	// must render to names matching [A-Za-z0-9_:.-]{1,128}, or the item is
	// rejected. Duplicates are published once. An item left with no
	// channel at all is dropped with the reason "no route".
	Channels []string `yaml:"channels"`
}

type route struct {
	channels []*template
}

// NewRoute returns a stage that adds channels to the item.
func NewRoute(cfg RouteConfig) (Stage, error) {
	if len(cfg.Channels) == 0 {
		return nil, fmt.Errorf("route: no channels")
	}
	r := &route{}
	for _, src := range cfg.Channels {
		t, err := parseTemplate(src)
		if err != nil {
			return nil, fmt.Errorf("route: %v", err)
		}
		for _, lit := range t.literals() {
			if !validName(lit, maxChannelLen, isNameByte) {
				return nil, fmt.Errorf("route: channel %q: text %q may only use [A-Za-z0-9_:.-]", src, lit)
			}
		}
		r.channels = append(r.channels, t)
	}
	return r, nil
}

func (r *route) Process(_ context.Context, it *Item) error {
	var buf [maxChannelLen]byte
	if it.Channels == nil {
		it.Channels = make([]string, 0, len(r.channels))
	}
	for _, t := range r.channels {
		b, ok := t.render(buf[:0], it)
		if !ok {
			continue
		}
		if !validName(string(b), maxChannelLen, isNameByte) {
			return Rejectf("route: %s hook %s: channel %s from %q must match [A-Za-z0-9_:.-]{1,128}", it.Hook.Model, it.Hook.ID, quoteShort(string(b)), t.src)
		}
		if slices.Contains(it.Channels, string(b)) {
			continue
		}
		it.Channels = append(it.Channels, string(b))
	}
	if len(it.Channels) == 0 {
		return Drop("no route")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
