package procstat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseProcesses(t *testing.T) {
	t.Parallel()
	got, err := ParseProcesses(" server=123, worker1=456,redis=789,42")
	if err != nil {
		t.Fatal(err)
	}
	want := []Named{{"server", 123}, {"worker1", 456}, {"redis", 789}, {"42", 42}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := ParseProcesses(""); got != nil || err != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"server=", "server=0", "server=-3", "=12", "a b=1", "x=1,x=2", "server=1,", "x=1=2"} {
		if _, err := ParseProcesses(bad); !errors.Is(err, ErrProcessList) {
			t.Errorf("ParseProcesses(%q): %v, want ErrProcessList", bad, err)
		}
	}
}

func FuzzParseProcesses(f *testing.F) {
	f.Add("server=123,worker1=456,redis=789")
	f.Add("1,2,3")
	f.Add("a=1,a=2")
	f.Fuzz(func(t *testing.T, s string) {
		procs, err := ParseProcesses(s)
		if err != nil {
			return
		}
		// What parses prints back to an equal list.
		parts := make([]string, len(procs))
		for i, p := range procs {
			if p.PID <= 0 || p.Name == "" {
				t.Fatalf("ParseProcesses(%q) gave %+v", s, p)
			}
			parts[i] = fmt.Sprintf("%s=%d", p.Name, p.PID)
		}
		again, err := ParseProcesses(strings.Join(parts, ","))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(procs) {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}
