package hookbench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestAppendBatchParses(t *testing.T) {
	t.Parallel()
	threads := []string{"t_0", "t_1", "t_2"}
	b := appendBatch(nil, 7, 3, threads, 1_700_000_000_123_456_789)
	var hooks []map[string]any
	if err := json.Unmarshal(b, &hooks); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(hooks) != 3 || hooks[0]["id"] != float64(7) || hooks[0]["thread"] != "t_1" || hooks[2]["thread"] != "t_0" ||
		hooks[1]["message"] != "1700000000123456789" || hooks[1]["forum"] != Forum || hooks[1]["action"] != "post_save" {
		t.Fatalf("hooks %v", hooks)
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data   string
		id, ts int64
		ok     bool
	}{
		{`{"type":"post","action":"saved","data":{"id":12,"thread":"t_0","forum":"f","author":"a","message":"1700000000000000000","received_at":"2026-01-01T00:00:00.000Z"}}`, 12, 1700000000000000000, true},
		{`{"type":"post","action":"saved","data":{"id":"12","message":"5"}}`, 12, 5, true},
		{`{"data":{"message":"5","id":3}}`, 3, 5, true},
		{`{"type":"post","data":{"id":12}}`, 0, 0, false},                   // no message
		{`{"type":"post","data":{"id":12,"message":"hi"}}`, 0, 0, false},    // not ours
		{`{"type":"post","data":{"id":"12,"message":"5"}}`, 0, 0, false},    // unterminated quote
		{`{"type":"post","data":{"id":-1,"message":"5"}}`, 0, 0, false},     // negative
		{`{"data":{"id":99999999999999999999,"message":"5"}}`, 0, 0, false}, // overflow
		{`{"id":1,"message":"5"}`, 0, 0, false},                             // no envelope
		{``, 0, 0, false},
	}
	for _, tt := range tests {
		id, ts, ok := parseEvent([]byte(tt.data))
		if id != tt.id || ts != tt.ts || ok != tt.ok {
			t.Errorf("parseEvent(%s) = %d, %d, %v; want %d, %d, %v", tt.data, id, ts, ok, tt.id, tt.ts, tt.ok)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"post","action":"saved","data":{"id":12,"thread":"t_0","message":"1700000000000000000"}}`), int64(3), int64(4))
	f.Add([]byte(`{"data":{"id":"1`), int64(0), int64(0))
	f.Add([]byte(`"data":{"message":"`), int64(math.MaxInt64), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, id, ts int64) {
		if gotID, gotTS, ok := parseEvent(data); ok && (gotID < 0 || gotTS < 0) {
			t.Fatalf("parseEvent(%q) = %d, %d: negative", data, gotID, gotTS)
		}
		if id < 0 || ts < 0 {
			return
		}
		// Whatever the hook, the envelope the pipeline wraps it in parses back.
		hook := appendHook(nil, id, "t_0", ts)
		ev := fmt.Sprintf(`{"type":"post","action":"saved","data":%s}`, hook)
		if gotID, gotTS, ok := parseEvent([]byte(ev)); !ok || gotID != id || gotTS != ts {
			t.Fatalf("parseEvent(%s) = %d, %d, %v", ev, gotID, gotTS, ok)
		}
	})
}

func TestParseProcesses(t *testing.T) {
	t.Parallel()
	got, err := ParseProcesses(" server=123, worker1=456,redis=789,42")
	if err != nil {
		t.Fatal(err)
	}
	want := []Process{{"server", 123}, {"worker1", 456}, {"redis", 789}, {"42", 42}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := ParseProcesses(""); got != nil || err != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"server=", "server=0", "server=-3", "=12", "a b=1", "x=1,x=2", "server=1,", "x=1=2"} {
		if _, err := ParseProcesses(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseProcesses(%q): %v, want ErrConfig", bad, err)
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
