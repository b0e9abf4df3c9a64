package swarm

import (
	"fmt"
	"io"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// WriteHdrLog writes the result's per-second histograms in the
// HdrHistogram interval-log format (version 1.3), one tagged line per
// histogram and second (tags delivery, connect, publish; values in
// microseconds), readable by HdrHistogram's HistogramLogProcessor and
// hdrhistogram-go's log reader. Merged results log their merged seconds.
func WriteHdrLog(w io.Writer, r *Result) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	start := r.Started.UnixMilli()
	if err := lw.OutputLogFormatVersion(); err != nil {
		return err
	}
	if err := lw.OutputComment(fmt.Sprintf("darktime swarm run %s, profile %s, target %s; values in microseconds", r.RunID, r.Profile, r.Target)); err != nil {
		return err
	}
	if err := lw.OutputStartTime(start); err != nil {
		return err
	}
	lw.SetBaseTime(start)
	if err := lw.OutputBaseTime(start); err != nil {
		return err
	}
	if err := lw.OutputLegend(); err != nil {
		return err
	}
	for _, sec := range r.Series {
		for _, name := range []string{HistDelivery, HistConnect, HistPublish} {
			s, ok := sec.Histograms[name]
			if !ok {
				continue
			}
			h, err := decodeHistogram(s)
			if err != nil {
				return fmt.Errorf("%w: second %d histogram %s: %v", ErrResult, sec.T, name, err)
			}
			h.SetTag(name)
			h.SetStartTimeMs(max(sec.T*1000, start))
			h.SetEndTimeMs(sec.T*1000 + 1000)
			if err := lw.OutputIntervalHistogram(h); err != nil {
				return err
			}
		}
	}
	return nil
}
