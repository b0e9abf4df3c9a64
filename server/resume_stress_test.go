package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
)

// TestResumeUnderLoadNoDuplicates: clients on two channels each are cut
// and resume with Last-Event-ID while events keep coming; every client
// gets every event published after it first connected exactly once.
func TestResumeUnderLoadNoDuplicates(t *testing.T) {
	t.Parallel()
	for _, broker := range []string{"memory", "redis"} {
		t.Run(broker, func(t *testing.T) {
			t.Parallel()
			cfg := Config{}
			if broker == "redis" {
				cfg.RedisURL = redistest.Start(t).URL
			}
			_, base := startServer(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Publisher: a numbered event alternately on a and b.
			var pubWG sync.WaitGroup
			published := make(chan int, 1)
			pubWG.Add(1)
			go func() {
				defer pubWG.Done()
				n := 0
				for ctx.Err() == nil && n < 600 {
					ch := []string{"ra", "rb"}[n%2]
					resp, err := http.Post(base+"/pub?id="+ch, "text/plain", strings.NewReader(fmt.Sprint(n)))
					if err == nil {
						resp.Body.Close()
						n++
					}
					time.Sleep(2 * time.Millisecond)
				}
				published <- n
			}()
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for c := 0; c < 10; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					seen := map[string]int{}
					last := ""
					first := -1
					for round := 0; round < 8 && ctx.Err() == nil; round++ {
						req, _ := http.NewRequest("GET", base+"/sub/ra/rb", nil)
						if last != "" {
							req.Header.Set("Last-Event-ID", last)
						}
						cctx, ccancel := context.WithTimeout(ctx, time.Duration(50+c*7)*time.Millisecond)
						resp, err := http.DefaultClient.Do(req.WithContext(cctx))
						if err != nil {
							ccancel()
							continue
						}
						r := newReader(resp.Body)
						var got []string
						for {
							ev, err := r.Next()
							if err != nil {
								break
							}
							if ev.Event != "message" {
								continue
							}
							if first < 0 {
								fmt.Sscan(string(ev.Data), &first)
							}
							seen[string(ev.Data)]++
							got = append(got, string(ev.Data)+"@"+ev.ID)
							if seen[string(ev.Data)] > 1 {
								errs <- fmt.Errorf("client %d got %q twice (sent Last-Event-ID %q, this connection so far %v)", c, ev.Data, req.Header.Get("Last-Event-ID"), got)
							}
							last = ev.ID
						}
						resp.Body.Close()
						ccancel()
					}
				}()
			}
			wg.Wait()
			cancel()
			pubWG.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
