// Package runner runs darktime scenarios (package scenario): it starts
// what the target needs as child processes — a private redis-server or
// Redis Cluster, the reference server's nodes, nginx + nchan, the shadow
// proxy and its embedded candidate — snapshots the nodes' GET /stats,
// drives the swarm through the phases, injects the faults at their times
// (a node killed with SIGKILL or paused with SIGSTOP, Redis restarted, a
// cluster master killed or a node's pub/sub connections closed, each of
// the last two watched until the target is whole again; storms and slow
// consumers are the swarm's), snapshots again, stops everything (the
// proxies write their ledgers) and hands it all to package report with
// the scenario's thresholds. An interrupted run still writes what it
// measured.
package runner
