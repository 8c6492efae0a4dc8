package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// This file drives a real headless Chromium over the DevTools protocol with
// a minimal WebSocket client (RFC 6455: handshake, masked client frames,
// text, continuation, ping/pong and close), so the browser test needs no
// module beyond the standard library.

// wsConn is a client WebSocket connection.
type wsConn struct {
	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
}

func dialWS(ctx context.Context, rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("only ws:// is supported, got %s", u.Scheme)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	keyBytes := make([]byte, 16)
	_, _ = rand.Read(keyBytes)
	key := base64.StdEncoding.EncodeToString(keyBytes)
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake refused: %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	return &wsConn{conn: conn, br: br}, nil
}

func (c *wsConn) writeFrame(opcode byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	hdr := []byte{0x80 | opcode}
	n := len(payload)
	switch {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	buf := make([]byte, len(hdr)+n)
	copy(buf, hdr)
	for i, b := range payload {
		buf[len(hdr)+i] = b ^ mask[i%4]
	}
	_, err := c.conn.Write(buf)
	return err
}

// readMessage returns the next text or binary message, answering pings.
func (c *wsConn) readMessage() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin, opcode := h[0]&0x80 != 0, h[0]&0x0f
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(c.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("websocket frame of %d bytes is too large", n)
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(c.br, mask); err != nil {
				return nil, err
			}
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
		}
		switch opcode {
		case 0x8:
			_ = c.writeFrame(0x8, nil)
			return nil, io.EOF
		case 0x9:
			if err := c.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA:
			continue
		}
		msg = append(msg, payload...)
		if fin {
			return msg, nil
		}
	}
}

func (c *wsConn) Close() error { return c.conn.Close() }

// cdp is a DevTools protocol session on one page target.
type cdp struct {
	ws     *wsConn
	mu     sync.Mutex
	nextID int64
	wait   map[int64]chan cdpReply
	done   chan struct{}
	err    error
	logs   []string // console messages and exceptions of the page
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func newCDP(ws *wsConn) *cdp {
	c := &cdp{ws: ws, wait: map[int64]chan cdpReply{}, done: make(chan struct{})}
	go c.readLoop()
	return c
}

func (c *cdp) readLoop() {
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
			cdpReply
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
			ch <- m.cdpReply
		}
	}
}

// event keeps the page's console output and uncaught exceptions.
func (c *cdp) event(method string, params json.RawMessage) {
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

// pageLogs returns the page's console output and exceptions so far.
func (c *cdp) pageLogs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.logs...)
}

// call sends a command and decodes its result into out (which may be nil).
func (c *cdp) call(ctx context.Context, method string, params any, out any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpReply, 1)
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

// eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into out.
func (c *cdp) eval(ctx context.Context, expr string, out any) error {
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
	err := c.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
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

// screenshot writes a PNG of the whole page to path.
func (c *cdp) screenshot(ctx context.Context, path string, width int) error {
	var m struct {
		CSSContentSize struct {
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := c.call(ctx, "Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	h := int(m.CSSContentSize.Height) + 1
	if err := c.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": h, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := c.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

var devtoolsLine = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startChromium launches headless Chromium and returns a DevTools session
// on its blank page. It skips the test when Chromium is missing outside
// CI and fails under CI=true. The browser and its profile are removed in
// t.Cleanup.
func startChromium(t *testing.T, ctx context.Context) *cdp {
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
	c := newCDP(ws)
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		if err := c.call(ctx, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page console:\n%s", strings.Join(c.pageLogs(), "\n"))
		}
	})
	return c
}

// poll evaluates expr until it returns true or ctx ends; it returns the
// last error or value seen for the failure message.
func (c *cdp) poll(ctx context.Context, expr string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last any
	for {
		var v any
		err := c.eval(ctx, expr, &v)
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

// screenshotOf writes a PNG of the element matching selector to path.
func (c *cdp) screenshotOf(ctx context.Context, path, selector string) error {
	var r struct{ X, Y, W, H float64 }
	expr := fmt.Sprintf(`(() => { const b = document.querySelector(%q).getBoundingClientRect();
		return {X: b.left + scrollX, Y: b.top + scrollY, W: b.width, H: b.height}; })()`, selector)
	if err := c.eval(ctx, expr, &r); err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	clip := map[string]any{"x": r.X, "y": r.Y, "width": r.W, "height": r.H, "scale": 1}
	if err := c.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "clip": clip, "captureBeyondViewport": true}, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
