// Package history keeps the headline metrics of every run and finds the
// runs after which a metric shifted.
//
// Each run appends one Record ("darktime.history/v1"): its run id, when it
// ran, the commit under test, the scenario (and target) it belongs to, the
// machine it measured on (internal/machine), its verdict and every metric
// of the report's vocabulary it gave — the same definitions the gates and
// `report compare` read (report.MetricTable). A Store keeps the records in
// the order appended: JSONL, a JSON-lines file in a folder (the default:
// append-only text is what a CI cache or a repository keeps well), or
// Postgres, a table in a PostgreSQL database (a postgres:// URL). Open
// picks one from the location.
//
// Analyze runs E-divisive means (internal/changepoint: Matteson and James
// 2014, as Apache Otava does, with a seeded permutation test) over each
// metric of each series (scenario and target), and describes every change
// point: the run and commit where it happens, the means before and after,
// the relative magnitude, p and confidence, and whether it is a
// regression, an improvement, or a shift under MinRelative (5%, as
// `report compare`) that is not flagged. A regression stands when it is
// the metric's last change and lies among the last Recent runs (10): an
// older one is the level the later runs were measured against. Base turns
// the last runs of a series into the base of report.Compare
// (`report compare --history`).
//
// Limits: a change needs MinSize runs (3) on each side, so a regression in
// the very last runs is seen by comparing them with the history (Base),
// not by the change points; interrupted runs are left out of both; runs on
// different machines are analysed together (a change where the machine
// changed says so); a slow drift has no change point.
package history
