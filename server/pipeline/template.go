package pipeline

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// receivedLayout formats {$received}: RFC 3339, UTC, milliseconds.
const receivedLayout = "2006-01-02T15:04:05.000Z07:00"

// A path names a document field, or a field inside nested objects.
type path []string

func parsePath(s string) (path, error) {
	if s == "" {
		return nil, fmt.Errorf("empty field name")
	}
	p := path(strings.Split(s, "."))
	for _, part := range p {
		if part == "" {
			return nil, fmt.Errorf("field %q has an empty part", s)
		}
	}
	return p, nil
}

func (p path) String() string { return strings.Join(p, ".") }

// lookup finds p in doc.
func (p path) lookup(doc map[string]any) (any, bool) {
	v, ok := doc[p[0]]
	for _, key := range p[1:] {
		if !ok {
			return nil, false
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			return nil, false
		}
		v, ok = m[key]
	}
	return v, ok
}

// appendScalar appends the text of a string, number or boolean and reports
// whether v was one. Null, objects and arrays have no text.
func appendScalar(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return append(b, v...), true
	case json.Number:
		return append(b, v...), true
	case bool:
		return strconv.AppendBool(b, v), true
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64), true
	case float32:
		return strconv.AppendFloat(b, float64(v), 'f', -1, 32), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case int32:
		return strconv.AppendInt(b, int64(v), 10), true
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), true
	}
	return b, false
}

// Hook facts a template can name with a $ prefix.
const (
	varModel = iota + 1
	varAction
	varVerb
	varID
	varEvent
	varJob
	varAttempt
	varReceived
)

var hookVars = map[string]int{
	"$model":    varModel,
	"$action":   varAction,
	"$verb":     varVerb,
	"$id":       varID,
	"$event":    varEvent,
	"$job":      varJob,
	"$attempt":  varAttempt,
	"$received": varReceived,
}

type segment struct {
	literal string
	field   path // a placeholder when non-nil or hookVar != 0
	hookVar int
}

// template is a compiled "{field}" template.
type template struct {
	src  string
	segs []segment
}

func parseTemplate(src string) (*template, error) {
	t := &template{src: src}
	rest := src
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.segs = append(t.segs, segment{literal: rest})
			break
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("template %q: unmatched }", src)
		}
		if open > 0 {
			t.segs = append(t.segs, segment{literal: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return nil, fmt.Errorf("template %q: unclosed {", src)
		}
		name := rest[open+1 : open+1+end]
		rest = rest[open+1+end+1:]
		if strings.HasPrefix(name, "$") {
			v, ok := hookVars[name]
			if !ok {
				return nil, fmt.Errorf("template %q: unknown hook variable {%s}; use one of {$model}, {$action}, {$verb}, {$id}, {$event}, {$job}, {$attempt}, {$received}", src, name)
			}
			t.segs = append(t.segs, segment{hookVar: v})
			continue
		}
		p, err := parsePath(name)
		if err != nil {
			return nil, fmt.Errorf("template %q: %v", src, err)
		}
		t.segs = append(t.segs, segment{field: p})
	}
	return t, nil
}

// single returns the only segment when the template is one placeholder.
func (t *template) single() (segment, bool) {
	if len(t.segs) == 1 && t.segs[0].literal == "" {
		return t.segs[0], true
	}
	return segment{}, false
}

func (t *template) literals() []string {
	var lits []string
	for _, s := range t.segs {
		if s.literal != "" {
			lits = append(lits, s.literal)
		}
	}
	return lits
}

// value returns what a placeholder stands for in it, keeping its type.
func (s segment) value(it *Item) (any, bool) {
	if s.field != nil {
		v, ok := s.field.lookup(it.Doc)
		return v, ok && v != nil
	}
	h := &it.Hook
	switch s.hookVar {
	case varModel:
		return h.Model, true
	case varAction:
		return h.Action, true
	case varVerb:
		return h.Verb(), true
	case varID:
		return h.ID, true
	case varEvent:
		return it.Event, true
	case varJob:
		return h.JobID, true
	case varAttempt:
		return h.Attempt, true
	case varReceived:
		if h.Received.IsZero() {
			return nil, false
		}
		return h.Received.UTC().Format(receivedLayout), true
	}
	return nil, false
}

// render appends the template for it to b. It reports false, and b may
// hold a partial rendering, when a placeholder is missing, null, empty or
// not a scalar.
func (t *template) render(b []byte, it *Item) ([]byte, bool) {
	for _, s := range t.segs {
		if s.literal != "" {
			b = append(b, s.literal...)
			continue
		}
		if s.hookVar == varReceived {
			if it.Hook.Received.IsZero() {
				return b, false
			}
			b = it.Hook.Received.UTC().AppendFormat(b, receivedLayout)
			continue
		}
		v, ok := s.value(it)
		if !ok {
			return b, false
		}
		n := len(b)
		b, ok = appendScalar(b, v)
		if !ok || len(b) == n {
			return b, false
		}
	}
	return b, true
}
