package swarm

import (
	"fmt"
	"io"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/histogram"
)

// The swarm's histograms follow internal/histogram's conventions (µs, 1 µs
// to 1 h, clamped); the short names keep its many call sites short.
var (
	newHistogram = histogram.New
	recordMicros = histogram.Record
)

// recShards spreads the per-event recording over several locks.
const recShards = 8

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
// shards into the totals and appends one Second, which it returns with
// the interval's histograms (kept by no one: Tick.Histograms).
func (rc *recorder) tick(now time.Time, open int64, errs int64) (Second, map[string]*hdrhistogram.Histogram) {
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
		c = c.Add(s.c)
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
	rc.counts = rc.counts.Add(c)
	rc.connects += connects

	sec := Second{
		T: rc.lastTick.Unix(), Open: open, Connects: connects, Events: c.Events, Duplicated: c.Duplicated,
		Reordered: c.Reordered, PublishesOK: pubOK, PublishesFailed: pubFailed, Errors: errs,
		Histograms: map[string]string{},
	}
	hists := map[string]*hdrhistogram.Histogram{HistDelivery: delivery, HistConnect: connect, HistPublish: pub}
	for name, h := range hists {
		if h.TotalCount() > 0 {
			sec.Histograms[name] = encodeHistogram(h)
		}
	}
	sec.Summarise(delivery)
	rc.series = append(rc.series, sec)
	rc.lastTick = now
	return sec, hists
}

// progressLine is the one-line status printed every second.
func progressLine(w io.Writer, elapsed time.Duration, sec Second, p99SoFar float64, errs int64) {
	fmt.Fprintf(w, "swarm %5.0fs  conns %6d  events/s %7d  p50 %7.2f ms  p99 %7.2f ms (run %7.2f)  pub ok/s %5d  pub fail %d  errors %d\n",
		elapsed.Seconds(), sec.Open, sec.Events, sec.DeliveryP50Ms, sec.DeliveryP99Ms, p99SoFar, sec.PublishesOK, sec.PublishesFailed, errs)
}
