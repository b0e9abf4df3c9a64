// Package defect injects defects into a Server-Sent Events server's
// streams, for tests and scenarios that must show a judge catches them: it
// drops a share of events silently, delays every delivery, or widens the
// tail of the delay distribution while keeping its median.
//
// Middleware wraps a handler (a reference server's, or a reverse proxy
// to one: Proxy); only responses of type text/event-stream are touched,
// so publishes and other requests pass as they are; hijacking is refused
// (the reference server then writes its streams through the
// ResponseWriter rather than to the socket). The stream is cut
// into events at blank lines; an event (a frame with data) is chosen for
// a drop or for the tail by a hash of its id (of its data when it has
// none) with the salt, so the choice is deterministic: every subscriber
// of a channel loses the same events, run after run. Comments, retry
// lines and id-only frames are never dropped.
//
// A stream's events keep their order: an event waits for the one before
// it, so a tail delay longer than the gap between a stream's events
// delays the events behind it too (and moves the median). With the gap
// wider than TailDelay, a TailFraction of 2% leaves the p50 where it was
// and puts the p99 at about the p50 plus TailDelay: DoubleP99 gives the
// TailDelay that doubles a measured p99.
package defect

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is what is done to every stream. The zero value does nothing.
type Config struct {
	// Drop is the fraction of events dropped (0.001: 0.1%).
	Drop float64
	// Delay is added to every event's delivery.
	Delay time.Duration
	// TailFraction of the events are delayed by TailDelay more.
	TailFraction float64
	TailDelay    time.Duration
	// Jitter adds to every event a delay drawn from 0 to Jitter (by the
	// event's hash): noise, as a busier instance has.
	Jitter time.Duration
	// Salt varies which events are chosen.
	Salt string
}

// ErrInvalid is wrapped by Parse's and Validate's errors.
var ErrInvalid = errors.New("invalid defect")

// None reports whether c changes nothing.
func (c Config) None() bool {
	return c.Drop == 0 && c.Delay == 0 && c.Jitter == 0 && (c.TailFraction == 0 || c.TailDelay == 0)
}

// Validate checks the fractions (0 to 1) and the delays (not negative).
func (c Config) Validate() error {
	switch {
	case !(c.Drop >= 0 && c.Drop <= 1):
		return fmt.Errorf("%w: drop %v: a fraction from 0 to 1", ErrInvalid, c.Drop)
	case !(c.TailFraction >= 0 && c.TailFraction <= 1):
		return fmt.Errorf("%w: tail fraction %v: a fraction from 0 to 1", ErrInvalid, c.TailFraction)
	case c.Delay < 0 || c.TailDelay < 0 || c.Jitter < 0:
		return fmt.Errorf("%w: a negative delay", ErrInvalid)
	}
	return nil
}

// String is the Parse form of c.
func (c Config) String() string {
	var parts []string
	if c.Drop > 0 {
		parts = append(parts, "drop="+strconv.FormatFloat(c.Drop*100, 'g', -1, 64)+"%")
	}
	if c.Delay > 0 {
		parts = append(parts, "delay="+c.Delay.String())
	}
	if c.Jitter > 0 {
		parts = append(parts, "jitter="+c.Jitter.String())
	}
	if c.TailFraction > 0 && c.TailDelay > 0 {
		parts = append(parts, "tail="+strconv.FormatFloat(c.TailFraction*100, 'g', -1, 64)+"%:"+c.TailDelay.String())
	}
	if c.Salt != "" && len(parts) > 0 {
		parts = append(parts, "salt="+c.Salt)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// DoubleP99 is the TailDelay that, with a TailFraction of 2% (more than
// 1%, so the p99 falls among the delayed events), about doubles a
// distribution's p99 and leaves its p50: the delayed events arrive near
// p50 + TailDelay = 2 × p99.
func DoubleP99(p50, p99 time.Duration) time.Duration {
	return max(2*p99-p50, p99)
}

// Parse reads a defect: "none", or comma-separated terms drop=F,
// delay=D, jitter=D, tail=F:D, salt=S, where F is a fraction ("0.001") or a
// percentage ("0.1%") and D a Go duration ("40ms"):
//
//	drop=0.1%          one event in a thousand lost
//	delay=40ms         every event 40 ms late
//	tail=2%:30ms       one event in fifty 30 ms late
//	jitter=20ms        every event 0 to 20 ms late
func Parse(s string) (Config, error) {
	var c Config
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return c, nil
	}
	seen := map[string]bool{}
	for _, term := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(term), "=")
		if !ok {
			return Config{}, fmt.Errorf("%w: %q: want drop=F, delay=D, jitter=D, tail=F:D or salt=S", ErrInvalid, term)
		}
		if seen[key] {
			return Config{}, fmt.Errorf("%w: %s given twice", ErrInvalid, key)
		}
		seen[key] = true
		if err := c.set(key, val); err != nil {
			return Config{}, err
		}
	}
	return c, c.Validate()
}

