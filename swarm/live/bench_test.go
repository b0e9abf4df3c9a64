package live

import (
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/histogram"
	"github.com/darktime/darktime/swarm"
)

// BenchmarkTick is the exporter's cost per second of a run with 100,000
// deliveries (log-normal around 2 ms) on the swarm's ticking goroutine;
// ns/op is per second of the run, per-delivery cost is that / 1e5.
func BenchmarkTick(b *testing.B) {
	hs := httptest.NewServer(&receiver{})
	defer hs.Close()
	e, err := New(Config{URL: hs.URL, Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(b.Context(), nil)
	rng := rand.New(rand.NewPCG(1, 2))
	d := histogram.New()
	for range 100_000 {
		_ = d.RecordValue(int64(2000 * (1 + rng.ExpFloat64())))
	}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		e.Tick(swarm.Tick{At: at, Phase: "publish", Second: swarm.Second{Events: d.TotalCount()},
			Histograms: map[string]*hdrhistogram.Histogram{swarm.HistDelivery: d}})
	}
}
