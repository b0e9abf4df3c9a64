package server

import (
	"math/rand/v2"
	"time"

	"github.com/darktime/darktime/internal/sse"
)

// shutdownRetry draws one connection's reconnect delay for the shutdown
// notice, uniformly in [RetryHint, RetryHint + ShutdownJitter] at
// millisecond resolution. It is drawn per connection: one value for all
// would bring every client back at the same instant — the herd the jitter
// exists to spread.
func (s *Server) shutdownRetry() time.Duration {
	window := s.cfg.ShutdownJitter.Milliseconds()
	return s.cfg.RetryHint + time.Duration(rand.Int64N(window+1))*time.Millisecond
}

// goodbye is one connection's darktime.reconnect notice.
func (s *Server) goodbye() []byte {
	return goodbyeNotice(s.shutdownRetry())
}

func goodbyeNotice(retry time.Duration) []byte {
	b, _ := sse.AppendEvent(nil, sse.Event{Event: "darktime.reconnect", Data: []byte(`{"reason":"shutdown"}`), Retry: int(retry.Milliseconds())})
	return b
}
