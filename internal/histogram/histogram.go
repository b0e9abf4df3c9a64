// Package histogram holds the HdrHistogram conventions of darktime's load
// clients and benchmarks: latencies in microseconds from 1 µs to 1 h at 3
// significant figures, with values outside clamped in, so that a clock step
// or a very late event still counts.
package histogram

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Bounds of every histogram, in microseconds.
const (
	Min     = 1
	Max     = 3_600_000_000
	SigFigs = 3
)

// New returns an empty histogram with the bounds above.
func New() *hdrhistogram.Histogram {
	return hdrhistogram.New(Min, Max, SigFigs)
}

// Record records d in microseconds, clamped into [Min, Max].
func Record(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(max(Min, min(d.Microseconds(), Max))) // in range: cannot fail
}

// Ms is a histogram value (microseconds) in milliseconds.
func Ms(us int64) float64 { return float64(us) / 1e3 }
