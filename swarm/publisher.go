package swarm

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// publishTimeout bounds one publish request.
const publishTimeout = 10 * time.Second

// maxPublishErrorKinds bounds the distinct publish error messages kept.
const maxPublishErrorKinds = 16

// publishLog is what the publisher sent: per channel, by seq, the intended
// send time and the outcome.
type publishLog struct {
	mu     sync.Mutex
	rr     int                // round-robin position over the part's channels
	ts     map[int][]int64    // channel -> seq -> intended send time (Unix ns)
	status map[int][]pubState // channel -> seq -> outcome
	info   PublishInfo
}

type pubState uint8

const (
	pubPending pubState = iota
	pubOK
	pubFailed
)

func (l *publishLog) ok(ch int, seq int64) bool {
	s := l.status[ch]
	return seq < int64(len(s)) && s[seq] == pubOK
}

// pacer builds the vegeta pacer for this part's share of the rate.
func (cfg Config) pacer(share float64) vegeta.Pacer {
	rate := func(perS float64) vegeta.Rate {
		return vegeta.Rate{Freq: 1, Per: max(time.Duration(float64(time.Second)/perS), 1)}
	}
	base := cfg.Rate * share
	switch cfg.Pacing.Kind {
	case PaceLinear:
		return vegeta.LinearPacer{StartAt: rate(base), Slope: cfg.Pacing.Slope * share}
	case PaceSine:
		if cfg.Pacing.Amplitude > 0 {
			return vegeta.SinePacer{Period: cfg.Pacing.Period, Mean: rate(base), Amp: rate(cfg.Pacing.Amplitude * share)}
		}
	}
	return rate(base)
}

// stampingPacer wraps a vegeta pacer and hands the intended send time of
// every hit it releases to the targeter, in order. vegeta calls Pace once
// per hit before releasing it, so the k-th targeter call finds the k-th
// hit's intended time, which has passed by then: a publish stamped with it
// carries the delay of a slow server or a backed-up attacker
// (no coordinated omission).
type stampingPacer struct {
	inner  vegeta.Pacer
	began  time.Time
	stamps chan int64
}

func (p *stampingPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	wait, stop := p.inner.Pace(elapsed, hits)
	if stop {
		return wait, stop
	}
	at := elapsed + wait
	if wait <= 0 {
		// Behind schedule: find when the hit was due.
		lo, hi := time.Duration(0), elapsed
		for hi-lo > time.Microsecond {
			mid := lo + (hi-lo)/2
			if w, _ := p.inner.Pace(mid, hits); w <= 0 {
				hi = mid
			} else {
				lo = mid
			}
		}
		at = hi
	}
	p.stamps <- p.began.Add(at).UnixNano()
	return wait, false
}

func (p *stampingPacer) Rate(elapsed time.Duration) float64 { return p.inner.Rate(elapsed) }

// publish runs the vegeta attack for Duration: round-robin over the
// part's channels, each request filled from the publish template with the
// channel's next seq and the intended send time.
func (r *run) publish(ctx context.Context, share float64) {
	cfg := r.cfg
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
	}), vegeta.MaxWorkers(10_000))
	pl := r.pubs
	pacer := &stampingPacer{inner: cfg.pacer(share), stamps: make(chan int64, 4096)}
	payload := max(0, cfg.Size-r.prof.bodyFixed)
	targeter := func(t *vegeta.Target) error {
		ts := <-pacer.stamps
		pl.mu.Lock()
		ch := r.asg.mine[pl.rr%len(r.asg.mine)]
		// Every channel visits every target in turn, whatever the counts.
		target := cfg.Targets[(pl.rr+pl.rr/len(r.asg.mine))%len(cfg.Targets)]
		pl.rr++
		seq := r.nextSeq[ch].Load()
		pl.ts[ch] = append(pl.ts[ch], ts)
		pl.status[ch] = append(pl.status[ch], pubPending)
		pl.info.Attempted++
		// Clients snapshot nextSeq when they subscribe: bump it only once
		// the seq is recorded, and before the request leaves.
		r.nextSeq[ch].Store(seq + 1)
		pl.mu.Unlock()
		v := values{target: target, channel: r.asg.names[ch], seq: seq, ts: ts, payload: payload}
		t.Method = r.prof.Publish.Method
		// The fragment never goes on the wire; it lets the results loop
		// match vegeta's Result (which echoes the URL) to channel and seq.
		t.URL = r.prof.pubURL.expand(&v) + "#" + strconv.Itoa(ch) + "." + strconv.FormatInt(seq, 10)
		t.Body = r.prof.pubBody.append(make([]byte, 0, cfg.Size+64), &v)
		if len(r.prof.pubHeaders) > 0 {
			t.Header = make(http.Header, len(r.prof.pubHeaders))
			for _, h := range r.prof.pubHeaders {
				t.Header.Add(h.name, h.value.expand(&v))
			}
		}
		return nil
	}

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
	pacer.began = time.Now()
	for res := range atk.Attack(targeter, pacer, cfg.Duration, "swarm") {
		ch, seq, ok := fromFragment(res.URL)
		success := res.Code >= 200 && res.Code < 300 && res.Error == ""
		pl.mu.Lock()
		var intended int64
		if ok && seq < int64(len(pl.ts[ch])) {
			intended = pl.ts[ch][seq]
			if success {
				pl.status[ch][seq] = pubOK
			} else {
				pl.status[ch][seq] = pubFailed
			}
		}
		if success {
			pl.info.OK++
		} else {
			pl.info.Failed++
			msg := res.Error
			if msg == "" {
				msg = "status " + strconv.Itoa(int(res.Code))
			} else {
				msg = strings.ReplaceAll(msg, res.URL, "{publish URL}")
			}
			if _, seen := pl.info.Errors[msg]; !seen && len(pl.info.Errors) >= maxPublishErrorKinds {
				msg = "other"
			}
			pl.info.Errors[msg]++
		}
		pl.mu.Unlock()
		lat := res.Latency
		if intended != 0 {
			lat = res.Timestamp.Add(res.Latency).Sub(time.Unix(0, intended))
		}
		r.rec.publishDone(success, lat)
	}
	close(done)
	<-stopped
}

func fromFragment(u string) (ch int, seq int64, ok bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(u[i+1:], ".")
	if !found {
		return 0, 0, false
	}
	c, err1 := strconv.Atoi(a)
	s, err2 := strconv.ParseInt(b, 10, 64)
	return c, s, err1 == nil && err2 == nil && c >= 0 && s >= 0
}
