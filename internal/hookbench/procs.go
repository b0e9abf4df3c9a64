package hookbench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/darktime/darktime/swarm"
)

// Forum and Author are the constant forum and author of every hook. Nobody
// subscribes to their channels, so the server publishes those two events
// per hook but delivers none of them: the fan-out stays one copy per hook.
const (
	Forum  = "hookbench"
	Author = "hookbench"
)

// hookBody is the swarm's publish body of one hook: a post_save on the
// event's thread (the swarm's channel) whose message carries the thread's
// seq and the intended send time, which the default post pipeline copies
// into the event's data ({"type":"post","action":"saved","data":{...,
// "message":"seq=12 ts=1700000000000000000",...}}). The id is the seq: the
// thread and the id name the post.
const hookBody = `{"model":"post","action":"post_save","id":{seq},"thread":"{channel}","forum":"` + Forum +
	`","author":"` + Author + `","message":"seq={seq} ts={ts}"}`

// profile is the swarm's darktime-hooks profile with this benchmark's
// hooks, batch of them per request as a JSON array.
func profile(batch int) swarm.Profile {
	p, _ := swarm.LookupProfile("darktime-hooks")
	p.Name = "hookbench"
	p.Publish.Body = hookBody
	p.Publish.Batch = batch
	return p
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
