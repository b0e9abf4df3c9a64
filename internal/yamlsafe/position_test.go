package yamlsafe

import "testing"

func TestPathPosition(t *testing.T) {
	doc := []byte("admin: [http://a]\nsteps:\n  - name: a\n    percent: 5\n  - name: b\n")
	for _, tc := range []struct {
		path      string
		line, col int
	}{
		{"$.steps[0].percent", 4, 14},
		{"$.steps[1].name", 5, 11},
		{"$.steps[1].percent", 5, 9}, // missing: its mapping (goccy points at its first key)
		{"$.nope", 0, 0},
		{"$", 0, 0},
	} {
		if l, c := PathPosition(doc, tc.path); l != tc.line || c != tc.col {
			t.Errorf("PathPosition(%s) = %d:%d, want %d:%d", tc.path, l, c, tc.line, tc.col)
		}
	}
	if l, c := PathPosition([]byte("a: [\n"), "$.a"); l != 0 || c != 0 {
		t.Errorf("an unparsable document: %d:%d, want 0:0", l, c)
	}
}

func TestQuotedPosition(t *testing.T) {
	doc := []byte("poll: 1s\ntimeout: soon\nx:later\n")
	for _, tc := range []struct {
		msg       string
		line, col int
	}{
		{`time: invalid duration "soon"`, 2, 10},
		{`time: invalid duration "later"`, 3, 3},
		{`no quotes`, 0, 0},
		{`time: invalid duration "absent"`, 0, 0},
	} {
		if l, c := QuotedPosition(doc, tc.msg); l != tc.line || c != tc.col {
			t.Errorf("QuotedPosition(%q) = %d:%d, want %d:%d", tc.msg, l, c, tc.line, tc.col)
		}
	}
}
