package hookbench

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Forum and Author are the constant forum and author of every hook. Nobody
// subscribes to their channels, so the server publishes those two events
// per hook but delivers none of them: the fan-out stays one copy per hook.
const (
	Forum  = "hookbench"
	Author = "hookbench"
)

// appendHook appends one post_save hook whose message is the intended send
// time in Unix nanoseconds, which the subscriber reads back from the event.
func appendHook(b []byte, id int64, thread string, sendNs int64) []byte {
	b = append(b, `{"model":"post","action":"post_save","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"thread":"`...)
	b = append(b, thread...)
	b = append(b, `","forum":"`+Forum+`","author":"`+Author+`","message":"`...)
	b = strconv.AppendInt(b, sendNs, 10)
	return append(b, `"}`...)
}

// appendBatch appends a JSON array of the hooks first..first+n-1, hook id
// on thread threads[id mod len(threads)], all stamped sendNs.
func appendBatch(b []byte, first int64, n int, threads []string, sendNs int64) []byte {
	b = append(b, '[')
	for i := range int64(n) {
		if i > 0 {
			b = append(b, ',')
		}
		id := first + i
		b = appendHook(b, id, threads[id%int64(len(threads))], sendNs)
	}
	return append(b, ']')
}

// parseEvent reads the hook id and send time back out of the data of an
// event the default post pipeline made from a hook of appendHook:
//
//	{"type":"post","action":"saved","data":{"id":12,...,"message":"1700000000000000000",...}}
//
// The id may be a number or a numeric string. Only non-negative values that
// fit an int64 are accepted.
func parseEvent(data []byte) (id, sendNs int64, ok bool) {
	const envelope = `"data":{`
	i := bytes.Index(data, []byte(envelope))
	if i < 0 {
		return 0, 0, false
	}
	obj := data[i+len(envelope):]
	if id, ok = numberAfter(obj, `"id":`); !ok {
		return 0, 0, false
	}
	if sendNs, ok = numberAfter(obj, `"message":`); !ok {
		return 0, 0, false
	}
	return id, sendNs, true
}

// numberAfter parses the digits, optionally quoted, that follow the first
// occurrence of key in b.
func numberAfter(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	quoted := len(b) > 0 && b[0] == '"'
	if quoted {
		b = b[1:]
	}
	var v int64
	n := 0
	for ; n < len(b) && '0' <= b[n] && b[n] <= '9'; n++ {
		d := int64(b[n] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if n == 0 {
		return 0, false
	}
	if quoted && (n == len(b) || b[n] != '"') {
		return 0, false
	}
	return v, true
}

// Process names a process whose CPU time a run measures.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// ParseProcesses parses a comma-separated list of name=pid pairs
// ("server=123,worker1=456,redis=789"); a bare pid is named after itself.
// Names are [A-Za-z0-9_.-] and unique.
func ParseProcesses(s string) ([]Process, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Process
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		name, pidText, named := strings.Cut(item, "=")
		if !named {
			name, pidText = item, item
		}
		name, pidText = strings.TrimSpace(name), strings.TrimSpace(pidText)
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%w: pid %q in %q: want name=pid with a positive pid", ErrConfig, pidText, item)
		}
		if name == "" || strings.IndexFunc(name, notNameRune) >= 0 {
			return nil, fmt.Errorf("%w: process name %q: use letters, digits, '_', '.' or '-'", ErrConfig, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: process name %q given twice", ErrConfig, name)
		}
		seen[name] = true
		out = append(out, Process{Name: name, PID: pid})
	}
	return out, nil
}

func notNameRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == '-')
}
