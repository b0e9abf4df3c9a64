package shadow

import (
	"net/http"
	"sync"
)

// Unmirrored publishes. Where the candidate gets its events from mirrored
// publishes (its own broker), a publish the proxy did not send it (its
// lane was full, its circuit open, the body too large) and the primary
// accepted becomes an event the primary delivers on that channel's streams
// and the candidate cannot: the proxy's doing, not the candidate's. The
// target's book keeps, per channel label with mirrored streams open, when
// such publishes reached the proxy; a missing event of a stream on that
// label, delivered by the primary at most settle_ms after one of them
// (and after the candidate's stream opened), takes it as its cause, each
// publish at most once per stream.

// skipLogMax bounds the unmirrored publishes remembered per label; each
// is also forgotten settle_ms after it reached the proxy.
const skipLogMax = 1024

// skipLog is the unmirrored publishes of one label on one target: their
// arrival times (unix ns) in order, numbered from first.
type skipLog struct {
	mu     sync.Mutex
	times  []int64
	first  uint64
	within int64 // ns: how long a publish may take to reach a stream (settle)
	refs   int   // open mirrored streams on the label (guarded by the book's mu)
}

func (l *skipLog) add(at int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	drop := 0
	for drop < len(l.times) && (at-l.times[drop] > l.within || len(l.times)-drop >= skipLogMax) {
		drop++
	}
	if drop > 0 {
		l.times = append(l.times[:0], l.times[drop:]...)
		l.first += uint64(drop)
	}
	l.times = append(l.times, at)
}

// take consumes, for one stream whose cursor is next, the first
// unmirrored publish that arrived in [lo, hi]; false when there is none.
// Publishes before lo are passed for good (missing events settle in about
// the order the primary delivered them).
func (l *skipLog) take(next *uint64, lo, hi int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := max(*next, l.first)
	for ; seq < l.first+uint64(len(l.times)); seq++ {
		at := l.times[seq-l.first]
		if at < lo {
			continue
		}
		if at > hi {
			break
		}
		*next = seq + 1
		return true
	}
	*next = seq
	return false
}

// skipLogFor returns the log of a label for a new mirrored stream on it.
func (b *book) skipLogFor(label string, within int64) *skipLog {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.skips[label]
	if l == nil {
		l = &skipLog{within: within}
		b.skips[label] = l
	}
	l.refs++
	return l
}

// releaseSkipLog is called when a mirrored stream on the label ends; the
// last one drops the log.
func (b *book) releaseSkipLog(label string, l *skipLog) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l.refs--; l.refs == 0 && b.skips[label] == l {
		delete(b.skips, label)
	}
}

// unmirroredPublish records a publish to label, arrived at at, that the
// primary accepted and this target was not sent. Nothing is kept for a
// label without mirrored streams.
func (b *book) unmirroredPublish(label string, at int64) {
	b.mu.Lock()
	b.unmirrored++
	l := b.skips[label]
	b.mu.Unlock()
	if l != nil {
		l.add(at)
	}
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
