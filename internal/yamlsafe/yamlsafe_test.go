package yamlsafe

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Bomb shapes from issue 12, shared with the loaders' tests through
// copies of these functions (each package keeps its own few lines).

// aliasBomb nests levels of nine aliases each: 9^levels strings once
// expanded, in a few hundred bytes.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < levels; i++ {
		p := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" +
			strings.Repeat(p+",", 8) + p + "]\n")
	}
	return b.String()
}

func deepBrackets(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) + "\n" }

func TestCheck(t *testing.T) {
	t.Parallel()
	deepBlock := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(strings.Repeat(" ", i) + "k:\n")
		}
		return b.String()
	}
	cases := []struct {
		name, doc string
		want      error // nil: accepted
		line, col int
	}{
		{"plain", "a: 1\nb: [x, y]\nc: {d: e}\n", nil, 0, 0},
		{"star in strings", "a: \"*x\"\nb: '&y'\nc: x*y\nd: a &b\ne: [\"*\", '&']\nf: 'it''s *'\n", nil, 0, 0},
		{"star in comment", "a: 1 # *alias &anchor\n# *x\n", nil, 0, 0},
		{"star in block scalar", "a: |\n  *not an alias\n  &nor an anchor\nb: >-\n  *x\nc: 1\n", nil, 0, 0},
		{"multi-line quote", "a: \"first\n  *still in the string\"\nb: 'x\n  &y'\n", nil, 0, 0},
		{"gate expressions", "gates:\n  - p99_delivery_ms < 50\n  - 'lost == 0'\n", nil, 0, 0},
		{"url and colon", "primary: http://127.0.0.1:8080/*\n", nil, 0, 0},
		{"flow json", "{\"a\":[1,2,{\"b\":\"*\"}]}\n", nil, 0, 0},
		{"documents", "---\na: 1\n...\n--- \nb: 2\n", nil, 0, 0},
		{"anchor", "a: &x 1\nb: 2\n", ErrAlias, 1, 4},
		{"alias", "a: 1\nb: *x\n", ErrAlias, 2, 4},
		{"merge key", "a: 1\nb:\n  <<: *a\n", ErrAlias, 3, 7},
		{"alias in list", "l:\n  - *x\n", ErrAlias, 2, 5},
		{"alias in flow", "l: [1, *x]\n", ErrAlias, 1, 8},
		{"alias after json key", "{\"a\":*x}\n", ErrAlias, 1, 6},
		{"alias after tag", "a: !!str *x\n", ErrAlias, 1, 10},
		{"alias after block scalar", "a: |\n  text\nb: *x\n", ErrAlias, 3, 4},
		{"alias after quote lines", "a: \"x\n  y\"\nb: *x\n", ErrAlias, 3, 4},
		{"anchor in sequence of sequences", "- - &x 1\n", ErrAlias, 1, 5},
		{"alias bomb", aliasBomb(9), ErrAlias, 1, 5},
		{"64 brackets", deepBrackets(63), nil, 0, 0},
		{"deep brackets", deepBrackets(50_000), ErrTooDeep, 1, 64},
		{"deep braces", strings.Repeat("{a: ", 100) + "1" + strings.Repeat("}", 100), ErrTooDeep, 1, 253},
		{"deep indentation", deepBlock(100), ErrTooDeep, 65, 65},
		{"deep dashes", strings.Repeat("- ", 100) + "x\n", ErrTooDeep, 1, 127},
		{"flow over lines", "a: [\n" + strings.Repeat("[\n", 70), ErrTooDeep, 64, 1},
		{"too large", "a: 1\n" + strings.Repeat("#", MaxBytes), ErrTooLarge, 0, 0},
		{"big comment under the cap", "a: 1\n" + strings.Repeat("# comment\n", 100_000), nil, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := Check([]byte(c.doc), Limits{})
			if c.want == nil {
				if err != nil {
					t.Fatalf("Check refused a valid document: %v", err)
				}
				return
			}
			var e *Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
			if e.Line != c.line || e.Column != c.col {
				t.Errorf("Check placed it at %d:%d, want %d:%d (%v)", e.Line, e.Column, c.line, c.col, err)
			}
		})
	}
}

