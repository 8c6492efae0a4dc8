package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/internal/cdp"
)

// TestServeBrowserOverride drives the real service from a real headless
// Chromium: tide serve on the local cloud, the page signed in through the
// link tide prints, an override set through the page's form; the page
// shows the decision change and the fleet grows to match, on the cloud and
// on the page. Set TIDE_SCREENSHOTS=DIR to keep PNGs of the page.
func TestServeBrowserOverride(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := startServe(t, "browsed", "127.0.84.0/24")
	c := cdp.Start(ctx, t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	shots := os.Getenv("TIDE_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		if err := c.Screenshot(ctx, filepath.Join(shots, name), 1400); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}

	// Some load, so that web decides on it and its chart has a line.
	for _, v := range []float64{12, 18, 15} {
		s.push(t, v)
	}
	eventually(t, 30*time.Second, "db-1 and web-1 to run", func() bool { return s.liveLabels(t) == "db-1,web-1" })

	must(c.Navigate(ctx, s.addr+"/#token="+testAPIToken))
	// The page refreshes every 5 seconds: allow a few rounds.
	const within = 30 * time.Second
	readyRow := func(label string) string {
		return fmt.Sprintf(`(document.querySelector('#fleet tr[data-label=%q] .state.ready') !== null)`, label)
	}
	must(c.PollWithin(ctx, within, readyRow("db-1")+" && "+readyRow("web-1")+
		` && document.querySelectorAll('#fleet tr[data-label]').length === 2`))
	must(c.Poll(ctx, `document.querySelectorAll('#roles [data-role]').length === 2 && document.querySelector('#override-form [name=role]').options.length === 2`))
	must(c.Poll(ctx, `location.hash === ''`)) // the token left the address bar
	var before string
	must(c.Eval(ctx, `document.querySelector('[data-role="web"] .desired-count').textContent`, &before))
	if before != "1" {
		t.Fatalf("web's desired count on the page is %q before the override, want 1", before)
	}
	shot("serve-before.png")

	// Pin web to 3 through the form.
	must(c.Eval(ctx, `(() => {
		const f = document.getElementById('override-form');
		f.role.value = 'web'; f.count.value = '3'; f.kind.value = 'pin'; f.for.value = '30m';
		f.reason.value = 'browser test'; f.ignore_limits.checked = false;
		f.requestSubmit(); return true; })()`, nil))
	must(c.Poll(ctx, `document.getElementById('override-msg').className.includes('ok') && document.querySelector('#overrides [data-override="web"]') !== null`))
	// The page shows the new decision, and why.
	must(c.PollWithin(ctx, within, `document.querySelector('[data-role="web"] .desired-count').textContent === '3' &&
		document.querySelector('[data-role="web"] .chip.winner').textContent === 'by override'`))
	must(c.PollWithin(ctx, within, `[...document.querySelectorAll('#decisions summary')].some(s =>
		s.querySelector('.r').textContent === 'web' && s.querySelector('.c').textContent === '1 → 3' && s.querySelector('.chip.winner').textContent === 'override')`))
	// The fleet follows: on the cloud, then on the page.
	eventually(t, within, "web-2 and web-3 to run on the cloud", func() bool {
		return s.liveLabels(t) == "db-1,web-1,web-2,web-3"
	})
	must(c.PollWithin(ctx, within, readyRow("web-2")+" && "+readyRow("web-3")+
		` && document.querySelectorAll('#fleet tr[data-label]').length === 4`))
	if d := s.decision(t, "web"); d.Desired != 3 || d.Winner != "override" {
		t.Fatalf("the API's decision for web: %s", d)
	}
	// Exceptions and errors only: Chromium's verbose hints are no failure.
	for _, l := range c.PageLogs() {
		if strings.HasPrefix(l, "exception:") || strings.HasPrefix(l, "console.error:") || strings.HasPrefix(l, "log.error:") {
			t.Errorf("the page logged: %s", l)
		}
	}
	shot("serve-after.png")
	if shots != "" {
		must(c.Eval(ctx, `document.querySelector('#decisions details').open = true`, nil))
		for name, sel := range map[string]string{"serve-web.png": `[data-role="web"]`, "serve-fleet.png": ".columns",
			"serve-week.png": "#week", "serve-decisions.png": "#decisions"} {
			if err := c.ScreenshotOf(ctx, filepath.Join(shots, name), sel); err != nil {
				t.Errorf("screenshot %s: %v", name, err)
			}
		}
	}
}
