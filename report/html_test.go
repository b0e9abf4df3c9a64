package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findChromium looks for Debian's chromium (or $DARKTIME_CHROMIUM) and,
// when it is missing, installs it with scripts/ensure-deps.sh. It skips
// the test only when neither works.
func findChromium(t *testing.T) string {
	t.Helper()
	look := func() string {
		for _, name := range []string{os.Getenv("DARKTIME_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
			if name == "" {
				continue
			}
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	if p := look(); p != "" {
		return p
	}
	out, err := exec.Command("../scripts/ensure-deps.sh").CombinedOutput()
	if p := look(); p != "" {
		return p
	}
	t.Skipf("chromium not found and scripts/ensure-deps.sh could not install it (%v: %s); install Debian's chromium to run the browser check", err, bytes.TrimSpace(out))
	return ""
}

// TestHTMLRendersInChromium opens the report page in headless Chromium,
// with the network closed, and checks that every chart drew on a canvas,
// that the page made no request outside itself and logged no error.
func TestHTMLRendersInChromium(t *testing.T) {
	bin := findChromium(t)
	r := faultyReport(t)
	page := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("http://cdn")) || bytes.Contains(buf.Bytes(), []byte(`src="http`)) {
		t.Error("the page refers to an external script")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1280, 2000),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	note := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" || ev.Type == "warning" || ev.Type == "assert" {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				note("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			note("exception: %s %s at %s:%d", d.Text, desc, d.URL, d.LineNumber)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				note("log: %s %s", ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if u := ev.Request.URL; !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") {
				note("request to %s", u)
			}
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.CSS(`body[data-charts="ready"]`))); err != nil {
		t.Fatalf("loading the page in chromium: %v", err)
	}
	type canvas struct {
		Chart         string
		Width, Height int
		Painted       int
	}
	canvases, err := chromedp.Run(bctx, chromedp.Evaluate[[]canvas](`Array.from(document.querySelectorAll(".chart")).map(div => {
		const c = div.querySelector("canvas");
		if (!c) return {Chart: div.id, Width: 0, Height: 0, Painted: 0};
		const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let painted = 0;
		for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
		return {Chart: div.id, Width: c.width, Height: c.height, Painted: painted};
	})`))
	if err != nil {
		t.Fatalf("reading the canvases: %v", err)
	}
	// One more round trip after two frames, so that whatever the page
	// logged while drawing has arrived before the check.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`,
		chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("waiting for the page to settle: %v", err)
	}
	t.Logf("canvases: %+v", canvases)
	want := []string{"c-latency", "c-distribution", "c-throughput", "c-connections", "c-ledger"}
	if len(canvases) != len(want) {
		t.Fatalf("%d charts, want %d: %+v", len(canvases), len(want), canvases)
	}
	for i, c := range canvases {
		if c.Chart != want[i] || c.Width == 0 || c.Height == 0 || c.Painted < 500 {
			t.Errorf("chart %s: canvas %dx%d with %d painted pixels; want a drawn chart", want[i], c.Width, c.Height, c.Painted)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}
