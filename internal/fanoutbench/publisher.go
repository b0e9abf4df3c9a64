package fanoutbench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxPublishErrorKinds bounds the distinct publish error messages kept.
const maxPublishErrorKinds = 16

// publishTimeout bounds one publish request.
const publishTimeout = 10 * time.Second

// publishStats is what the publisher saw of its own requests.
type publishStats struct {
	start, end time.Time
	ok         int64
	failed     int64 // non-2xx answers and transport errors
	non2xx     int64
	okSeq      []bool // okSeq[seq]: the publish of seq got a 2xx
	latency    *hdrhistogram.Histogram
	errors     map[string]int64
}

var errPublishOverrun = errors.New("publisher overran its planned number of events")

// publishInterval is the constant gap between publishes at rate events/s.
func publishInterval(rate float64) time.Duration {
	return max(time.Duration(float64(time.Second)/rate), 1)
}

// plannedPublishes is an upper bound on how many events vegeta's constant
// pacer sends in d: one every interval, the first one interval after start.
func plannedPublishes(rate float64, d time.Duration) int {
	return int(d/publishInterval(rate)) + 2
}

// publish runs the vegeta attack: round-robin over the channels at the
// configured constant rate, each body stamped with its sequence number and
// intended send time.
func (r *run) publish(ctx context.Context) *publishStats {
	cfg := r.cfg
	interval := publishInterval(cfg.Rate)
	st := &publishStats{
		okSeq:   make([]bool, len(r.delivered)),
		latency: newHistogram(),
		errors:  make(map[string]int64),
	}
	// Our own client rather than vegeta's default one, so that its idle
	// keep-alive connections can be closed when the run ends.
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: publishTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1000,
	}
	defer transport.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{
		Timeout:   publishTimeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}))
	header := http.Header{"Content-Type": {"application/json"}}
	planned := int64(len(r.delivered))
	var next atomic.Int64
	var base int64
	channels := int64(len(r.channels))
	targeter := func(t *vegeta.Target) error {
		seq := next.Add(1) - 1
		if seq >= planned {
			return errPublishOverrun
		}
		// The pacer releases hit seq at start+(seq+1)*interval and vegeta
		// calls the targeter once per released hit, so this call happens no
		// earlier than that time: stamping it (rather than time.Now) keeps a
		// slow server from hiding its delay (coordinated omission). base is
		// taken just before vegeta's own start, so latencies err on the long
		// side by microseconds.
		ts := base + (seq+1)*int64(interval)
		t.Method = http.MethodPost
		// The fragment never goes on the wire; it lets the results loop
		// match vegeta's Result (which echoes the URL) to seq.
		t.URL = r.pubURLs[seq%channels] + "#" + strconv.FormatInt(seq, 10)
		t.Body = appendPayload(make([]byte, 0, cfg.Size+64), seq, ts, cfg.Size)
		t.Header = header
		return nil
	}
	pacer := vegeta.ConstantPacer{Freq: 1, Per: interval}

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			atk.Stop()
		case <-done:
		}
	}()
	st.start = time.Now()
	base = st.start.UnixNano()
	for res := range atk.Attack(targeter, pacer, cfg.Duration, "fanout") {
		recordMicros(st.latency, res.Latency)
		seq, seqOK := seqFromURL(res.URL)
		if res.Code >= 200 && res.Code < 300 && res.Error == "" && seqOK && seq < planned {
			st.ok++
			st.okSeq[seq] = true
			continue
		}
		st.failed++
		if res.Code != 0 && (res.Code < 200 || res.Code >= 300) {
			st.non2xx++
		}
		// The URL (with its #seq) would make every message distinct.
		msg := strings.ReplaceAll(res.Error, res.URL, "/pub")
		if msg == "" {
			msg = strconv.Itoa(int(res.Code))
		}
		if _, seen := st.errors[msg]; !seen && len(st.errors) >= maxPublishErrorKinds {
			msg = "other"
		}
		st.errors[msg]++
	}
	st.end = time.Now()
	close(done)
	<-stopped
	return st
}

func seqFromURL(u string) (int64, bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return 0, false
	}
	seq, err := strconv.ParseInt(u[i+1:], 10, 64)
	return seq, err == nil && seq >= 0
}