func (c *Config) set(key, val string) error {
	var err error
	switch key {
	case "drop":
		c.Drop, err = fraction(val)
	case "delay":
		c.Delay, err = duration(val)
	case "jitter":
		c.Jitter, err = duration(val)
	case "tail":
		f, d, ok := strings.Cut(val, ":")
		if !ok {
			return fmt.Errorf("%w: tail=%s: want tail=FRACTION:DELAY (tail=2%%:30ms)", ErrInvalid, val)
		}
		if c.TailFraction, err = fraction(f); err == nil {
			c.TailDelay, err = duration(d)
		}
	case "salt":
		c.Salt = val
	default:
		return fmt.Errorf("%w: unknown term %q: drop, delay, jitter, tail or salt", ErrInvalid, key)
	}
	if err != nil {
		return fmt.Errorf("%w: %s=%s: %w", ErrInvalid, key, val, err)
	}
	return nil
}

func fraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a number")
	}
	if pct {
		f /= 100
	}
	if f < 0 || f > 1 {
		return 0, errors.New("a fraction from 0 to 1 (or 0% to 100%)")
	}
	return f, nil
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration (40ms)")
	}
	if d < 0 || d > time.Hour {
		return 0, errors.New("from 0 to 1h")
	}
	return d, nil
}

// Proxy is a reverse proxy to upstream with the defects applied.
func Proxy(upstream *url.URL, c Config) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(upstream); pr.SetXForwarded() },
		FlushInterval: -1,
	}
	return Middleware(rp, c)
}

// Middleware applies the defects to next's event streams.
func Middleware(next http.Handler, c Config) http.Handler {
	if c.None() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &writer{ResponseWriter: w, cfg: c, ctx: r.Context()}
		defer dw.finish()
		next.ServeHTTP(dw, r)
	})
}

// uniform is the event's hash for a purpose, uniform in [0, 1).
func (c Config) uniform(purpose string, key []byte) float64 {
	h := fnv.New64a()
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(c.Salt))
	h.Write([]byte{0})
	h.Write(key)
	x := h.Sum64()
	// A finaliser (splitmix64's): FNV's low bits are poorly mixed for
	// keys that differ in their last bytes (sequence numbers).
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// chosen reports whether the event with this key falls in fraction f
// of the events, for a purpose ("drop", "tail"): a hash, the same on
// every run and every subscriber.
func (c Config) chosen(purpose string, key []byte, f float64) bool {
	return f > 0 && c.uniform(purpose, key) < f
}

// decide is what happens to one frame: dropped, or sent after a delay.
func (c Config) decide(f frame) (drop bool, delay time.Duration) {
	if !f.event {
		return false, 0
	}
	key := f.id
	if key == nil {
		key = f.data
	}
	if c.chosen("drop", key, c.Drop) {
		return true, 0
	}
	delay = c.Delay
	if c.Jitter > 0 {
		delay += time.Duration(c.uniform("jitter", key) * float64(c.Jitter))
	}
	if c.TailDelay > 0 && c.chosen("tail", key, c.TailFraction) {
		delay += c.TailDelay
	}
	return false, delay
}
