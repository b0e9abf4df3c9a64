// Package procstat measures processes on the load generator's machine:
// the CPU time and resident memory of a server process (with its direct
// children, as nginx's workers under its master) read from /proc through
// prometheus/procfs, and this process's own CPU time from getrusage.
package procstat

import (
	"fmt"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Sample is the CPU time (user + system, 10 ms resolution) and resident
// memory of a process, or of a process and its direct children.
type Sample struct {
	CPU    time.Duration
	RSSKiB int64
}

// Process reads one process.
func Process(pid int) (Sample, error) {
	s, _, err := sample(pid)
	return s, err
}

// Tree reads pid and every process whose parent is pid. Children that exit
// while being read are skipped.
func Tree(pid int) (Sample, error) {
	root, _, err := sample(pid)
	if err != nil {
		return Sample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	procs, err := procfs.AllProcs()
	if err != nil {
		return root, nil
	}
	for _, p := range procs {
		if p.PID == pid {
			continue
		}
		s, parent, err := sample(p.PID)
		if err != nil || parent != pid {
			continue
		}
		root.CPU += s.CPU
		root.RSSKiB += s.RSSKiB
	}
	return root, nil
}

func sample(pid int) (Sample, int, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Sample{}, 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return Sample{}, 0, err
	}
	return Sample{
		CPU:    time.Duration(st.CPUTime() * float64(time.Second)),
		RSSKiB: int64(st.ResidentMemory() >> 10),
	}, st.PPID, nil
}

// Self is this process's user + system CPU time: getrusage has microsecond
// resolution where /proc/self/stat has 10 ms.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
