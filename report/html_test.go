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

	"github.com/darktime/darktime/internal/tstest"
)

// findChromium looks for Debian's chromium (or $DARKTIME_CHROMIUM) and
// skips the test when there is none: tests install nothing (make deps
// does).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("DARKTIME_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found (nor $DARKTIME_CHROMIUM): install it to run the browser check: apt-get install -y chromium (or make deps)")
	return ""
}

// TestHTMLRendersInChromium opens report pages in headless Chromium, with
// the network closed, and checks that every chart drew on a canvas, that
// a scenario run's phases and faults are in the tables and were drawn on
// the charts over time, and that the pages made no request outside
// themselves and logged no error.
func TestHTMLRendersInChromium(t *testing.T) {
	tstest.Long(t, "a headless chromium per page")
	bin := findChromium(t)
	sc := scenarioReport(t)
	pages := []struct {
		name string
		r    *Report
		// phases and faults drawn on each chart over time ("" none), and
		// the rows of the phases and faults tables.
		phases, faults       string
		phaseRows, faultRows int
	}{
		{name: "plain", r: faultyReport(t)},
		{name: "scenario", r: sc, phases: "3", faults: "5", phaseRows: len(sc.Phases), faultRows: len(sc.Scenario.Faults)},
	}
	dir := t.TempDir()
	for i, p := range pages {
		var buf bytes.Buffer
		if err := p.r.WriteHTML(&buf); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf.Bytes(), []byte("http://cdn")) || bytes.Contains(buf.Bytes(), []byte(`src="http`)) {
			t.Errorf("%s: the page refers to an external script", p.name)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("report-%d.html", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
	type chart struct {
		Chart          string
		Width, Height  int
		Painted        int
		Phases, Faults string // what the annotation hooks drew
	}
	type shown struct {
		Charts               []chart
		Scenario             bool
		PhaseRows, FaultRows int
	}
	for i, p := range pages {
		page := filepath.Join(dir, fmt.Sprintf("report-%d.html", i))
		if err := chromedp.Do(bctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.CSS(`body[data-charts="ready"]`))); err != nil {
			t.Fatalf("%s: loading the page in chromium: %v", p.name, err)
		}
		got, err := chromedp.Run(bctx, chromedp.Evaluate[shown](`({
			Charts: Array.from(document.querySelectorAll(".chart")).map(div => {
				const c = div.querySelector("canvas");
				const a = {Chart: div.id, Phases: div.dataset.phases || "", Faults: div.dataset.faults || ""};
				if (!c) return Object.assign(a, {Width: 0, Height: 0, Painted: 0});
				const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
				let painted = 0;
				for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
				return Object.assign(a, {Width: c.width, Height: c.height, Painted: painted});
			}),
			Scenario: !!document.getElementById("scenario"),
			PhaseRows: document.querySelectorAll("#phases tr.phase").length,
			FaultRows: document.querySelectorAll("#faults tr.fault").length,
		})`))
		if err != nil {
			t.Fatalf("%s: reading the canvases: %v", p.name, err)
		}
		// One more round trip after two frames, so that whatever the page
		// logged while drawing has arrived before the check.
		if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`,
			chromedp.EvalAwaitPromise)); err != nil {
			t.Fatalf("%s: waiting for the page to settle: %v", p.name, err)
		}
		t.Logf("%s: %+v", p.name, got)
		want := []string{"c-latency", "c-distribution", "c-throughput", "c-connections", "c-ledger"}
		if len(got.Charts) != len(want) {
			t.Fatalf("%s: %d charts, want %d: %+v", p.name, len(got.Charts), len(want), got.Charts)
		}
		for i, c := range got.Charts {
			if c.Chart != want[i] || c.Width == 0 || c.Height == 0 || c.Painted < 500 {
				t.Errorf("%s: chart %s: canvas %dx%d with %d painted pixels; want a drawn chart", p.name, want[i], c.Width, c.Height, c.Painted)
			}
			phases, faults := p.phases, p.faults
			if c.Chart == "c-distribution" { // not over time: nothing to mark
				phases, faults = "", ""
			}
			if c.Phases != phases || c.Faults != faults {
				t.Errorf("%s: chart %s marked %q phases and %q faults, want %q and %q", p.name, c.Chart, c.Phases, c.Faults, phases, faults)
			}
		}
		if got.Scenario != (p.r.Scenario != nil) || got.PhaseRows != p.phaseRows || got.FaultRows != p.faultRows {
			t.Errorf("%s: scenario shown %v with %d phase and %d fault rows; want %v, %d, %d", p.name,
				got.Scenario, got.PhaseRows, got.FaultRows, p.r.Scenario != nil, p.phaseRows, p.faultRows)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}
