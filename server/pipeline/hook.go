package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The hook actions an application sends.
const (
	ActionSave   = "post_save"
	ActionDelete = "post_delete"
)

// MaxBatch is the largest number of hooks ParseHookBatch accepts.
const MaxBatch = 1000

// Limits on the names a hook carries; they end up in channel and event
// names, so they are kept short and free of anything that needs escaping.
const (
	maxModelLen = 64
	maxIDLen    = 128
)

// ErrInvalidHook is wrapped by every error of ParseHook and ParseHookBatch.
var ErrInvalidHook = errors.New("invalid hook")

// Hook is one model hook as the application sent it.
type Hook struct {
	Model  string         // e.g. "post"; matches [a-z0-9_]{1,64}
	Action string         // ActionSave or ActionDelete
	ID     string         // the object's id; matches [A-Za-z0-9_:.-]{1,128}
	Fields map[string]any // every other field of the JSON object; numbers are json.Number

	// Set by the worker, not by ParseHook.
	JobID    string    // queue job id, for logs
	Attempt  int       // 1 on the first delivery
	Received time.Time // when the server accepted the hook; zero if unknown
}

// Verb is "saved" for post_save and "deleted" for post_delete.
func (h Hook) Verb() string {
	if h.Action == ActionDelete {
		return "deleted"
	}
	return "saved"
}

// MarshalJSON encodes the hook in the form ParseHook reads: a flat object
// with model, action, id (as a string) and the other fields.
func (h Hook) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(h.Fields)+3)
	for k, v := range h.Fields {
		m[k] = v
	}
	m["model"] = h.Model
	m["action"] = h.Action
	m["id"] = h.ID
	return json.Marshal(m)
}

// ParseHook decodes and checks one hook: a JSON object with a string
// "model", an "action" of post_save or post_delete and an "id" that is a
// string or a non-negative integer (which becomes its decimal text). Every
// error wraps ErrInvalidHook.
func ParseHook(data []byte) (Hook, error) {
	data = trimJSONSpace(data)
	if len(data) == 0 {
		return Hook{}, fmt.Errorf("%w: empty body: send a JSON object", ErrInvalidHook)
	}
	if data[0] != '{' {
		return Hook{}, fmt.Errorf("%w: body is %s, not a JSON object", ErrInvalidHook, jsonKind(data[0]))
	}
	fields, err := parseJSONObject(data)
	if err != nil {
		return Hook{}, fmt.Errorf("%w: bad JSON: %v", ErrInvalidHook, err)
	}
	return hookFromFields(fields)
}

func hookFromFields(fields map[string]any) (Hook, error) {
	var h Hook
	var err error
	if h.Model, err = stringField(fields, "model"); err != nil {
		return Hook{}, err
	}
	if !validName(h.Model, maxModelLen, isModelByte) {
		return Hook{}, fmt.Errorf("%w: model %s must match [a-z0-9_]{1,64}", ErrInvalidHook, quoteShort(h.Model))
	}
	if h.Action, err = stringField(fields, "action"); err != nil {
		return Hook{}, err
	}
	if h.Action != ActionSave && h.Action != ActionDelete {
		return Hook{}, fmt.Errorf("%w: action %s must be %q or %q", ErrInvalidHook, quoteShort(h.Action), ActionSave, ActionDelete)
	}
	switch id := fields["id"].(type) {
	case nil:
		return Hook{}, fmt.Errorf("%w: missing \"id\"", ErrInvalidHook)
	case string:
		h.ID = id
	case json.Number:
		if !isUint(string(id)) {
			return Hook{}, fmt.Errorf("%w: id %s must be a string or a non-negative integer", ErrInvalidHook, quoteShort(string(id)))
		}
		h.ID = string(id)
	default:
		return Hook{}, fmt.Errorf("%w: id must be a string or a non-negative integer, not %s", ErrInvalidHook, typeName(id))
	}
	if !validName(h.ID, maxIDLen, isNameByte) {
		return Hook{}, fmt.Errorf("%w: id %s must match [A-Za-z0-9_:.-]{1,128}", ErrInvalidHook, quoteShort(h.ID))
	}
	delete(fields, "model")
	delete(fields, "action")
	delete(fields, "id")
	h.Fields = fields
	return h, nil
}

func stringField(fields map[string]any, name string) (string, error) {
	v, ok := fields[name]
	if !ok || v == nil {
		return "", fmt.Errorf("%w: missing %q", ErrInvalidHook, name)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %q must be a string, not %s", ErrInvalidHook, name, typeName(v))
	}
	if s == "" {
		return "", fmt.Errorf("%w: empty %q", ErrInvalidHook, name)
	}
	return s, nil
}

// BatchItem is one element of a batch.
type BatchItem struct {
	Index int    // position in the batch, from 0
	Raw   []byte // the element exactly as sent, e.g. to enqueue it
	Hook  Hook   // valid when Err is nil
	Err   error  // why the element is invalid; wraps ErrInvalidHook
}

// ParseHookBatch decodes a batch of hooks, sent either as {"hooks":[...]}
// or as a bare JSON array, of at most MaxBatch elements. An error means the
// batch as a whole is unusable; otherwise each element is checked on its
// own and carries its own Err, so one bad hook does not spoil the others.
func ParseHookBatch(data []byte) ([]BatchItem, error) {
	data = trimJSONSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty body: send {\"hooks\":[...]} or a JSON array", ErrInvalidHook)
	}
	var raws []json.RawMessage
	switch data[0] {
	case '[':
		if err := decodeStrict(data, &raws); err != nil {
			return nil, err
		}
	case '{':
		var body struct {
			Hooks *[]json.RawMessage `json:"hooks"`
		}
		if err := decodeStrict(data, &body); err != nil {
			return nil, err
		}
		if body.Hooks == nil {
			return nil, fmt.Errorf("%w: batch object has no \"hooks\" array", ErrInvalidHook)
		}
		raws = *body.Hooks
	default:
		return nil, fmt.Errorf("%w: batch is %s; send {\"hooks\":[...]} or a JSON array", ErrInvalidHook, jsonKind(data[0]))
	}
	if len(raws) > MaxBatch {
		return nil, fmt.Errorf("%w: batch has %d hooks, more than %d: split it", ErrInvalidHook, len(raws), MaxBatch)
	}
	items := make([]BatchItem, len(raws))
	for i, raw := range raws {
		items[i] = BatchItem{Index: i, Raw: raw}
		h, err := ParseHook(raw)
		if err != nil {
			items[i].Err = fmt.Errorf("hooks[%d]: %w", i, err)
			continue
		}
		items[i].Hook = h
	}
	return items, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: bad JSON: %v", ErrInvalidHook, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: bad JSON: data after the batch", ErrInvalidHook)
	}
	return nil
}

// trimJSONSpace trims the whitespace JSON allows: space, tab, CR and LF.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	}
	if first == '-' || first >= '0' && first <= '9' {
		return "a number"
	}
	return "not JSON"
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64, float32, int, int64, int32, uint, uint64, uint32:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

func isUint(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isModelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// isNameByte reports whether c may appear in an id, a channel or an event
// name: [A-Za-z0-9_:.-].
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}

func validName(s string, max int, ok func(byte) bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// ValidChannel reports whether name is a usable channel name:
// [A-Za-z0-9_:.-]{1,128}.
func ValidChannel(name string) bool { return validName(name, maxChannelLen, isNameByte) }

const maxChannelLen = 128

// parseJSONObject decodes one JSON object with encoding/json, keeping
// numbers as json.Number so 64-bit ids stay exact.
func parseJSONObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	return m, nil
}
