// Package broker carries published events between the nodes of the
// reference realtime server and keeps each channel's recent history so that
// clients can resume with Last-Event-ID.
//
// Two implementations share one interface and one conformance suite: Memory
// (one node, no dependency) and Redis (any number of nodes on one Redis,
// history in Redis streams, fan-out through Redis pub/sub; a node whose
// pub/sub connection was lost catches up from the streams once it is back).
package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/darktime/darktime/internal/batcherr"
	"github.com/darktime/darktime/internal/eventid"
)

// Message is one event a publisher asks to publish.
type Message struct {
	Channel string
	// Body is the event's wire body without id line and terminating blank
	// line, as sse.AppendBody makes it. Brokers store and forward it as is,
	// so every node writes the bytes the publishing node encoded.
	Body []byte
	// Key, when set, makes the publish idempotent: a second publish of the
	// same Key on the same channel within Config.DedupeWindow publishes
	// nothing and returns the first publish's id. The job pipeline uses the
	// job id here so a redelivered job does not show twice.
	Key string
}

// Delivery is an event as a node receives it.
type Delivery struct {
	Channel string
	ID      eventid.ID
	Body    []byte
	// CaughtUp marks an event read back from the channel's history after a
	// lost link to the other nodes was restored, rather than received live:
	// it was published while the link was down (see Config.OnCatchUp).
	CaughtUp bool
}

// Handler receives every event published on a channel this node
// subscribed to, once, in id order per channel, also across a lost and
// restored link to the other nodes. Calls for one channel never overlap. It
// must not block for long.
type Handler func(Delivery)

// CatchUp reports a lost link to the other nodes (Redis: the pub/sub
// connection) that was restored. The events of subscribed channels
// published meanwhile were read back from history; the Handler receives
// them next, marked CaughtUp, before any event received live afterwards.
type CatchUp struct {
	Channels int // subscribed channels whose history was read
	Events   int // events about to be delivered from history
	// Gaps lists the channels where that was not every missed event:
	// history had already lost some of them.
	Gaps []Gap
}

// Gap says that events of a channel published after an id will never reach
// this node.
type Gap struct {
	Channel string
	After   eventid.ID // the newest event the node had received before the gap
	Reason  MissReason
}

// MissReason says why a History cannot vouch that nothing was missed.
type MissReason string

// The reasons a resume may have missed events.
const (
	// MissTrimmed: events after the requested id were trimmed from the
	// history (it keeps MaxLen events for MaxAge).
	MissTrimmed MissReason = "history_trimmed"
	// MissTooOld: the channel has no history and the requested id is older
	// than MaxAge, so whatever followed it has expired.
	MissTooOld MissReason = "too_old"
	// MissUnavailable: after a lost link was restored, the channel's
	// history could not be read, so whatever was published meanwhile is
	// lost for this node.
	MissUnavailable MissReason = "history_unavailable"
)

// History is what a channel holds after a given id.
type History struct {
	Events []Delivery
	// Missed is set when events after the requested id are gone; Reason
	// says why.
	Missed bool
	Reason MissReason
}

// Broker publishes events to every node and keeps channel history.
type Broker interface {
	// Publish appends each message to its channel's history, assigns it an
	// id and delivers it to every node subscribed to the channel. It
	// returns the ids in order. On error none of the ids are valid: some
	// messages of a batch may have been published (at-least-once) — except
	// a *PartialError, which says event by event.
	Publish(ctx context.Context, msgs []Message) ([]eventid.ID, error)
	// Subscribe makes this node receive the channel's events through the
	// Handler. When it returns nil, every event published afterwards is
	// delivered, even one published while the link to the other nodes is
	// down (it is caught up from history once the link is back).
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe stops delivery of the channel's events to this node.
	Unsubscribe(ctx context.Context, channel string) error
	// History returns the channel's retained events with ids after the
	// given one (at most Config.MaxLen of them).
	History(ctx context.Context, channel string, after eventid.ID) (History, error)
	// Last returns the id of the channel's newest retained event, or the
	// zero ID when it has none.
	Last(ctx context.Context, channel string) (eventid.ID, error)
	// Close releases the broker's resources. It is safe to call twice.
	Close() error
}

// Config is shared by both brokers; the zero value means the defaults.
type Config struct {
	// Handler receives the events of subscribed channels. Required.
	Handler Handler
	// OnCatchUp, if set, is called each time a lost link is restored, after
	// the missed events were read back and before the Handler receives them,
	// from the goroutine that calls the Handler (so a notice about a Gap can
	// be ordered before the channel's next events). Memory has no link to
	// lose and never calls it.
	OnCatchUp func(CatchUp)
	// MaxLen bounds each channel's history by count (default 100).
	MaxLen int
	// MaxAge bounds each channel's history by age (default 5m).
	MaxAge time.Duration
	// DedupeWindow is how long a Message.Key is remembered (default 10m).
	DedupeWindow time.Duration
}

// Defaults of Config and RedisConfig, used by their zero values and by
// the flags of the commands that set them.
const (
	DefaultMaxLen       = 100
	DefaultMaxAge       = 5 * time.Minute
	DefaultDedupeWindow = 10 * time.Minute
	DefaultPrefix       = "darktime:"
)

func (c Config) withDefaults() Config {
	if c.MaxLen <= 0 {
		c.MaxLen = DefaultMaxLen
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = DefaultDedupeWindow
	}
	return c
}

// ErrClosed is returned by a closed broker.
var ErrClosed = errors.New("broker: closed")

// ErrUnavailable wraps errors that mean the broker cannot be reached now
// and did not take the command; the HTTP layer answers 503 for them (not
// done: retry).
var ErrUnavailable = errors.New("broker unavailable")

// PartialError is what Publish returns when some events of a batch were
// published and others not (a Redis Cluster batch spans shards, and a
// shard failed). IDs holds the id of every published event, the zero ID
// for the others; Errs[i] is nil for a published event, else its error
// (wrapping ErrUnavailable or ErrOutcomeUnknown, as a whole batch's error
// would).
type PartialError struct {
	IDs  []eventid.ID
	Errs []error
}

func (e *PartialError) Error() string {
	failed, first := batcherr.Summary(e.Errs)
	return fmt.Sprintf("%d of %d events not published: %v", failed, len(e.Errs), first)
}

// ErrOutcomeUnknown wraps errors after which nobody knows whether the
// broker ran the command: it was sent, and the answer did not come (a
// timeout, the connection closed). The HTTP layer answers 504: the event
// may be delivered; a retry with the same idempotency key publishes it at
// most once.
var ErrOutcomeUnknown = errors.New("broker outcome unknown")
