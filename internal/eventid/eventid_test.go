package eventid

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ID
		ok   bool
	}{
		{"1700000000000-3", ID{1700000000000, 3}, true},
		{"5", ID{5, 0}, true},
		{"0-0", ID{}, true},
		{"", ID{}, false},
		{"-1", ID{}, false},
		{"1-", ID{}, false},
		{"a-b", ID{}, false},
		{"+1-2", ID{}, false},
		{"1-+2", ID{}, false},
		{"1-2-3", ID{}, false},
		{"18446744073709551616-0", ID{}, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error %v does not wrap ErrSyntax", tc.in, err)
		}
	}
}

func TestOrder(t *testing.T) {
	t.Parallel()
	a, b, c := ID{1, 5}, ID{2, 0}, ID{2, 1}
	if !a.Less(b) || !b.Less(c) || c.Less(a) || a.Less(a) {
		t.Fatal("Less is not the (ms, seq) order")
	}
	if a.Next() != (ID{1, 6}) || (ID{1, ^uint64(0)}).Next() != (ID{2, 0}) {
		t.Fatal("Next is wrong")
	}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Fatal("Compare is wrong")
	}
}

func TestCursor(t *testing.T) {
	t.Parallel()
	id, cur, err := ParseLastEventID("b=2-0;a=1-7")
	if err != nil || !id.IsZero() || len(cur) != 2 {
		t.Fatalf("got %v %v %v", id, cur, err)
	}
	if s := cur.String(); s != "a=1-7;b=2-0" {
		t.Fatalf("String = %q", s)
	}
	if cur.Min() != (ID{1, 7}) {
		t.Fatalf("Min = %v", cur.Min())
	}
	for _, bad := range []string{"a=", "=1-0", "a=1-0;a=2-0", "a=1-0;", "a=x"} {
		if _, _, err := ParseLastEventID(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseLastEventID(%q) err = %v, want ErrSyntax", bad, err)
		}
	}
	id, cur, err = ParseLastEventID("3-4")
	if err != nil || cur != nil || id != (ID{3, 4}) {
		t.Fatalf("plain id: %v %v %v", id, cur, err)
	}
}

func FuzzParseLastEventID(f *testing.F) {
	for _, s := range []string{"1-2", "a=1-2;b=3-4", "", "=", "1-", ";;", "9223372036854775808-0", "9007199254740991-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, cur, err := ParseLastEventID(s)
		if err != nil {
			return
		}
		if id.Ms > MaxMs {
			t.Fatalf("%q parsed to %v, beyond MaxMs", s, id)
		}
		for _, v := range cur {
			if v.Ms > MaxMs {
				t.Fatalf("%q parsed to a cursor holding %v, beyond MaxMs", s, v)
			}
		}
		if cur == nil {
			back, err := Parse(id.String())
			if err != nil || back != id {
				t.Fatalf("id %v does not round-trip: %v", id, err)
			}
			return
		}
		back, err := ParseCursor(cur.String())
		if err != nil || len(back) != len(cur) {
			t.Fatalf("cursor %v does not round-trip: %v", cur, err)
		}
		for k, v := range cur {
			if back[k] != v {
				t.Fatalf("cursor %v round-trips to %v", cur, back)
			}
		}
	})
}
