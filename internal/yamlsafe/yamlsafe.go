// Package yamlsafe bounds the YAML darktime reads before a YAML parser sees
// it. Every loader (scenarios, pipelines, shadow configs, gate files) calls
// Check first, because the parser's costs are not proportional to its
// input: a 400-byte document of nested aliases expands to gigabytes (the
// "billion laughs"), and 100 KB of nested brackets drive the parser past
// 2 GB. Check refuses, in one allocation-free pass and in this order:
//
//   - a document over Limits.MaxBytes (default MaxBytes, 1 MiB), before
//     looking at a single byte, so that megabytes of comments cost nothing;
//   - an anchor (&name) or an alias (*name, including merge keys <<: *name):
//     darktime's files never need them, and refusing them is the only
//     bound on expansion that does not depend on what the decoder does;
//   - nesting deeper than Limits.MaxDepth (default MaxDepth, 64): flow
//     collections ([ and {) plus block indentation levels and "- " entries.
//
// The scan is a conservative approximation of YAML's syntax (it knows
// quoted and block scalars, comments and flow collections, so a '*' inside
// a string is not an alias); it never accepts an anchor or alias the parser
// would see, and its positions (line and column, from 1) are the ones the
// loaders print as FILE:LINE:COL.
package yamlsafe

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/goccy/go-yaml"
)

const (
	// MaxBytes is the default size limit of a YAML document. darktime's
	// largest shipped YAML file is a few kilobytes.
	MaxBytes = 1 << 20
	// MaxDepth is the default nesting limit; the deepest shipped file
	// nests 5 levels.
	MaxDepth = 64
)

// Sentinel errors, wrapped by every *Error.
var (
	ErrTooLarge = errors.New("YAML document too large")
	ErrTooDeep  = errors.New("YAML nesting too deep")
	ErrAlias    = errors.New("YAML anchors and aliases are not supported")
)

// Limits bound a document; a zero field means its default.
type Limits struct {
	MaxBytes int // default MaxBytes
	MaxDepth int // default MaxDepth
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = MaxDepth
	}
	return l
}

// Error is a refused document: where (Line and Column from 1; 0 for the
// size) and why. It wraps ErrTooLarge, ErrTooDeep or ErrAlias.
type Error struct {
	Line, Column int
	Msg          string
	Err          error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Check refuses a document that is too large, uses anchors or aliases, or
// nests too deep; see the package documentation. A nil error says nothing
// about the document's validity: the parser still decides that.
func Check(data []byte, lim Limits) error {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return &Error{Err: ErrTooLarge, Msg: fmt.Sprintf(
			"%d bytes is over the limit of %d bytes for a YAML file (darktime's configs and scenarios are a few KB: is this the right file?)",
			len(data), lim.MaxBytes)}
	}
	s := scanner{data: data, lim: lim}
	return s.run()
}

type scanner struct {
	data    []byte
	lim     Limits
	flow    int   // open [ and { around the current position
	indents []int // block indentation levels (columns from 0) around it

	quote byte // '"' or '\'' inside a quoted scalar that spans lines

	block       bool // inside a block scalar (| or >)
	blockParent int  // indentation of the line that opened it
	blockIndent int  // its content's indentation; -1 until the first line
}

func (s *scanner) run() error {
	data := s.data
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	off := len(s.data) - len(data)
	for off < len(s.data) {
		// A line ends at LF, CRLF or a lone CR, as for the parser.
		end := bytes.IndexAny(s.data[off:], "\r\n")
		next := 0
		if end < 0 {
			end, next = len(s.data), len(s.data)
		} else {
			end += off
			next = end + 1
			if s.data[end] == '\r' && next < len(s.data) && s.data[next] == '\n' {
				next++
			}
		}
		if err := s.line(off, s.data[off:end]); err != nil {
			return err
		}
		off = next
	}
	return nil
}

// line scans one line (without its '\n') that starts at offset off.
func (s *scanner) line(off int, line []byte) error {
	indent := 0
	for indent < len(line) && line[indent] == ' ' {
		indent++
	}
	blank := indent == len(line) || isBlankFrom(line, indent)
	if s.block {
		if blank {
			return nil
		}
		if s.blockIndent < 0 {
			if indent > s.blockParent {
				s.blockIndent = indent
			}
		}
		if s.blockIndent >= 0 && indent >= s.blockIndent {
			return nil
		}
		s.block = false // this line is the first after the block scalar
	}
	start := 0
	if s.quote == 0 {
		if blank || line[indent] == '#' {
			return nil
		}
		if s.flow == 0 {
			switch {
			case indent == 0 && line[0] == '%':
				return nil // a directive
			case indent == 0 && (bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("..."))) &&
				(len(line) == 3 || line[3] == ' ' || line[3] == '\t'):
				s.indents = s.indents[:0]
				if line[0] == '.' {
					return nil
				}
				start = 3
			default:
				for len(s.indents) > 0 && s.indents[len(s.indents)-1] >= indent {
					s.indents = s.indents[:len(s.indents)-1]
				}
				s.indents = append(s.indents, indent)
				if err := s.depth(off, indent); err != nil {
					return err
				}
				start = indent
			}
		}
	}
	return s.scan(off, line, start, indent)
}

