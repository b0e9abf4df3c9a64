package resultfile

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/histogram"
)

// Part is one slice of a run.
type Part struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Histogram bounds in microseconds: 1 µs to 1 h at 3 significant figures
// (internal/histogram's, which the swarm records with). Values outside are
// clamped, so a clock step or a very late event still counts.
const (
	HistMinMicros = histogram.Min
	HistMaxMicros = histogram.Max
	HistSigFigs   = histogram.SigFigs
)

// NewHistogram is an empty histogram with the result's bounds.
func NewHistogram() *hdrhistogram.Histogram { return histogram.New() }

// Histogram names in results.
const (
	HistDelivery   = "delivery"    // publish (intended send time) to receive
	HistConnect    = "connect"     // dial to response head
	HistFirstEvent = "first_event" // first connect of a session to its first event
	HistPublish    = "publish"     // intended send time to publish response
)

// EventCounts counts received events.
type EventCounts struct {
	// Events is every measured event received, duplicates included (the
	// ledger's debits).
	Events     int64 `json:"events"`
	Duplicated int64 `json:"duplicated"`
	Reordered  int64 `json:"reordered"`
	Late       int64 `json:"late"`
	// Outside: events of a client's channel published before it subscribed
	// or after it decided to leave; not owed, not debited.
	Outside int64 `json:"outside"`
	// Malformed: data where the profile's extract finds no seq and ts.
	Malformed int64 `json:"malformed"`
	// Foreign: events of a channel the client does not hold.
	Foreign int64 `json:"foreign"`
	// OtherType: events of another type than the profile's EventType.
	OtherType int64 `json:"other_type"`
	// Slow: events published after their client turned slow
	// (swarm.Config.Slowdowns). A slow client leaves the measured population
	// when it turns slow, as a churning client leaves: what was published
	// before stays owed to it; what comes after is counted here only, so
	// the run's latency and ledger say what the other clients got.
	Slow int64 `json:"slow,omitempty"`
	// Notices: the server's control events (Profile.Notices), such as
	// darktime.missed and darktime.reconnect; not events of the run.
	Notices int64 `json:"notices,omitempty"`
}

// Add sums two parts' counts.
func (c EventCounts) Add(o EventCounts) EventCounts {
	return EventCounts{c.Events + o.Events, c.Duplicated + o.Duplicated, c.Reordered + o.Reordered, c.Late + o.Late,
		c.Outside + o.Outside, c.Malformed + o.Malformed, c.Foreign + o.Foreign, c.OtherType + o.OtherType, c.Slow + o.Slow,
		c.Notices + o.Notices}
}

// Attribution explains the ledger: see RESULTS.md "attribution". Counts
// add up over parts (Merge).
type Attribution struct {
	// Lost counts the owed deliveries never received, by cause:
	// silent_gap, announced, not_resumed, no_id, tail, gave_up,
	// cut_by_server, in_flight_at_end. Their sum
	// is the ledger's lost.
	Lost map[string]int64 `json:"lost"`
	// Extra counts deliveries received that no successful publish owed, by
	// what the failed publish's answer said: publish_outcome_unknown
	// (timeout, reset, 500/502/504), publish_refused (4xx, 503),
	// publish_not_sent (no connection), publish_unanswered (the run ended
	// before the answer came).
	Extra map[string]int64 `json:"extra"`
	// Resumes counts how streams came back after they ended.
	Resumes ResumeCounts `json:"resumes"`
	// Hangups counts the connections the swarm itself ended.
	Hangups HangupCounts `json:"hangups"`
	// Residual is credit − debit − (lost − extra − duplicated) over the
	// run: 0 unless the swarm's own bookkeeping is wrong.
	Residual int64 `json:"residual"`
	// Channels has Lost and Extra of each channel that has any.
	Channels map[string]Causes `json:"channels,omitempty"`
}

// Causes are one channel's lost and extra deliveries by cause.
type Causes struct {
	Lost  map[string]int64 `json:"lost,omitempty"`
	Extra map[string]int64 `json:"extra,omitempty"`
}

// Count adds one delivery of cause to a channel's lost (or extra) counts.
func (a *Attribution) Count(channel string, lost bool, cause string) { a.AddN(channel, lost, cause, 1) }

