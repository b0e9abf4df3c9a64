package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/swarm/resultfile"
)

// t0 is the synthetic run's first second.
const t0 = 1_800_000_000

// synth describes a synthetic run: channels ch0..chN-1 over seconds, 20
// subscribers per channel, one publish per channel per second.
type synth struct {
	runID    string
	channels int
	seconds  int
	// faulty loses 3 deliveries on ch1 in second 3 and duplicates one on
	// ch2 in second 4 (where latency also spikes).
	faulty bool
	// slow adds this many ms to every latency (for comparisons).
	slowMs int64
}

const subsPerChannel = 20

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 3_600_000_000, 3) }

func encode(t testing.TB, h *hdrhistogram.Histogram) string {
	t.Helper()
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// part builds part index of count of the run, written and read back
// through swarm's file format, as the CLI would see it.
func (s synth) part(t testing.TB, index, count int) *resultfile.Result {
	t.Helper()
	total := newHist()
	l := ledger.New(time.Second)
	r := &resultfile.Result{
		Schema: resultfile.Schema, RunID: s.runID, Parts: []resultfile.PartInfo{{Part: resultfile.Part{Index: index, Count: count}}},
		Profile: "darktime", Target: "http://127.0.0.1:8080",
		Started: time.Unix(t0, 0).UTC(), Ended: time.Unix(t0+int64(s.seconds), 0).UTC(),
		Errors: map[string]int64{}, Summary: map[string]resultfile.Percentiles{},
		Config: resultfile.ConfigEcho{Clients: s.channels * subsPerChannel, Channels: s.channels, LedgerWindowS: 1},
	}
	for sec := 0; sec < s.seconds; sec++ {
		at := time.Unix(t0+int64(sec), 0)
		h := newHist()
		var events, dup int64
		for c := index; c < s.channels; c += count {
			ch := fmt.Sprintf("ch%d", c)
			got, cnt := int64(subsPerChannel), ledger.Counts{Credit: subsPerChannel}
			if s.faulty && c == 1 && sec == 3 {
				got -= 3
				cnt.Lost = 3
			}
			if s.faulty && c == 2 && sec == 4 {
				got++
				cnt.Duplicated = 1
			}
			cnt.Debit = got
			l.Apply(ch, at, cnt)
			for k := range got {
				us := 1000 + (int64(c)*7919+int64(sec)*104729+k*37)%4000 + s.slowMs*1000
				if s.faulty && sec == 4 && k < 5 {
					us = 80_000
				}
				_ = h.RecordValue(us)
			}
			events += got
			dup += cnt.Duplicated
			r.Publish.Attempted++
			r.Publish.OK++
		}
		total.Merge(h)
		open := int64(subsPerChannel * ((s.channels - index + count - 1) / count))
		r.Series = append(r.Series, resultfile.Second{T: at.Unix(), Open: open, Events: events, Duplicated: dup,
			PublishesOK:   int64((s.channels - index + count - 1) / count),
			Histograms:    map[string]string{resultfile.HistDelivery: encode(t, h)},
			DeliveryP50Ms: float64(h.ValueAtQuantile(50)) / 1e3, DeliveryP99Ms: float64(h.ValueAtQuantile(99)) / 1e3})
		r.Events.Events += events
		r.Events.Duplicated += dup
	}
	conn := newHist()
	for c := index; c < s.channels; c += count {
		for k := range subsPerChannel {
			_ = conn.RecordValue(int64(500 + 10*k))
		}
		r.Clients.Planned += subsPerChannel
		r.Clients.Connected += subsPerChannel
		r.Clients.Connects += subsPerChannel
	}
	r.Histograms = map[string]string{resultfile.HistDelivery: encode(t, total), resultfile.HistConnect: encode(t, conn)}
	r.Ledger = l
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := resultfile.ReadResult(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// file writes a result to a temporary file and returns its path.
func writeResult(t *testing.T, r *resultfile.Result) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), r.RunID+".json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.Write(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	tstest.Golden(t, filepath.Join("testdata", name), got)
}
