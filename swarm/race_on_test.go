//go:build race

package swarm

// raceBuild: the race detector slows the swarm and the test relays about
// four times; tests that need a volume of traffic scale down with it.
const raceBuild = true
