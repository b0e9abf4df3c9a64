package fanoutbench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is sysconf(_SC_CLK_TCK), the unit of utime and stime in
// /proc/PID/stat. Linux fixes USER_HZ at 100 on every architecture Go
// supports; reading it properly needs cgo.
const clockTicks = 100

// procSample is the CPU time and resident memory of a server process and
// its direct children (nginx's workers under its master).
type procSample struct {
	cpu    time.Duration
	rssKiB int64
}

// sampleProcessTree reads /proc for pid and every process whose parent is
// pid. Children that exit while being read are skipped.
func sampleProcessTree(pid int) (procSample, error) {
	root, _, err := sampleProcess(pid)
	if err != nil {
		return procSample{}, fmt.Errorf("server pid %d: %w", pid, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return root, nil
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		s, parent, err := sampleProcess(child)
		if err != nil || parent != pid {
			continue
		}
		root.cpu += s.cpu
		root.rssKiB += s.rssKiB
	}
	return root, nil
}

// sampleProcess reads one process's utime+stime and VmRSS, and its parent.
func sampleProcess(pid int) (s procSample, ppid int, err error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, 0, err
	}
	// The command name may hold spaces and parentheses; fields restart
	// after its last ')'. fields[0] is field 3 (state) of proc(5).
	rparen := bytes.LastIndexByte(stat, ')')
	if rparen < 0 {
		return s, 0, fmt.Errorf("unexpected %s/stat", dir)
	}
	fields := bytes.Fields(stat[rparen+1:])
	if len(fields) < 13 {
		return s, 0, fmt.Errorf("unexpected %s/stat", dir)
	}
	ppid, _ = strconv.Atoi(string(fields[1]))
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, 0, fmt.Errorf("unexpected %s/stat", dir)
	}
	s.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return s, 0, err
	}
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				s.rssKiB, _ = strconv.ParseInt(string(f[0]), 10, 64)
			}
			break
		}
	}
	return s, ppid, nil
}

// selfCPU is this process's user+system CPU time. getrusage has microsecond
// resolution where /proc/self/stat has 10 ms.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
