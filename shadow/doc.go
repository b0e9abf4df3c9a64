// Package shadow is darktime's dark-traffic proxy: a reverse proxy in front
// of a realtime (Server-Sent Events) service, the "primary", that pulls a
// configurable share of real users onto new code, the "candidate" — what
// DISQUS called darktime.
//
// Users are chosen sticky: a key (cookie, header, query parameter or client
// IP) is hashed with a salt into one of 10,000 buckets, and a route with
// percent p selects the buckets below p×100, so the same user lands in the
// same bucket on every proxy instance, and raising p only adds users.
//
// Each route has a mode. In divert mode selected users are served by the
// candidate (a canary). In mirror mode the primary serves everyone and, for
// selected users, the proxy sends the same request to the candidate too,
// reads its answer fully and throws it away (a dark launch). Mirrored
// event streams are reconciled: a +1/-1 ledger (internal/ledger) per
// stream credits every event the primary delivered and debits every event
// the candidate delivered, and after a settle window says what was missing
// on the candidate, extra, duplicated, late and out of order — per channel
// and per user bucket. A baseline (a second primary, as Twitter's Diffy
// runs one) measures the natural noise at connection edges.
//
// The primary path never waits for the candidate: mirrors run on their own
// goroutines and connections with their own timeouts, bounded queues and a
// circuit breaker. Proxying is net/http/httputil.ReverseProxy (Rewrite),
// which strips hop-by-hop headers and flushes event streams at once.
//
// The admin API (AdminHandler) changes where users' requests go, so it
// takes a bearer token (Config.AdminToken) and Listen refuses to serve it
// beyond loopback without one (CheckAdminListener). What the candidate gets
// of the user's headers is the primary's by default and can be narrowed or
// replaced per route (HeaderRules); the ip key believes X-Forwarded-For
// only from trusted proxies. Listen serves the proxy over TLS with HTTP/2
// when given a certificate.
//
// A rollout proceeds in steps (Proxy.Step, POST /_darktime/step), each an
// epoch over which the proxy gathers per-cohort evidence for the judge
// (shadow/judge): delivery delays from the proxy's own send of each
// publish it relays to each world (else against the first sighting of
// the event on a reference primary stream of its channel), time to first
// event, errors, reconnects and the ledger's unexplained events (Cohorts,
// GET /_darktime/cohorts). Rollback cuts the candidate at once. With
// Config.Fleet, several instances share the steps, rollbacks and evidence
// through Redis (fleet.go).
//
// See README.md for usage and LEDGER.md for the ledger's JSON format, whose
// types (Report, Counts, ...) live in the leaf package shadow/ledgerfile
// and are aliased here.
package shadow
