package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/yamlsafe"
)

// ErrInvalid marks a scenario that does not check; every *Error and
// Errors wraps it.
var ErrInvalid = errors.New("invalid scenario")

// Error is one problem of a scenario, with its place when known.
type Error struct {
	File         string // "" when the scenario did not come from a file
	Line, Column int    // from 1; 0 when unknown
	Path         string // "clients.ramp", "faults[1].kill_node"; "" for the whole file
	Msg          string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() == 0 {
			b.WriteString("scenario")
		}
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	return b.String() + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Errors is every problem found in one scenario, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// LoadFile reads and parses a scenario file.
func LoadFile(name string, opts Options) (*Scenario, error) {
	return LoadFileContext(context.Background(), name, opts)
}

// LoadFileContext reads and parses a scenario file; ctx stops the read.
// The file must be a regular file (unless opts.AllowSpecialFiles) of at
// most yamlsafe.MaxBytes (1 MiB).
func LoadFileContext(ctx context.Context, name string, opts Options) (*Scenario, error) {
	data, err := inputfile.Read(ctx, name, inputfile.Options{
		MaxBytes: yamlsafe.MaxBytes, AllowSpecial: opts.AllowSpecialFiles, AllowSpecialHint: "--allow-special-files",
	})
	if err != nil {
		// The reader's errors start with the path: say it once.
		return nil, Errors{{File: name, Msg: strings.TrimPrefix(err.Error(), name+": ")}}
	}
	s, err := Parse(data, opts)
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			e.File = name
		}
	}
	if s != nil {
		// Files a scenario names are relative to it.
		rel := func(p *string) {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(filepath.Dir(name), *p)
			}
		}
		rel(&s.Target.Auth)
		if s.CompareWith != nil {
			rel(&s.CompareWith.Auth)
		}
		if s.Clients.Token != nil {
			rel(&s.Clients.Token.KeyFile)
		}
		if s.Shadow != nil && s.Shadow.Canary != "" {
			rel(&s.Shadow.Canary)
			if opts.CheckCanary != nil {
				if cerr := opts.CheckCanary(ctx, s.Shadow.Canary); cerr != nil {
					return nil, Errors{{File: name, Path: "shadow.canary", Msg: cerr.Error()}}
				}
			}
		}
	}
	return s, err
}

// Parse parses and validates a scenario. On failure the error is Errors,
// every problem with its line; on success every default is filled in.
func Parse(data []byte, opts Options) (*Scenario, error) {
	d, err := parseDoc(data)
	if err != nil {
		return nil, err
	}
	var s Scenario
	if err := d.decode(&s); err != nil {
		return nil, err
	}
	v := &validator{doc: d, s: &s, opts: opts, overridden: map[string]bool{}}
	for _, path := range opts.Overrides.apply(&s) {
		v.overridden[path] = true
	}
	v.validate()
	if len(v.errs) > 0 {
		return nil, v.errs.sorted()
	}
	return &s, nil
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	return es
}

// doc is a parsed YAML document and the node of every path in it.
type doc struct {
	body  ast.Node
	nodes map[string]ast.Node // "clients.ramp" -> its value node
	errs  Errors
}

func parseDoc(data []byte) (d *doc, err error) {
	defer func() {
		// The YAML library panics on some malformed input (found by fuzzing
		// the shadow config); a panic is a parse error, not a crash.
		if r := recover(); r != nil {
			d, err = nil, Errors{{Msg: fmt.Sprintf("cannot parse the YAML (%v)", r)}}
		}
	}()
	if err := yamlsafe.Check(data, yamlsafe.Limits{}); err != nil {
		e := &Error{Msg: err.Error()}
		var ye *yamlsafe.Error
		if errors.As(err, &ye) {
			e.Line, e.Column, e.Msg = ye.Line, ye.Column, ye.Msg
		}
		return nil, Errors{e}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{Msg: "empty scenario: it needs at least version: 1, name, clients, publishers, phases and limits"}}
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Errors{yamlError(err)}
	}
	if len(file.Docs) != 1 {
		return nil, Errors{{Msg: fmt.Sprintf("want one YAML document, got %d", len(file.Docs))}}
	}
	d = &doc{body: file.Docs[0].Body, nodes: map[string]ast.Node{}}
	if d.body == nil {
		return nil, Errors{{Msg: "empty scenario: it needs at least version: 1, name, clients, publishers, phases and limits"}}
	}
	d.check(d.body, reflect.TypeFor[Scenario](), "")
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return d, nil
}

// decode fills s from the checked document.
func (d *doc) decode(s *Scenario) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Errors{{Msg: fmt.Sprintf("cannot parse the YAML (%v)", r)}}
		}
	}()
	if err := yaml.NodeToValue(d.body, s, yaml.Strict()); err != nil {
		// check should have caught it; keep the library's words.
		return Errors{yamlError(err)}
	}
	return nil
}

