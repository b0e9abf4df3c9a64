package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines bounds every function of this command: its logic belongs
// in the packages (README, "What is here"); a command only wires flags.
const maxFuncLines = 60

// notYet are the files the guard skips, and why.
var notYet = map[string]string{
	"bench.go": "issue 13.1 rewrites it (internal/fanoutbench, internal/hookbench) on its own branch",
}

// TestFunctionsAreShort fails on a function of cmd/darktime longer than
// maxFuncLines, counting from its func line to its closing brace.
func TestFunctionsAreShort(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if _, skip := notYet[name]; skip || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			from, to := fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line
			if n := to - from + 1; n > maxFuncLines {
				t.Errorf("%s:%d: %s is %d lines, over %d: move its logic into a package", name, from, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
}
