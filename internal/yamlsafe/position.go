package yamlsafe

import (
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// PathPosition is the line and column of the value at a YAML path
// ("$.steps[1].percent"), or of its nearest parent that exists (a missing
// key points at its mapping); 0, 0 when the document does not parse or
// nothing on the path does. Loaders use it to place a validation error.
func PathPosition(data []byte, path string) (line, col int) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return 0, 0
	}
	for p := path; p != "" && p != "$"; p = parentPath(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		node, err := yp.FilterFile(file)
		if err != nil || node == nil {
			continue
		}
		if tk := node.GetToken(); tk != nil && tk.Position != nil {
			return tk.Position.Line, tk.Position.Column
		}
	}
	return 0, 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// QuotedPosition locates the value quoted in an error that has no
// position (time: invalid duration "soon"): the first line that has it
// as a value; 0, 0 when none does.
func QuotedPosition(data []byte, msg string) (line, col int) {
	i := strings.IndexByte(msg, '"')
	j := strings.LastIndexByte(msg, '"')
	if i < 0 || j <= i+1 {
		return 0, 0
	}
	val := msg[i+1 : j]
	for n, l := range strings.Split(string(data), "\n") {
		if k := strings.Index(l, ": "+val); k >= 0 {
			return n + 1, k + 3
		}
		if k := strings.Index(l, ":"+val); k >= 0 {
			return n + 1, k + 2
		}
	}
	return 0, 0
}
