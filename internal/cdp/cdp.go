package cdp

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Session is a DevTools protocol session on one page target. It is safe
// for concurrent use.
type Session struct {
	ws     *wsConn
	mu     sync.Mutex
	nextID int64
	wait   map[int64]chan reply
	done   chan struct{}
	err    error
	logs   []string // console messages and exceptions of the page
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func newSession(ws *wsConn) *Session {
	c := &Session{ws: ws, wait: map[int64]chan reply{}, done: make(chan struct{})}
	go c.readLoop()
	return c
}

func (c *Session) readLoop() {
	defer close(c.done)
	for {
		msg, err := c.ws.readMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var m struct {
			ID     int64           `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			reply
		}
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		if m.ID == 0 {
			c.event(m.Method, m.Params)
			continue
		}
		c.mu.Lock()
		ch := c.wait[m.ID]
		delete(c.wait, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m.reply
		}
	}
}

// event keeps the page's console output and uncaught exceptions.
func (c *Session) event(method string, params json.RawMessage) {
	var line string
	switch method {
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		_ = json.Unmarshal(params, &p)
		line = "console." + p.Type + ":"
		for _, a := range p.Args {
			if a.Value != nil {
				line += fmt.Sprintf(" %v", a.Value)
			} else {
				line += " " + a.Description
			}
		}
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		_ = json.Unmarshal(params, &p)
		line = "exception: " + p.ExceptionDetails.Text + " " + p.ExceptionDetails.Exception.Description
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level string `json:"level"`
				Text  string `json:"text"`
				URL   string `json:"url"`
			} `json:"entry"`
		}
		_ = json.Unmarshal(params, &p)
		line = "log." + p.Entry.Level + ": " + p.Entry.Text + " " + p.Entry.URL
	default:
		return
	}
	c.mu.Lock()
	if len(c.logs) < 200 {
		c.logs = append(c.logs, line)
	}
	c.mu.Unlock()
}

// PageLogs returns the page's console output and exceptions so far.
func (c *Session) PageLogs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.logs...)
}

// Call sends a DevTools command and decodes its result into out (which
// may be nil).
func (c *Session) Call(ctx context.Context, method string, params any, out any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan reply, 1)
	c.wait[id] = ch
	c.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	if err := c.ws.writeFrame(0x1, msg); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("%s: connection closed: %v", method, c.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into out (which may be nil).
func (c *Session) Eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := c.Call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("javascript: %s %s", r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// Screenshot writes a PNG of the whole page, width CSS pixels wide, to path.
func (c *Session) Screenshot(ctx context.Context, path string, width int) error {
	var m struct {
		CSSContentSize struct {
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := c.Call(ctx, "Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	h := int(m.CSSContentSize.Height) + 1
	if err := c.Call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": h, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := c.Call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

var devtoolsLine = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// Start launches headless Chromium and returns a DevTools session on its
// blank page, ready for Navigate. It skips the test when Chromium is
// missing outside CI and fails it under CI=true. The browser and its
// profile are removed in t.Cleanup, and a failed test logs the browser's
// output and the page's console.
func Start(ctx context.Context, t testing.TB) *Session {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (scripts/install-test-deps installs it)")
		}
		t.Skip("chromium is not installed; the browser test runs in CI")
	}
	profile := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--user-data-dir="+profile, "--remote-debugging-port=0",
		"--remote-debugging-address=127.0.0.1", "--window-size=1400,1000", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	exited := make(chan struct{})
	var logMu sync.Mutex
	var logTail []string
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := devtoolsLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			logMu.Lock()
			if len(logTail) < 200 {
				logTail = append(logTail, line)
			}
			logMu.Unlock()
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// Chromium's helpers (zygote, renderers) share its process group,
		// which Setpgid made its own: end the group by its id.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			logMu.Lock()
			t.Logf("chromium stderr:\n%s", strings.Join(logTail, "\n"))
			logMu.Unlock()
		}
	})
	var browserURL string
	select {
	case browserURL = <-found:
	case <-exited:
		t.Fatal("chromium exited before it listened for DevTools")
	case <-ctx.Done():
		t.Fatal("chromium did not print its DevTools address in time")
	}
	u, err := url.Parse(browserURL)
	if err != nil {
		t.Fatal(err)
	}
	// The page target's socket, from the /json/list endpoint.
	var pageWS string
	for pageWS == "" {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+u.Host+"/json/list", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("listing chromium targets: %v", err)
		}
		var targets []struct {
			Type                 string `json:"type"`
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		}
		err = json.NewDecoder(resp.Body).Decode(&targets)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("decoding chromium targets: %v", err)
		}
		for _, tg := range targets {
			if tg.Type == "page" {
				pageWS = tg.WebSocketDebuggerURL
				break
			}
		}
		if pageWS == "" {
			select {
			case <-ctx.Done():
				t.Fatal("chromium has no page target")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	ws, err := dialWS(ctx, pageWS)
	if err != nil {
		t.Fatalf("connecting to chromium's page: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	c := newSession(ws)
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := c.Call(ctx, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page console:\n%s", strings.Join(c.PageLogs(), "\n"))
		}
	})
	return c
}

// DefaultPoll is how long Poll waits for an expression to hold.
const DefaultPoll = 20 * time.Second

// Poll evaluates expr until it returns true, for at most DefaultPoll or
// until ctx ends; its error carries the last error or value seen.
func (c *Session) Poll(ctx context.Context, expr string) error {
	return c.PollWithin(ctx, DefaultPoll, expr)
}

// PollWithin is Poll with its own time limit.
func (c *Session) PollWithin(ctx context.Context, within time.Duration, expr string) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last any
	for {
		var v any
		err := c.Eval(ctx, expr, &v)
		if err == nil && v == true {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = v
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: last result %v: %w", expr, last, ctx.Err())
		case <-time.After(50 * time.Millisecond): // a polling interval, not a wait for an outcome
		}
	}
}

// ScreenshotOf writes a PNG of the element matching selector to path.
func (c *Session) ScreenshotOf(ctx context.Context, path, selector string) error {
	var r struct{ X, Y, W, H float64 }
	expr := fmt.Sprintf(`(() => { const b = document.querySelector(%q).getBoundingClientRect();
		return {X: b.left + scrollX, Y: b.top + scrollY, W: b.width, H: b.height}; })()`, selector)
	if err := c.Eval(ctx, expr, &r); err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	clip := map[string]any{"x": r.X, "y": r.Y, "width": r.W, "height": r.H, "scale": 1}
	if err := c.Call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "clip": clip, "captureBeyondViewport": true}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// Navigate loads url in the page. It returns once the navigation is under
// way; Poll for what the page should show.
func (c *Session) Navigate(ctx context.Context, url string) error {
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.Call(ctx, "Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("navigating to %s: %s", url, r.ErrorText)
	}
	return nil
}
