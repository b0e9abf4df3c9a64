package shadow

import (
	"sync"
	"time"
)

// breaker is a circuit breaker: after Failures failures in a row it opens
// and refuses for Cooldown, then lets one probe through; the probe's
// success closes it, its failure opens it again.
type breaker struct {
	mu       sync.Mutex
	failures int
	cooldown time.Duration
	now      func() time.Time

	fails     int
	openUntil time.Time
	probing   bool
}

func newBreaker(c BreakerConfig, now func() time.Time) *breaker {
	return &breaker{failures: c.Failures, cooldown: c.Cooldown, now: now}
}

func (b *breaker) configure(c BreakerConfig) {
	b.mu.Lock()
	b.failures, b.cooldown = c.Failures, c.Cooldown
	b.mu.Unlock()
}

// allow reports whether a request may go to the candidate now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fails < b.failures {
		return true
	}
	if b.probing || b.now().Before(b.openUntil) {
		return false
	}
	b.probing = true // half-open: one probe
	return true
}

// open reports whether the circuit is open (for the state gauge).
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fails >= b.failures
}

func (b *breaker) success() {
	b.mu.Lock()
	b.fails, b.probing = 0, false
	b.mu.Unlock()
}

func (b *breaker) failure() {
	b.mu.Lock()
	b.fails++
	b.probing = false
	if b.fails >= b.failures {
		b.openUntil = b.now().Add(b.cooldown)
	}
	b.mu.Unlock()
}

// release gives back an allowed call that was never made (so a half-open
// breaker can probe again).
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}
