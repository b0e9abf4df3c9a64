package procstat

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// Usage is what one process holds and has used so far: the capacity
// plan's resources, read from /proc/PID/{stat,fd,io}.
type Usage struct {
	// CPU is user + system time since the process started (10 ms
	// resolution).
	CPU time.Duration
	// RSSBytes is its resident memory now.
	RSSBytes int64
	// FDs is how many file descriptors it has open now.
	FDs int
	// WriteBytes and ReadBytes are /proc/PID/io's wchar and rchar: what
	// it passed to write(2)/writev(2) and got from read(2), sockets
	// included (write_bytes counts only storage), since it started.
	WriteBytes, ReadBytes int64
}

// Read reads one process's Usage. The caller must be allowed to read the
// process's io file (its own user, or root).
func Read(pid int) (Usage, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	fds, err := p.FileDescriptorsLen()
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: open files: %w", pid, err)
	}
	io, err := p.IO()
	if err != nil {
		return Usage{}, fmt.Errorf("pid %d: io: %w", pid, err)
	}
	return Usage{
		CPU:        time.Duration(st.CPUTime() * float64(time.Second)),
		RSSBytes:   int64(st.ResidentMemory()),
		FDs:        fds,
		WriteBytes: int64(io.WChar),
		ReadBytes:  int64(io.RChar),
	}, nil
}
