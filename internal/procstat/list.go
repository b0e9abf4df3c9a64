package procstat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Named is a process a benchmark measures, by name and pid.
type Named struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// ErrProcessList marks a malformed list given to ParseProcesses.
var ErrProcessList = errors.New("bad process list")

// ParseProcesses parses a comma-separated list of name=pid pairs
// ("server=123,worker1=456,redis=789"), the benchmarks' --pids; a bare pid
// is named after itself. Names are [A-Za-z0-9_.-] and unique.
func ParseProcesses(s string) ([]Named, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Named
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
			return nil, fmt.Errorf("%w: pid %q in %q: want name=pid with a positive pid", ErrProcessList, pidText, item)
		}
		if name == "" || strings.IndexFunc(name, notNameRune) >= 0 {
			return nil, fmt.Errorf("%w: process name %q: use letters, digits, '_', '.' or '-'", ErrProcessList, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: process name %q given twice", ErrProcessList, name)
		}
		seen[name] = true
		out = append(out, Named{Name: name, PID: pid})
	}
	return out, nil
}

func notNameRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == '-')
}
