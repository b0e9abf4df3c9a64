// Package report turns what a load test measured into answers: it reads
// swarm result files (merged exactly with resultfile.Merge), the server's
// /stats snapshots taken before and after, and shadow-proxy ledgers —
// through the leaf packages of those file formats (swarm/resultfile,
// server/statsfile, shadow/ledgerfile), so that it links no server, swarm
// or shadow engine and no Redis client;
// reconciles every +1/-1 account and says where an imbalance sits and
// what kind it is; summarises latency (HDR percentiles, overall and per
// second) and throughput; and renders all of it as a terminal summary,
// versioned JSON ("darktime.report/v1", REPORT.md), JUnit XML and a
// self-contained HTML page with charts. A run of a scenario
// (Inputs.Scenario) is measured phase by phase, and its phases and faults
// annotate every output.
//
// On top of a Report sit CI gates (thresholds such as "p99_delivery_ms <
// 50" or "phase.spike.p99_delivery_ms < 500" on a small vocabulary of
// metrics, each defined once in MetricTable: name, unit, meaning, how it
// is computed over the run, over a phase and over a window; windowed
// gates, "p99_delivery_ms[10s] < 50", judge the worst window sliding
// over the run's seconds, window.go; a Watch judges gates on a run's
// seconds as they come, for abort_on_fail), a Markdown summary for CI
// (WriteMarkdown), Compare (per-metric deltas between repeated base and
// candidate runs, with a noise estimate) and Capacity (the knee of a ramp
// run and how many nodes a peak needs).
//
// Bad input is never a silent pass: a truncated or corrupt file, results of
// different runs, an unknown metric or a gate on a metric the inputs do
// not give are errors wrapping ErrInput.
package report