// AddN adds n deliveries of cause to a channel's lost (or extra) counts.
func (a *Attribution) AddN(channel string, lost bool, cause string, n int64) {
	if a.Channels == nil {
		a.Channels = map[string]Causes{}
	}
	c := a.Channels[channel]
	m := &c.Extra
	if lost {
		m = &c.Lost
	}
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[cause] += n
	a.Channels[channel] = c
}

// ResumeCounts says whether the target resumes streams.
type ResumeCounts struct {
	// WithID and NoID count reconnects that sent Last-Event-ID and those
	// that had no id to send (the stream carried none).
	WithID int64 `json:"with_id"`
	NoID   int64 `json:"no_id"`
	// Replayed counts resumed channel streams whose first event's publish was
	// answered before the reconnect was requested: the target replayed its history.
	Replayed int64 `json:"replayed"`
	// Gapped counts resumed channel streams whose first event was a live
	// one past a gap, with no notice.
	Gapped int64 `json:"gapped"`
}

// Resumes reports whether the target was seen to resume: it replayed
// history on some reconnect, or never skipped anything on one.
func (r ResumeCounts) Resumes() bool { return r.Replayed > 0 || r.Gapped == 0 }

// HangupTimeout bounds how long a hang-up waits for the server to close
// its side after the client's FIN (HangupCounts.Timeouts).
const HangupTimeout = time.Second

// HangupCounts counts connections the swarm closed itself (a storm, a
// leaving client, the end of the run). It closes them as a browser's
// EventSource does, but first sends FIN and reads what the server had
// already written until the server closes: those bytes are the copies a
// server counts as written that the client never used.
type HangupCounts struct {
	Storm int64 `json:"storm"`
	Churn int64 `json:"churn"`
	Stop  int64 `json:"stop"`
	// Discarded counts the events read after a storm cut, never used:
	// the stream resumes before them.
	Discarded int64 `json:"discarded"`
	// Timeouts counts hang-ups the server did not answer with its own
	// close within HangupTimeout: what it still had in flight is unknown.
	Timeouts int64 `json:"timeouts"`
}

// Add sums two parts' hang-ups.
func (h HangupCounts) Add(o HangupCounts) HangupCounts {
	return HangupCounts{h.Storm + o.Storm, h.Churn + o.Churn, h.Stop + o.Stop, h.Discarded + o.Discarded, h.Timeouts + o.Timeouts}
}

// Add sums two parts' attributions (Merge).
func (a Attribution) Add(o Attribution) Attribution {
	out := Attribution{Lost: map[string]int64{}, Extra: map[string]int64{}, Hangups: a.Hangups.Add(o.Hangups), Residual: a.Residual + o.Residual}
	for _, m := range []map[string]int64{a.Lost, o.Lost} {
		for k, v := range m {
			out.Lost[k] += v
		}
	}
	for _, m := range []map[string]int64{a.Extra, o.Extra} {
		for k, v := range m {
			out.Extra[k] += v
		}
	}
	for _, chans := range []map[string]Causes{a.Channels, o.Channels} {
		for ch, c := range chans {
			for k, v := range c.Lost {
				out.AddN(ch, true, k, v)
			}
			for k, v := range c.Extra {
				out.AddN(ch, false, k, v)
			}
		}
	}
	out.Resumes = ResumeCounts{a.Resumes.WithID + o.Resumes.WithID, a.Resumes.NoID + o.Resumes.NoID,
		a.Resumes.Replayed + o.Resumes.Replayed, a.Resumes.Gapped + o.Resumes.Gapped}
	return out
}

// IsZero reports whether nothing was attributed (results written before
// attribution existed have none), so that such files keep their checksum.
func (a Attribution) IsZero() bool {
	return len(a.Lost) == 0 && len(a.Extra) == 0 && len(a.Channels) == 0 && a.Resumes == (ResumeCounts{}) && a.Hangups == (HangupCounts{}) && a.Residual == 0
}

// LostTotal sums the lost deliveries over every cause.
func (a Attribution) LostTotal() int64 {
	var n int64
	for _, v := range a.Lost {
		n += v
	}
	return n
}

// ExtraTotal sums the extra deliveries over every cause.
func (a Attribution) ExtraTotal() int64 {
	var n int64
	for _, v := range a.Extra {
		n += v
	}
	return n
}
