// Package canary is a progressive rollout driven by the judge
// (shadow/judge): it walks a plan's steps — mirror 5%, then divert 1%,
// 5%, 25%, 50%, 100% — on one or more shadow proxies through their admin
// API, and at each step waits for enough evidence, judges the candidate's
// cohort against the primary's (or a baseline's) and promotes, holds or
// rolls back.
//
// A step starts with POST /_darktime/step, which opens a new epoch on the
// proxy (its per-cohort evidence starts afresh). The canary waits the
// step's min_duration, then polls GET /_darktime/cohorts until the
// candidate's cohort has min_events reconciled events in that epoch
// (snapshots of another epoch are ignored), and judges. Promote asks the
// confirm_promotion webhook, if any, and goes on to the next step; a
// webhook that does not answer 2xx blocks the promotion, and the step
// keeps collecting and judging meanwhile, as Flagger's confirm-promotion
// hook does. Hold keeps collecting and judges again. Both are bounded by
// the step's max_duration: a step whose time runs out still holding (or
// still blocked) is rolled back — "evidence never sufficed" — never
// silently passed. Rollback posts POST /_darktime/rollback at once (the
// candidate's share goes to 0 and its streams are cut), then the rollback
// webhook, and stops.
//
// Run returns a Result: the outcome, every step's final verdict with its
// checks (metric, value, threshold or test, p-value, sample sizes), and
// what the proxies and webhooks answered. Its JSON form is documented in
// SCHEMA.md ("schema": 1). Outcomes map to the exit codes of darktime
// canary (ExitCode): 0 promoted, 1 rolled back, 2 bad input (the plan, the
// flags, a token the proxy refuses), 3 the proxy could not be reached or
// the run was interrupted (the current share is left as it is).
//
// The proxies are behind the small Admin interface: HTTPAdmin speaks the
// admin API over HTTP; tests of the step machine use a fake.
package canary
