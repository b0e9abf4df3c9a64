package hookbench

import (
	"fmt"

	"github.com/darktime/darktime/internal/procstat"
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
type Process = procstat.Named

// ParseProcesses parses --pids (procstat.ParseProcesses); its errors wrap
// ErrConfig.
func ParseProcesses(s string) ([]Process, error) {
	procs, err := procstat.ParseProcesses(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return procs, nil
}
