package swarm

import (
	"fmt"
	"io"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds in microseconds: 1 µs to 1 h at 3 significant figures.
// Values outside are clamped, so a clock step or a very late event still
// counts.
const (
	histMin     = 1
	histMax     = 3_600_000_000
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

func recordMicros(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(max(histMin, min(d.Microseconds(), histMax))) // in range: cannot fail
}

// recShards spreads the per-event recording over several locks.
const recShards = 8

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
	// (Config.Slowdowns). A slow client leaves the measured population
	// when it turns slow, as a churning client leaves: what was published
	// before stays owed to it; what comes after is counted here only, so
	// the run's latency and ledger say what the other clients got.
	Slow int64 `json:"slow,omitempty"`
	// Notices: the server's control events (Profile.Notices), such as
	// darktime.missed and darktime.reconnect; not events of the run.
	Notices int64 `json:"notices,omitempty"`
}

func (c EventCounts) add(o EventCounts) EventCounts {
	return EventCounts{c.Events + o.Events, c.Duplicated + o.Duplicated, c.Reordered + o.Reordered, c.Late + o.Late,
		c.Outside + o.Outside, c.Malformed + o.Malformed, c.Foreign + o.Foreign, c.OtherType + o.OtherType, c.Slow + o.Slow,
		c.Notices + o.Notices}
}

// recShard holds what a group of clients recorded since the last tick.
type recShard struct {
	mu         sync.Mutex
	c          EventCounts
	connects   int64
	delivery   *hdrhistogram.Histogram
	firstEvent *hdrhistogram.Histogram
	connect    *hdrhistogram.Histogram
}

func (s *recShard) add(f func(*recShard)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// recorder turns the shards into totals and a per-second series.
type recorder struct {
	shards [recShards]recShard

	pubMu     sync.Mutex
	pubHist   *hdrhistogram.Histogram
	pubOK     int64
	pubFailed int64

	// Owned by the ticking goroutine until the run ends.
	total    map[string]*hdrhistogram.Histogram
	counts   EventCounts
	connects int64
	series   []Second
	lastTick time.Time
}

// Histogram names in results.
const (
	HistDelivery   = "delivery"    // publish (intended send time) to receive
	HistConnect    = "connect"     // dial to response head
	HistFirstEvent = "first_event" // first connect of a session to its first event
	HistPublish    = "publish"     // intended send time to publish response
)

func newRecorder(now time.Time) *recorder {
	rc := &recorder{pubHist: newHistogram(), lastTick: now, total: map[string]*hdrhistogram.Histogram{}}
	for _, n := range []string{HistDelivery, HistConnect, HistFirstEvent, HistPublish} {
		rc.total[n] = newHistogram()
	}
	for i := range rc.shards {
		s := &rc.shards[i]
		s.delivery, s.firstEvent, s.connect = newHistogram(), newHistogram(), newHistogram()
	}
	return rc
}

func (rc *recorder) publishDone(ok bool, lat time.Duration) {
	rc.pubMu.Lock()
	recordMicros(rc.pubHist, lat)
	if ok {
		rc.pubOK++
	} else {
		rc.pubFailed++
	}
	rc.pubMu.Unlock()
}

// tick closes the interval that started at the last tick: it folds the
// shards into the totals and appends one Second.
func (rc *recorder) tick(now time.Time, open int64, errs int64) Second {
	delivery, connect, first := newHistogram(), newHistogram(), newHistogram()
	var c EventCounts
	var connects int64
	for i := range rc.shards {
		s := &rc.shards[i]
		s.mu.Lock()
		delivery.Merge(s.delivery)
		connect.Merge(s.connect)
		first.Merge(s.firstEvent)
		s.delivery.Reset()
		s.connect.Reset()
		s.firstEvent.Reset()
		c = c.add(s.c)
		s.c = EventCounts{}
		connects += s.connects
		s.connects = 0
		s.mu.Unlock()
	}
	rc.pubMu.Lock()
	pub := rc.pubHist
	rc.pubHist = newHistogram()
	pubOK, pubFailed := rc.pubOK, rc.pubFailed
	rc.pubOK, rc.pubFailed = 0, 0
	rc.pubMu.Unlock()

	rc.total[HistDelivery].Merge(delivery)
	rc.total[HistConnect].Merge(connect)
	rc.total[HistFirstEvent].Merge(first)
	rc.total[HistPublish].Merge(pub)
	rc.counts = rc.counts.add(c)
	rc.connects += connects

	sec := Second{
		T: rc.lastTick.Unix(), Open: open, Connects: connects, Events: c.Events, Duplicated: c.Duplicated,
		Reordered: c.Reordered, PublishesOK: pubOK, PublishesFailed: pubFailed, Errors: errs,
		Histograms: map[string]string{},
	}
	for name, h := range map[string]*hdrhistogram.Histogram{HistDelivery: delivery, HistConnect: connect, HistPublish: pub} {
		if h.TotalCount() > 0 {
			sec.Histograms[name] = encodeHistogram(h)
		}
	}
	sec.summarise(delivery)
	rc.series = append(rc.series, sec)
	rc.lastTick = now
	return sec
}

// progressLine is the one-line status printed every second.
func progressLine(w io.Writer, elapsed time.Duration, sec Second, p99SoFar float64, errs int64) {
	fmt.Fprintf(w, "swarm %5.0fs  conns %6d  events/s %7d  p50 %7.2f ms  p99 %7.2f ms (run %7.2f)  pub ok/s %5d  pub fail %d  errors %d\n",
		elapsed.Seconds(), sec.Open, sec.Events, sec.DeliveryP50Ms, sec.DeliveryP99Ms, p99SoFar, sec.PublishesOK, sec.PublishesFailed, errs)
}
