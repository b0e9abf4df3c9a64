package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/darktime/darktime/internal/tstest"
)

// TestBrowserPrivateChannel runs the README's browser example in headless
// Chromium: a real EventSource on a private channel with ?token=, tokens
// that expire every couple of seconds, darktime.renew answered by a fresh
// token and the notice's id. Every event arrives once, in order.
func TestBrowserPrivateChannel(t *testing.T) {
	tstest.Long(t, "a headless chromium and ~7 s of publishes")
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no chromium: make deps installs it")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, js, ok := strings.Cut(string(readme), "```js\n")
	js, _, ok2 := strings.Cut(js, "```")
	if !ok || !ok2 || !strings.Contains(js, "console.log(e.data)") {
		t.Fatal("README.md has no ```js block with console.log(e.data)")
	}
	js = strings.Replace(js, "console.log(e.data)", "(window.got = window.got || []).push(e.data)", 1)

	srv, _ := authServer(t, Config{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>private</title><script>\n" + js + "\n</script>"))
	})
	var fetched atomic.Int64
	mux.HandleFunc("GET /my-app/realtime-token", func(w http.ResponseWriter, _ *http.Request) {
		// 3 s: exp is whole seconds, so a token lives 2-3 s. The first
		// one has expired already, as a token does that a loaded machine
		// was too slow to use: the server refuses it (401), EventSource
		// gives up, and the snippet must fetch another.
		exp := time.Now().Add(3 * time.Second)
		if fetched.Add(1) == 1 {
			exp = time.Now().Add(-2 * time.Second)
		}
		_, _ = w.Write([]byte(token(t, "42", exp)))
	})
	mux.Handle("/", srv.Handler())
	site := httptest.NewServer(mux)
	defer site.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(site.URL+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	tstest.WaitFor(t, 20*time.Second, "the browser's stream", func() bool { return srv.Stats().Totals.Subscribers == 1 })

	// Publish across at least two expiries.
	const events = 45
	for i := range events {
		publish(t, site.URL, "user:42", "e"+strconv.Itoa(i))
		time.Sleep(150 * time.Millisecond) // paces the publishes over ~7 s: not a wait for a negative check
	}
	got, err := chromedp.Run(bctx, chromedp.Poll[[]string](`window.got && window.got.length >= `+strconv.Itoa(events)+` ? window.got : null`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		partial, _ := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.got || []`))
		t.Fatalf("the page received %d of %d events: %v (%v)", len(partial), events, partial, err)
	}
	for i, d := range got {
		if d != "e"+strconv.Itoa(i) {
			t.Fatalf("event %d: %q (all: %v)", i, d, got)
		}
	}
	if len(got) != events {
		t.Errorf("%d events, want %d: %v", len(got), events, got)
	}
	st := srv.Stats()
	// The first token was refused (expired on purpose); later ones ended
	// streams (renewals) or, on a loaded machine, expired on their way and
	// were refused too — either way the page went on with a fresh one.
	if st.Auth.Unauthorized < 1 || st.Auth.ExpiredStreams+st.Auth.Unauthorized < 3 || st.Balance != 0 {
		t.Errorf("auth %+v, balance %d: want the expired first token refused and at least 2 more tokens used up", st.Auth, st.Balance)
	}
}
