package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/clock"
	"github.com/tideops/tide/internal/cdp"
)

// TestBrowserOverrideChangesDecision loads the web interface in a real
// headless Chromium, sets an override through the form and waits until the
// page shows the decision it caused; then clears it through the page.
// Set TIDE_SCREENSHOTS=DIR to keep PNGs of the page.
func TestBrowserOverrideChangesDecision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const token = "browser-test-token"
	w := newWorld(clock.Real{})
	// The week crosses the spring clock change in Paris: 02:00 on 30 March
	// does not exist, and the page must show both.
	w.weekStart = time.Date(2025, 3, 27, 9, 0, 0, 0, time.UTC)
	srv, err := New(w.options(token))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	t.Cleanup(func() {
		stopServing()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()

	c := cdp.Start(ctx, t)
	shots := os.Getenv("TIDE_SCREENSHOTS")
	shot := func(name string) {
		if shots == "" {
			return
		}
		if err := c.Screenshot(ctx, filepath.Join(shots, name), 1400); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Without a token the page asks for one.
	must(c.Navigate(ctx, base+"/"))
	must(c.Poll(ctx, `!document.getElementById('login').hidden && document.getElementById('app').hidden`))
	shot("login.png")

	// The link tide serve prints signs in and leaves no token in the address.
	must(c.Navigate(ctx, base+"/#token="+token))
	must(c.Poll(ctx, `document.querySelectorAll('#fleet tr[data-label]').length === 8`))
	must(c.Poll(ctx, `location.hash === '' && sessionStorage.getItem('tide.token') !== null`))
	must(c.Poll(ctx, `document.querySelectorAll('#roles [data-role]').length === 3 && document.querySelector('#override-form [name=role]').options.length === 3`))
	must(c.Poll(ctx, `document.querySelector('[data-role="web"] .chart svg polyline') !== null && document.querySelectorAll('#week table.heat').length === 3`))
	must(c.Poll(ctx, `document.querySelectorAll('#week td.skipped').length === 3 && document.querySelectorAll('#week td.dst').length === 3 && document.querySelector('#week .dst-note').textContent.includes('CET -> CEST')`))
	var labels []string
	must(c.Eval(ctx, `[...document.querySelectorAll('#fleet tr[data-label]')].map(r => r.dataset.label)`, &labels))
	if fmt.Sprint(labels) != "[db-1 db-2 web-1 web-2 web-3 web-4 worker-1 worker-2]" {
		t.Errorf("fleet rows = %v", labels)
	}
	var before string
	must(c.Eval(ctx, `document.querySelector('[data-role="web"] .desired-count').textContent`, &before))
	if before == "9" {
		t.Fatalf("web already wants 9 hosts before the override; pick another count")
	}
	shot("dashboard.png")
	if shots != "" {
		for name, sel := range map[string]string{"web-role.png": `[data-role="web"]`, "worker-role.png": `[data-role="worker"]`, "fleet.png": ".columns", "week.png": "#week", "decisions.png": "#decisions"} {
			if err := c.ScreenshotOf(ctx, filepath.Join(shots, name), sel); err != nil {
				t.Errorf("screenshot %s: %v", name, err)
			}
		}
	}

	// An override the server refuses shows its reason in the form.
	fill := func(count, reason string, ignore bool) {
		t.Helper()
		must(c.Eval(ctx, fmt.Sprintf(`(() => {
			const f = document.getElementById('override-form');
			f.role.value = 'web'; f.count.value = %q; f.kind.value = 'pin'; f.for.value = '30m';
			f.reason.value = %q; f.ignore_limits.checked = %v;
			f.requestSubmit(); return true; })()`, count, reason, ignore), nil))
	}
	fill("50", "too many", false)
	must(c.Poll(ctx, `document.getElementById('override-msg').className.includes('err') && document.getElementById('override-msg').textContent.includes('outside web')`))

	// A valid override changes the decision the page shows.
	fill("9", "browser test", false)
	must(c.Poll(ctx, `document.querySelector('[data-role="web"] .desired-count').textContent === '9'`))
	must(c.Poll(ctx, `document.querySelector('[data-role="web"] .chip.winner').textContent === 'by override' && document.querySelector('#overrides [data-override="web"]') !== null`))
	if w.kicks.Load() != 1 {
		t.Errorf("OnOverride called %d times, want 1", w.kicks.Load())
	}
	shot("override.png")
	if shots != "" {
		must(c.Eval(ctx, `document.querySelector('#decisions details').open = true`, nil))
		for name, sel := range map[string]string{"web-override.png": `[data-role="web"]`, "override-form.png": "#override-panel", "explain.png": "#decisions details"} {
			if err := c.ScreenshotOf(ctx, filepath.Join(shots, name), sel); err != nil {
				t.Errorf("screenshot %s: %v", name, err)
			}
		}
	}

	// Clearing it through the page gives the role back to its inputs.
	must(c.Eval(ctx, `document.querySelector('#overrides [data-override="web"] button').click(), true`, nil))
	must(c.Poll(ctx, `document.querySelector('#overrides [data-override="web"]') === null && document.querySelector('[data-role="web"] .chip.winner').textContent !== 'by override'`))
	if w.kicks.Load() != 2 {
		t.Errorf("OnOverride called %d times after clearing, want 2", w.kicks.Load())
	}
}

// TestBrowserRollback shows an application's release history in the
// Deploy panel of a real headless Chromium and rolls it back through the
// page: one step with the Roll back button, then to a release only a host
// still holds with its row's button, each after a confirm() naming from
// and to (the test answers it).
func TestBrowserRollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const token = "browser-test-token"
	w := newWorld(clock.Real{})
	srv, err := New(w.options(token))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	t.Cleanup(func() {
		stopServing()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := cdp.Start(ctx, t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	str := func(expr string) string {
		t.Helper()
		var s string
		must(c.Eval(ctx, expr, &s))
		return s
	}
	rollbacks := func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Sprint(w.rollbacks)
	}

	must(c.Navigate(ctx, "http://"+ln.Addr().String()+"/#token="+token))
	// postgres, the first app, has one release: nothing to roll back to.
	must(c.Poll(ctx, `document.querySelector('#deploy-form [name=app]').value === 'postgres' && document.querySelectorAll('#release-list tr[data-revision]').length === 1`))
	must(c.Poll(ctx, `!document.getElementById('releases').hidden && document.getElementById('rollback').disabled`))
	if title := str(`document.getElementById('rollback').title`); !strings.Contains(title, "no earlier release of postgres recorded: 16.2 is the oldest") {
		t.Errorf("disabled Roll back's tooltip = %q", title)
	}

	// dms-web's history: current marked, the revision rolled back from
	// greyed, a release only web-1 holds last.
	must(c.Eval(ctx, `(() => { const s = document.querySelector('#deploy-form [name=app]'); s.value = 'dms-web'; s.dispatchEvent(new Event('change')); return true; })()`, nil))
	must(c.Poll(ctx, `document.querySelectorAll('#release-list tr[data-revision]').length === 5 && !document.getElementById('rollback').disabled`))
	rows := str(`[...document.querySelectorAll('#release-list tr[data-revision]')].map(r => r.dataset.revision + ':' + r.className + ':' + r.cells[2].textContent + ':' + (r.querySelector('button') ? r.querySelector('button').textContent : '-')).join(' | ')`)
	if want := "v1.4.0::4 of 4 hosts:Roll back | v1.4.1::4 of 4 hosts:Roll back | v1.4.2:current:4 of 4 hosts:- | v1.5.0:gone:–:Roll forward | v1.3.7:hosts-only:web-1:Roll back"; rows != want {
		t.Errorf("history rows:\n got %s\nwant %s", rows, want)
	}
	if got := str(`document.getElementById('releases-summary').textContent`); got != "dms-web: current v1.4.2 · a rollback goes to v1.4.1" {
		t.Errorf("summary = %q", got)
	}
	if got := str(`document.querySelector('#release-list li[data-host="web-1"]').textContent`); got != "web-1 · current v1.4.2 · on disk v1.3.7 v1.4.0 v1.4.1 v1.4.2" {
		t.Errorf("web-1's releases = %q", got)
	}
	if shots := os.Getenv("TIDE_SCREENSHOTS"); shots != "" {
		must(c.ScreenshotOf(ctx, filepath.Join(shots, "releases.png"), "#deploy-panel"))
	}

	// Declining the confirm sends nothing.
	must(c.Eval(ctx, `window.confirm = (m) => { window.asked = m; return false; }; document.getElementById('rollback').click(), true`, nil))
	if asked := str(`window.asked || ''`); !strings.HasPrefix(asked, "Roll dms-web back from v1.4.2 to v1.4.1?") {
		t.Errorf("confirm asked %q", asked)
	}

	// Roll back: one step, to v1.4.1.
	must(c.Eval(ctx, `window.confirm = (m) => { window.asked = m; return true; }; document.getElementById('rollback').click(), true`, nil))
	must(c.Poll(ctx, `document.getElementById('action').textContent.startsWith('rollback dms-web to v1.4.1')`))
	must(c.Poll(ctx, `document.getElementById('release-current').textContent === 'v1.4.1' && document.querySelector('#release-list tr[data-revision="v1.4.2"]').className === 'gone'`))
	must(c.Poll(ctx, `document.getElementById('action').textContent.startsWith('rollback dms-web to v1.4.1: done at')`))
	if got := rollbacks(); got != "[[dms-web v1.4.1]]" {
		t.Fatalf("rollbacks after Roll back = %s", got)
	}

	// A row's button goes to its revision: v1.3.7, on web-1 only.
	must(c.Eval(ctx, `document.querySelector('#release-list button[data-to="v1.3.7"]').click(), true`, nil))
	if asked := str(`window.asked`); !strings.HasPrefix(asked, "Roll dms-web back from v1.4.1 to v1.3.7?") {
		t.Errorf("confirm asked %q", asked)
	}
	must(c.Poll(ctx, `document.getElementById('action').textContent.startsWith('rollback dms-web to v1.3.7: done at')`))
	must(c.Poll(ctx, `document.getElementById('release-current').textContent === 'v1.3.7' && document.querySelector('#fleet tr[data-label="web-1"]').textContent.includes('v1.3.7')`))
	if got := rollbacks(); got != "[[dms-web v1.4.1] [dms-web v1.3.7]]" {
		t.Errorf("rollbacks = %s", got)
	}
}

// TestBrowserReplace replaces hosts through the Fleet table of a real
// headless Chromium: a host's Replace button asks a confirm() naming it
// (saying a stateful host's data is backed up first) and posts its label;
// its Dead… button asks again, prompts for the reason and posts a replace
// that discards data; declining sends nothing. The status line names the
// action, and the list under it what was done to each host (with the
// removal's reason) and, for a discard, the host's backup error and the
// backup its replacement restored. A fixed role's hosts have no buttons.
func TestBrowserReplace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const token = "browser-test-token"
	w := newWorld(clock.Real{})
	w.roles[2].Fixed = true // worker: its 2 hosts are the static cloud's
	srv, err := New(w.options(token))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	t.Cleanup(func() {
		stopServing()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := cdp.Start(ctx, t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	str := func(expr string) string {
		t.Helper()
		var s string
		must(c.Eval(ctx, expr, &s))
		return s
	}
	replaces := func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Sprintf("%+v", w.replaces)
	}
	// answer makes confirm() and prompt() answer as given and keep what
	// they asked in window.asked.
	answer := func(confirm bool, prompt string) {
		t.Helper()
		p := "null"
		if prompt != "" {
			p = fmt.Sprintf("%q", prompt)
		}
		must(c.Eval(ctx, fmt.Sprintf(`window.asked = [];
			window.confirm = (m) => { window.asked.push('confirm: ' + m); return %v; };
			window.prompt = (m) => { window.asked.push('prompt: ' + m); return %s; }; true`, confirm, p), nil))
	}
	asked := func() string { return str(`window.asked.join('\n---\n')`) }
	click := func(sel string) {
		t.Helper()
		must(c.Poll(ctx, fmt.Sprintf(`(() => { const b = document.querySelector(%q); return b !== null && !b.disabled; })()`, sel)))
		must(c.Eval(ctx, fmt.Sprintf(`document.querySelector(%q).click(), true`, sel), nil))
	}

	must(c.Navigate(ctx, "http://"+ln.Addr().String()+"/#token="+token))
	must(c.Poll(ctx, `document.querySelectorAll('#fleet tr[data-label] button[data-replace]').length === 6 && document.querySelectorAll('#roles [data-role]').length === 3`))
	if n := str(`String(document.querySelectorAll('#fleet tr[data-label^="worker-"] button').length) + ' ' + document.querySelector('#fleet tr[data-label="worker-1"] td.act').textContent`); n != "0 fixed" {
		t.Errorf("the fixed worker role's hosts: %q, want no buttons and \"fixed\"", n)
	}
	if shots := os.Getenv("TIDE_SCREENSHOTS"); shots != "" {
		must(c.ScreenshotOf(ctx, filepath.Join(shots, "fleet-replace.png"), ".fleet-panel"))
	}

	// Declining the confirm sends nothing; the question names the host
	// and, for db (stateful), says its data is backed up first.
	answer(false, "")
	click(`#fleet button[data-replace="db-1"]`)
	if a := asked(); !strings.HasPrefix(a, "confirm: Replace db-1 (i-0") || !strings.Contains(a, "Its data is backed up first and the backup verified") {
		t.Errorf("db-1's confirm asked %q", a)
	}
	answer(false, "")
	click(`#fleet button[data-replace="web-2"]`)
	if a := asked(); !strings.HasPrefix(a, "confirm: Replace web-2 (") || strings.Contains(a, "backed up") {
		t.Errorf("web-2's confirm asked %q", a)
	}
	if got := replaces(); got != "[]" {
		t.Fatalf("a declined confirm replaced %s", got)
	}

	// Replace web-2.
	answer(true, "")
	click(`#fleet button[data-replace="web-2"]`)
	must(c.Poll(ctx, `document.getElementById('action').textContent.startsWith('replace web-2: done at')`))
	if got := replaces(); got != "[{Labels:[web-2] DiscardData:false Reason:}]" {
		t.Fatalf("replaces after Replace web-2 = %s", got)
	}
	must(c.Poll(ctx, `!document.getElementById('action-result').hidden`))
	if got := str(`[...document.querySelectorAll('#action-result li')].map((li) => li.textContent).join(' | ')`); !regexp.MustCompile(`^web-2 \(i-0\w+\) removedreplaced \| web-2 \(i-0\w+-new\) launched$`).MatchString(got) {
		t.Errorf("result after Replace web-2 = %q", got)
	}

	// A dead db-1: the confirm says what is lost, the prompt asks why;
	// cancelling the prompt sends nothing.
	answer(true, "")
	click(`#fleet button[data-replace-dead="db-1"]`)
	if a := asked(); !strings.Contains(a, "whatever it wrote after the newest verified backup is LOST") || !strings.Contains(a, "prompt: Why may db-1's data be discarded?") {
		t.Errorf("dead db-1 asked %q", a)
	}
	answer(true, "disk lost")
	click(`#fleet button[data-replace-dead="db-1"]`)
	must(c.Poll(ctx, `document.getElementById('action').textContent.startsWith('replace db-1 (discarding data: disk lost): done at')`))
	if got := replaces(); got != "[{Labels:[web-2] DiscardData:false Reason:} {Labels:[db-1] DiscardData:true Reason:disk lost}]" {
		t.Fatalf("replaces after Dead… db-1 = %s", got)
	}
	if got := str(`document.getElementById('fleet-msg').textContent`); got != "Replacing db-1 (discarding data)…" {
		t.Errorf("fleet message = %q", got)
	}
	must(c.Poll(ctx, `document.querySelector('#action-result li[data-discarded="db-1"]') !== null`))
	st := srv.actionStatus()
	if st == nil || st.Result == nil || len(st.Result.Discarded) != 1 || len(st.Result.Discarded[0].Restored) != 1 {
		t.Fatalf("status after Dead… db-1: %+v", st)
	}
	key := st.Result.Discarded[0].Restored[0].Key
	got := str(`document.querySelector('#action-result li[data-discarded="db-1"]').textContent`)
	for _, want := range []string{"db-1 (i-0", "data discarded.", "Terminated without a verified backup: draining db-1: dial tcp", "connect: no route to host",
		"postgres: the new db-1 restored " + key + ", taken ", "what the old host wrote after it is lost"} {
		if !strings.Contains(got, want) {
			t.Errorf("discarded db-1 shows %q, without %q", got, want)
		}
	}
	if got := str(`document.querySelector('#action-result li[data-host="db-1"]').textContent`); !strings.Contains(got, "removedreplaced-data-discarded") {
		t.Errorf("db-1's outcome = %q", got)
	}
	if shots := os.Getenv("TIDE_SCREENSHOTS"); shots != "" {
		must(c.ScreenshotOf(ctx, filepath.Join(shots, "replace-discarded.png"), "#deploy-panel"))
	}
}
