package fanoutbench

import (
	"bytes"
	"math"
)

// The subscriber's wire decoding (HTTP/1.1 body framing and the event
// stream) is internal/sse's Stream; this file is the benchmark's payload.

// payloadPrefix and payloadTS frame the fields the subscriber reads back out
// of an event's data; see appendPayload.
const (
	payloadPrefix = `{"seq":`
	payloadTS     = `,"ts":`
)

// appendPayload appends an event body of about size bytes carrying the
// publish sequence number and the intended send time (Unix nanoseconds):
// {"seq":123,"ts":1700000000000000000,"pad":"xxxx"}. The padding makes the
// body exactly size bytes when size leaves room for it.
func appendPayload(b []byte, seq, ts int64, size int) []byte {
	start := len(b)
	b = append(b, payloadPrefix...)
	b = appendInt(b, seq)
	b = append(b, payloadTS...)
	b = appendInt(b, ts)
	const padOpen, padClose = `,"pad":"`, `"}`
	pad := size - (len(b) - start) - len(padOpen) - len(padClose)
	if pad < 0 {
		return append(b, '}')
	}
	b = append(b, padOpen...)
	for range pad {
		b = append(b, 'x')
	}
	return append(b, padClose...)
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var digits [20]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, digits[i:]...)
}

// parsePayload reads seq and ts back out of a body made by appendPayload.
// It accepts only non-negative numbers and ignores what follows ts.
func parsePayload(data []byte) (seq, ts int64, ok bool) {
	if !bytes.HasPrefix(data, []byte(payloadPrefix)) {
		return 0, 0, false
	}
	data = data[len(payloadPrefix):]
	seq, data, ok = parseDigits(data)
	if !ok || !bytes.HasPrefix(data, []byte(payloadTS)) {
		return 0, 0, false
	}
	ts, _, ok = parseDigits(data[len(payloadTS):])
	if !ok {
		return 0, 0, false
	}
	return seq, ts, true
}

// parseDigits parses a run of decimal digits at the start of b, refusing
// values that overflow int64.
func parseDigits(b []byte) (int64, []byte, bool) {
	var v int64
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, b, false
		}
		v = v*10 + d
	}
	if i == 0 {
		return 0, b, false
	}
	return v, b[i:], true
}