func yamlError(err error) *Error {
	e := &Error{}
	e.Msg, e.Line, e.Column = yamlsafe.Position(err)
	return e
}

// at returns an error placed at node.
func at(node ast.Node, path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if node != nil {
		if tk := node.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

var durationType = reflect.TypeFor[Duration]()

// check walks the document beside the Go type it must fill, so that an
// unknown key or a value of the wrong type is reported in the schema's
// words ("clients.count: want a whole number, got 1.5") and every one of
// them is reported, not the first. The decoder alone would truncate 1.5
// into an int and name Go struct fields.
func (d *doc) check(node ast.Node, t reflect.Type, path string) {
	for a, ok := node.(*ast.AnchorNode); ok; a, ok = node.(*ast.AnchorNode) {
		node = a.Value
	}
	switch n := node.(type) {
	case nil:
		d.errs = append(d.errs, at(nil, path, "has no value: want %s", describe(t)))
		return
	case *ast.AliasNode:
		d.errs = append(d.errs, at(n, path, "YAML aliases are not supported in scenarios: write the value out"))
		return
	case *ast.TagNode:
		d.errs = append(d.errs, at(n, path, "YAML tags (%s) are not supported in scenarios", n.Start.Value))
		return
	}
	if path != "" {
		d.nodes[path] = node
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, isNull := node.(*ast.NullNode); isNull {
		d.errs = append(d.errs, at(node, path, "has no value: want %s", describe(t)))
		return
	}
	if t == thresholdType {
		switch node.(type) {
		case *ast.StringNode, *ast.LiteralNode:
			return // the gate; validate parses it
		case ast.MapNode: // {gate, abort_on_fail, delay}: checked as the struct
		default:
			d.errs = append(d.errs, at(node, path, "want a gate like \"p99_delivery_ms < 50\", or a mapping of %s, got %s", strings.Join(keysOf(t), ", "), kindOf(node)))
			return
		}
	}
	if t == durationType {
		s, ok := node.(*ast.StringNode)
		if !ok {
			d.errs = append(d.errs, at(node, path, "want a duration with a unit, like 30s or 5m, got %s", node))
			return
		}
		if _, err := parseDuration(s.Value); err != nil {
			d.errs = append(d.errs, at(node, path, "%v", err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := node.(ast.MapNode)
		if !ok {
			d.errs = append(d.errs, at(node, path, "want a mapping of %s, got %s", strings.Join(keysOf(t), ", "), kindOf(node)))
			return
		}
		it := m.MapRange()
		for it.Next() {
			key := it.Key()
			name := key.GetToken().Value
			if _, isMerge := key.(*ast.MergeKeyNode); isMerge {
				d.errs = append(d.errs, at(key, path, "YAML merge keys (<<) are not supported in scenarios"))
				continue
			}
			f, ok := fieldByTag(t, name)
			if !ok {
				d.errs = append(d.errs, at(key, path, "unknown key %q (known: %s)", name, strings.Join(keysOf(t), ", ")))
				continue
			}
			d.check(it.Value(), f.Type, join(path, name))
		}
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			d.errs = append(d.errs, at(node, path, "want a list, got %s", kindOf(node)))
			return
		}
		for i, v := range seq.Values {
			d.check(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if _, ok := node.(*ast.StringNode); !ok {
			if _, lit := node.(*ast.LiteralNode); !lit {
				d.errs = append(d.errs, at(node, path, "want a string, got %s (quote it)", kindOf(node)))
			}
		}
	case reflect.Int:
		n, ok := node.(*ast.IntegerNode)
		if !ok {
			d.errs = append(d.errs, at(node, path, "want a whole number, got %s", kindOf(node)))
			return
		}
		if _, err := strconv.Atoi(fmt.Sprint(n.Value)); err != nil {
			d.errs = append(d.errs, at(node, path, "%v is out of range", n.Value))
		}
	case reflect.Float64:
		switch node.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
		default:
			d.errs = append(d.errs, at(node, path, "want a number, got %s", kindOf(node)))
		}
	case reflect.Bool:
		if _, ok := node.(*ast.BoolNode); !ok {
			d.errs = append(d.errs, at(node, path, "want true or false, got %s", kindOf(node)))
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// kindOf names what a node holds, quoting short scalars.
func kindOf(node ast.Node) string {
	switch n := node.(type) {
	case ast.MapNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return strconv.Quote(truncate(n.Value))
	case *ast.InfinityNode, *ast.NanNode:
		return node.GetToken().Value
	case ast.ScalarNode:
		return truncate(node.GetToken().Value)
	}
	return node.Type().String()
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

func describe(t reflect.Type) string {
	if t == thresholdType {
		return `a gate like "p99_delivery_ms < 50", or a mapping of gate, abort_on_fail, delay`
	}
	if t == durationType {
		return "a duration like 30s"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping of " + strings.Join(keysOf(t), ", ")
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); tagName(f) == name && name != "" && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name := tagName(t.Field(i)); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}
