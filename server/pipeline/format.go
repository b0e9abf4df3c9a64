package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
)

// FormatConfig configures a format stage, which renders Item.Data: the
// JSON object browsers get.
type FormatConfig struct {
	// Fields are the document fields to include, in this order; missing
	// ones are left out. Empty means every field, in key order.
	Fields []string `yaml:"fields"`
	// Envelope wraps the object as
	// {"type":<model>,"action":<saved|deleted>,"data":{...}}.
	Envelope bool `yaml:"envelope"`
}

type format struct {
	fields   []string
	keys     [][]byte // the JSON-encoded keys of fields, with the colon
	envelope bool
}

// NewFormat returns a stage that sets Item.Data.
func NewFormat(cfg FormatConfig) (Stage, error) {
	f := &format{envelope: cfg.Envelope}
	seen := map[string]bool{}
	for _, name := range cfg.Fields {
		if name == "" {
			return nil, fmt.Errorf("format: fields: empty field name")
		}
		if seen[name] {
			return nil, fmt.Errorf("format: fields: %q listed twice", name)
		}
		seen[name] = true
		f.fields = append(f.fields, name)
		f.keys = append(f.keys, append(appendString(nil, name), ':'))
	}
	return f, nil
}

func (f *format) Process(_ context.Context, it *Item) error {
	b := make([]byte, 0, 256)
	if f.envelope {
		b = append(b, `{"type":`...)
		b = appendString(b, it.Hook.Model)
		b = append(b, `,"action":`...)
		b = appendString(b, it.Hook.Verb())
		b = append(b, `,"data":`...)
	}
	var err error
	if f.fields == nil {
		b, err = appendObject(b, it.Doc, nil)
	} else {
		b, err = f.appendSelected(b, it.Doc)
	}
	if err != nil {
		return Rejectf("format: %s hook %s: %v", it.Hook.Model, it.Hook.ID, err)
	}
	if f.envelope {
		b = append(b, '}')
	}
	it.Data = b
	return nil
}

func (f *format) appendSelected(b []byte, doc map[string]any) ([]byte, error) {
	b = append(b, '{')
	first := true
	for i, name := range f.fields {
		v, ok := doc[name]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.keys[i]...)
		var err error
		if b, err = appendValue(b, v); err != nil {
			return b, fmt.Errorf("field %q: %v", name, err)
		}
	}
	return append(b, '}'), nil
}

// appendObject appends m as a JSON object with sorted keys
// (encoding/json sorts map keys).
func appendObject(b []byte, m map[string]any, _ []string) ([]byte, error) {
	enc, err := json.Marshal(m)
	if err != nil {
		return b, err
	}
	return append(b, enc...), nil
}

// appendValue appends v as JSON, encoded by encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	enc, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, enc...), nil
}

// appendString appends s as a JSON string, as encoding/json escapes it.
func appendString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}
