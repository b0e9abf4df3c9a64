// Package fdlimit lifts the open-file limit of a process that holds many
// connections: the swarm, its workers, the runner.
package fdlimit

import "syscall"

// Raise lifts the soft open-file limit to the hard one, for this process
// and the children it starts. It does nothing where it cannot.
func Raise() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= lim.Max {
		return
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
