package swarm

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// The extract markers are checked where they matter, on what the server
// delivers: a server may wrap the published body (a GRIP proxy's JSON
// envelope carries it as an escaped JSON string) or unwrap it (a publish
// API that takes the event text inside a JSON string delivers it
// unescaped), so the publish body proves nothing about the received data.
// The first events a run receives are examined; when none of them can be
// read, the result says which markers found nothing, with a sample.

// probeEvents is how many of a run's first events are examined when none
// of them can be read; the first event that can be read ends the check.
const probeEvents = 3

// sampleBytes bounds the data sample of an ExtractFailure.
const sampleBytes = 120

// extractProbe examines a run's first events.
type extractProbe struct {
	// done is set once an event was read or probeEvents were examined:
	// from then on an event costs one atomic load.
	done atomic.Bool

	mu     sync.Mutex // guards the fields below
	events int
	read   bool
	fields []string
	sample string
}

// extract reads an event's seq, ts and channel with the run's profile,
// examining the run's first events.
func (r *run) extract(data []byte) (seq, ts int64, channel []byte, ok bool) {
	seq, ts, channel, ok = r.prof.extract(data)
	if !r.probe.done.Load() {
		r.probeEvent(data, ok)
	}
	return seq, ts, channel, ok
}

func (r *run) probeEvent(data []byte, ok bool) {
	p := &r.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.read || p.events >= probeEvents {
		return
	}
	p.events++
	switch {
	case ok:
		p.read = true
		p.done.Store(true)
		return
	case p.events == 1:
		p.fields = r.prof.missing(data)
		p.sample = sampleOf(data)
	}
	if p.events == probeEvents {
		p.done.Store(true)
		r.log.Warn("none of the first events received could be read with the extract markers (extract_failure in the result)",
			"fields", strings.Join(p.fields, ","), "sample", p.sample)
	}
}

// extractFailure is the run's ExtractFailure, nil when an event was read
// or none arrived.
func (r *run) extractFailure() *ExtractFailure {
	p := &r.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.read || p.events == 0 {
		return nil
	}
	return p.failure(r.prof.Extract)
}

func (p *extractProbe) failure(e Extract) *ExtractFailure {
	return &ExtractFailure{Events: p.events, Fields: p.fields, Markers: e, Sample: p.sample}
}

// sampleOf is the start of data, valid UTF-8, at most sampleBytes.
func sampleOf(data []byte) string {
	if len(data) <= sampleBytes {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	cut := sampleBytes
	for cut > 0 && !utf8.RuneStart(data[cut]) {
		cut--
	}
	return strings.ToValidUTF8(string(data[:cut]), "\uFFFD") + "…"
}

// extract finds seq, ts and (when clients hold several channels) the
// channel in an event's data. It allocates nothing and does not modify
// data.
func (c *compiledProfile) extract(data []byte) (seq, ts int64, channel []byte, ok bool) {
	// Escapes are only looked at when there are any.
	esc := c.Extract.JSONString && bytes.IndexByte(data, '\\') >= 0
	if seq, ok = numberAfter(data, c.Extract.Seq, esc); !ok {
		return 0, 0, nil, false
	}
	if ts, ok = numberAfter(data, c.Extract.TS, esc); !ok {
		return 0, 0, nil, false
	}
	if c.multi {
		if channel, ok = channelAfter(data, c.Extract.Channel, esc); !ok {
			return 0, 0, nil, false
		}
	}
	return seq, ts, channel, true
}

// missing lists the fields whose marker finds nothing in data.
func (c *compiledProfile) missing(data []byte) []string {
	esc := c.Extract.JSONString && bytes.IndexByte(data, '\\') >= 0
	var out []string
	if _, ok := numberAfter(data, c.Extract.Seq, esc); !ok {
		out = append(out, "seq")
	}
	if _, ok := numberAfter(data, c.Extract.TS, esc); !ok {
		out = append(out, "ts")
	}
	if _, ok := channelAfter(data, c.Extract.Channel, esc); c.multi && !ok {
		out = append(out, "channel")
	}
	return out
}

// indexAfter is the index in data just past the first occurrence of
// marker, or -1. With esc, data is read with its JSON string escapes
// undone: `\"` matches '"', `\\` '\', `\u0041` 'A', and so on.
func indexAfter(data []byte, marker string, esc bool) int {
	if !esc {
		i := bytes.Index(data, []byte(marker))
		if i < 0 {
			return -1
		}
		return i + len(marker)
	}
	if marker == "" {
		return 0
	}
	first := marker[0]
	for i := 0; i < len(data); {
		if b := data[i]; b != '\\' {
			if b == first {
				if end := matchUnescaped(data, i, marker); end >= 0 {
					return end
				}
			}
			i++
			continue
		}
		// An escape: whole characters, never from inside one.
		b, n := unescapeAt(data, i)
		if b == first {
			if end := matchUnescaped(data, i, marker); end >= 0 {
				return end
			}
		}
		i += n
	}
	return -1
}

// matchUnescaped reports where marker ends when data, unescaped, holds it
// from raw index i on; -1 when it does not.
func matchUnescaped(data []byte, i int, marker string) int {
	for k := 0; k < len(marker); k++ {
		if i >= len(data) {
			return -1
		}
		b, n := unescapeAt(data, i)
		if b != marker[k] {
			return -1
		}
		i += n
	}
	return i
}

// unescapeAt decodes the character of a JSON string at data[i]: its byte
// and its length in data. An escape of a character beyond ASCII decodes to
// 0xFF, which no marker (valid UTF-8) holds; a malformed escape is a
// plain backslash.
func unescapeAt(data []byte, i int) (byte, int) {
	if data[i] != '\\' || i+1 >= len(data) {
		return data[i], 1
	}
	switch e := data[i+1]; e {
	case '"', '\\', '/':
		return e, 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if i+6 > len(data) {
			break
		}
		var r rune
		for _, h := range data[i+2 : i+6] {
			v, ok := hexDigit(h)
			if !ok {
				return '\\', 1
			}
			r = r<<4 | rune(v)
		}
		if r < utf8.RuneSelf {
			return byte(r), 6
		}
		return 0xFF, 6
	}
	return '\\', 1
}

func hexDigit(h byte) (byte, bool) {
	switch {
	case '0' <= h && h <= '9':
		return h - '0', true
	case 'a' <= h && h <= 'f':
		return h - 'a' + 10, true
	case 'A' <= h && h <= 'F':
		return h - 'A' + 10, true
	}
	return 0, false
}

// numberAfter parses the non-negative decimal number that follows marker.
func numberAfter(data []byte, marker string, esc bool) (int64, bool) {
	i := indexAfter(data, marker, esc)
	if i < 0 {
		return 0, false
	}
	b := data[i:]
	var v int64
	n := 0
	for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
		d := int64(b[n] - '0')
		if v > (1<<63-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, n > 0
}

// channelAfter is the channel name that follows marker, up to the next
// '"' or escaped quote `\"` (channel names hold neither).
func channelAfter(data []byte, marker string, esc bool) ([]byte, bool) {
	i := indexAfter(data, marker, esc)
	if i < 0 {
		return nil, false
	}
	rest := data[i:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, false
	}
	if end > 0 && rest[end-1] == '\\' {
		end--
	}
	return rest[:end], true
}