func isBlankFrom(line []byte, i int) bool {
	for ; i < len(line); i++ {
		if line[i] != ' ' && line[i] != '\t' {
			return false
		}
	}
	return true
}

func (s *scanner) depth(off, col int) error {
	if d := len(s.indents) + s.flow; d > s.lim.MaxDepth {
		return s.errorAt(off+col, ErrTooDeep, fmt.Sprintf(
			"nesting deeper than %d levels (brackets, braces, indentation and list entries): flatten the document", s.lim.MaxDepth))
	}
	return nil
}

// scan walks a line from column i. atNode is true where a node may begin:
// there '&' is an anchor, '*' an alias, a quote opens a quoted scalar and
// | or > a block scalar; elsewhere they are ordinary characters of a plain
// scalar.
func (s *scanner) scan(off int, line []byte, i, indent int) error {
	atNode := true
	if s.quote != 0 {
		i = s.skipQuoted(line, i)
		if s.quote != 0 {
			return nil
		}
		atNode = false
	}
	for i < len(line) {
		c := line[i]
		if c == ' ' || c == '\t' {
			i++
			continue
		}
		if c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return nil // a comment, to the end of the line
		}
		if atNode {
			switch c {
			case '&':
				return s.errorAt(off+i, ErrAlias, "YAML anchors (&name) are not supported: write the value out")
			case '*':
				return s.errorAt(off+i, ErrAlias, "YAML aliases (*name) are not supported: write the value out")
			case '!': // a tag: the node follows it
				for i < len(line) && line[i] != ' ' && line[i] != '\t' && (s.flow == 0 || !isFlowIndicator(line[i])) {
					i++
				}
				continue
			case '"', '\'':
				s.quote = c
				i = s.skipQuoted(line, i+1)
				if s.quote != 0 {
					return nil // continues on the next line
				}
				atNode = false
				continue
			case '[', '{':
				s.flow++
				if err := s.depth(off, i); err != nil {
					return err
				}
				i++
				continue
			case '|', '>':
				if s.flow == 0 {
					s.block, s.blockParent, s.blockIndent = true, indent, -1
					return nil // the header's rest is indicators and a comment
				}
			case '-', '?':
				if s.flow == 0 && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t') {
					j := i + 1
					for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
						j++
					}
					s.indents = append(s.indents, j)
					if err := s.depth(off, i); err != nil {
						return err
					}
					i = j
					continue
				}
			}
		}
		if s.flow > 0 {
			switch c {
			case '[', '{':
				s.flow++
				if err := s.depth(off, i); err != nil {
					return err
				}
				atNode = true
				i++
				continue
			case ']', '}':
				s.flow--
				atNode = false
				i++
				continue
			case ',':
				atNode = true
				i++
				continue
			case ':':
				// Stricter than YAML, as the parser is: "{a:*b}" is an alias.
				atNode = true
				i++
				continue
			}
		} else if c == ':' && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t' || line[i+1] == '*' || line[i+1] == '&') {
			atNode = true
			i++
			continue
		}
		atNode = false // a plain scalar
		i++
	}
	return nil
}

func isFlowIndicator(c byte) bool {
	return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'
}

// skipQuoted returns the index after the closing quote of s.quote from i,
// clearing s.quote, or len(line) when the scalar goes on past this line.
func (s *scanner) skipQuoted(line []byte, i int) int {
	for i < len(line) {
		switch c := line[i]; {
		case c == '\\' && s.quote == '"':
			i += 2
		case c == '\'' && s.quote == '\'' && i+1 < len(line) && line[i+1] == '\'':
			i += 2
		case c == s.quote:
			s.quote = 0
			return i + 1
		default:
			i++
		}
	}
	return len(line)
}

// errorAt places an error at byte offset off: line and column from 1,
// the column counted in characters as the YAML parser does.
func (s *scanner) errorAt(off int, err error, msg string) *Error {
	before := s.data[:off]
	line := 1 + bytes.Count(before, []byte("\n")) + bytes.Count(before, []byte("\r")) - bytes.Count(before, []byte("\r\n"))
	lineStart := bytes.LastIndexAny(before, "\r\n") + 1
	col := len(bytes.Runes(before[lineStart:])) + 1
	return &Error{Line: line, Column: col, Msg: msg, Err: err}
}

// Position is where a YAML parser error (goccy/go-yaml's yaml.Error)
// points, with its message without the position; line and col are 0 when
// it names none.
func Position(err error) (msg string, line, col int) {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return err.Error(), 0, 0
	}
	if tk := ye.GetToken(); tk != nil && tk.Position != nil {
		line, col = tk.Position.Line, tk.Position.Column
	}
	return ye.GetMessage(), line, col
}
