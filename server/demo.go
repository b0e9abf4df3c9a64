package server

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"time"
)

//go:embed demo.html
var demoPage []byte

func (s *Server) handleDemoPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(demoPage)
}

// RunDemoPublisher publishes a "tick" event to channel every interval until
// ctx ends, so a newcomer sees events with curl or the demo page.
func (s *Server) RunDemoPublisher(ctx context.Context, channel string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			data := fmt.Sprintf(`{"n":%d,"time":%q}`, n, now.UTC().Format(time.RFC3339Nano))
			if _, err := s.Publish(ctx, []PublishMessage{{Channel: channel, Event: "tick", Data: []byte(data)}}); err != nil && ctx.Err() == nil {
				s.log.Warn("demo publisher", "err", err)
			}
		}
	}
}
