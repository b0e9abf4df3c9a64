// Package scenario reads darktime scenario files: one YAML document that
// describes a whole experiment — the target servers, the swarm of
// EventSource clients and publishers, phases, faults, an optional shadow
// proxy, the thresholds that gate the run, its outputs and its time
// limit. The schema is versioned ("version: 1") and documented field by
// field in scenarios/README.md.
//
// Parsing is strict: an unknown key, a value of the wrong type, a rate or
// duration that is zero or negative, a fault after the end of the run, a
// node that does not exist, more clients than this machine can hold or a
// missing binary is an error naming the file, line and column, and
// saying what to do. Parse returns every problem it finds, not the first.
//
// Thresholds use the gate syntax and metric vocabulary of package report
// ("p99_delivery_ms < 50", "lost == 0", "p99_delivery_ms[10s] < 50"), so
// a scenario that checks is a scenario whose gates the report can
// evaluate; one with abort_on_fail must be a gate report.Watch can judge
// while the run goes (threshold.go). The swarm's defaults,
// bounds and parsers come from swarm/params, so checking a scenario links
// neither the swarm nor the server engine.
package scenario
