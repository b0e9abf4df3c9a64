package pipeline

import (
	"context"
	"testing"
)

// BenchmarkDefaultPipeline measures what a worker does per job: parse the
// payload and run it through the default post pipeline.
func BenchmarkDefaultPipeline(b *testing.B) {
	cfg := DefaultConfig()
	ctx := context.Background()
	data := []byte(postSave)
	b.Run("parse+run", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h, err := ParseHook(data)
			if err != nil {
				b.Fatal(err)
			}
			h.Received = received
			res, err := cfg.Run(ctx, h)
			if err != nil || len(res.Events) != 3 {
				b.Fatal(err, res)
			}
		}
	})
	b.Run("run", func(b *testing.B) {
		h := mustHook(b, postSave)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cfg.Run(ctx, h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
