// Package swarm drives one realtime server — darktime's own or any other
// Server-Sent Events server — with a swarm of simulated EventSource
// clients and publishers, and measures what every client actually
// received.
//
// Clients are lean HTTP/1.1 connections (one goroutine, one read buffer,
// no allocation per event) that behave like browsers: they honour the
// retry hint, resume with Last-Event-ID after a drop, give up on a non-SSE
// answer, and can churn (leave after a drawn lifetime and be replaced by a
// fresh client), be cut all at once in a reconnect storm, turn into slow
// readers (Slowdowns), and fail over to the next of several server nodes
// when theirs stops answering. Publishers are vegeta attacks (constant,
// linear or sine pacing, optionally in Phases with rates of their own, one
// of which may spike a single hot channel; or MaxRate: as fast as the
// target answers from Publishers requests in flight, until Events) that
// stamp every event with its channel's sequence number and its intended
// send time, so each client detects loss, duplicates and reordering and
// measures publish-to-receive latency without coordinated omission. A
// request carries one event, or a batch of Profile.Publish.Batch events
// joined into one body (a JSON array by default), which share its answer.
//
// A Target (a Profile: subscribe URL template, publish request template,
// where seq and timestamp sit in the received data) makes the same swarm
// measure darktime, nginx + nchan or another SSE server.
//
// Every run produces one Result: HDR histograms, a per-second series, and
// a per-channel, per-second +1/-1 ledger (internal/ledger) — +1 for every
// delivery a successful publish owed a client subscribed at that moment,
// -1 for every event received. A run splits into parts — every N-th
// channel with its clients and its share of the rate — run by processes
// (RunProcs, RunWorker) or by agents on several machines coordinated
// through Redis (RunAgents, Agent); every one of them gets the run as a
// RunSpec, the one versioned hand-over, and their results merge exactly
// (Merge). The file format is documented in RESULTS.md; its types and pure
// functions (Result, ReadResult, Merge, ...) live in the leaf package
// swarm/resultfile, and the defaults, bounds and config value types
// (Pacing, Distribution, Lifetime) in swarm/params, so that readers of
// results and scenarios do not link the engine. This package keeps their
// names as aliases.
package swarm