// TestShippedFiles: every YAML file of the repository passes (no false
// alarm on what darktime ships), but the loaders' golden bomb cases.
func TestShippedFiles(t *testing.T) {
	t.Parallel()
	var files []string
	for _, pattern := range []string{"../../scenarios/*.yaml", "../../scenario/testdata/*.yaml", "../../shadow/testdata/config/*.yaml",
		"../../server/pipeline/*.yaml", "../../server/pipeline/testdata/config/*.yaml"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found %d YAML files, want at least 20", len(files))
	}
	for _, f := range files {
		if base := filepath.Base(f); strings.HasPrefix(base, "alias") || strings.HasPrefix(base, "deep") {
			continue // the loaders' golden cases of this package's refusals
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(data, Limits{}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	if err := Check([]byte("[[[1]]]"), Limits{MaxDepth: 2}); !errors.Is(err, ErrTooDeep) {
		t.Errorf("MaxDepth 2: %v", err)
	}
	err := Check([]byte("a: 12345"), Limits{MaxBytes: 4})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "limit of 4 bytes") {
		t.Errorf("MaxBytes 4: %v", err)
	}
}

// TestBombsStayCheap measures the heap the bomb shapes cost: the parser
// alone takes gigabytes for them (issue 12); Check refuses them in a few
// kilobytes. Bounds are generous, and no wall-clock time is involved.
func TestBombsStayCheap(t *testing.T) {
	shapes := map[string][]byte{
		"alias bomb":    []byte(aliasBomb(9)),
		"deep brackets": []byte(deepBrackets(50_000)),
		"deep lines":    []byte(strings.Repeat("[\n", 50_000)),
		"big comments":  []byte(strings.Repeat("#"+strings.Repeat("x", 98)+"\n", 100_000)),
		"many newlines": []byte(strings.Repeat("#\n", 600_000)),
	}
	for name, doc := range shapes {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := Check(doc, Limits{})
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("%s: Check allocated %d bytes, want under 64 KiB", name, grew)
		}
		if allocs := testing.AllocsPerRun(3, func() { _ = Check(doc, Limits{}) }); allocs > 10 {
			t.Errorf("%s: %v allocations per Check, want at most 10", name, allocs)
		}
	}
}

// FuzzCheck: Check never panics, places its errors inside the document,
// and whatever it accepts and the parser parses has no anchor or alias.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		"a: 1\n", "a: &x 1\nb: *x\n", "a: '*'\n", "a: |\n  *x\nb: 1\n", "{\"a\":*x}", "- - &x 1\n",
		aliasBomb(9), deepBrackets(200), strings.Repeat("- ", 80) + "x\n",
		strings.Repeat("# comment\n", 1000) + "a: 1\n", "a: \"x\n*y\"\n", "? &k a\n: b\n", "a: !t &x b\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data, Limits{})
		var e *Error
		d := string(data)
		lines := 1 + strings.Count(d, "\n") + strings.Count(d, "\r") - strings.Count(d, "\r\n")
		if errors.As(err, &e) && e.Line > lines {
			t.Fatalf("error at line %d of a %d-line document", e.Line, lines)
		}
		if err != nil {
			return
		}
		file, perr := parseRecover(data)
		if perr != nil || file == nil {
			return
		}
		for _, doc := range file.Docs {
			if doc == nil || doc.Body == nil {
				continue
			}
			if n := append(ast.Filter(ast.AnchorType, doc.Body), ast.Filter(ast.AliasType, doc.Body)...); len(n) > 0 {
				t.Fatalf("Check accepted a document with %s at %v", n[0].Type(), n[0].GetToken().Position)
			}
		}
	})
}

func parseRecover(data []byte) (file *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, errors.New("parser panicked")
		}
	}()
	return parser.ParseBytes(data, 0)
}
