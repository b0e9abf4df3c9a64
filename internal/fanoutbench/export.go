package fanoutbench

import "time"

// This file lends the /proc sampler to other load generators
// (internal/hookbench, swarm) without exposing its internals. The lean
// subscriber's wire code they used to borrow from here is internal/sse's
// Stream.

// ResidentKiB returns the resident memory (VmRSS) of process pid.
func ResidentKiB(pid int) (int64, error) {
	s, _, err := sampleProcess(pid)
	return s.rssKiB, err
}

// ProcessCPU returns the user+system CPU time of pid and its direct
// children, from /proc (10 ms resolution).
func ProcessCPU(pid int) (time.Duration, error) {
	s, err := sampleProcessTree(pid)
	return s.cpu, err
}

// SelfCPU returns this process's user+system CPU time.
func SelfCPU() time.Duration { return selfCPU() }
