package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tideops/tide/remote"
)

// chunkWriter records what it is given and the largest single write.
type chunkWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	writes  int
	largest int
	// failAfter makes writes fail once this many bytes were taken (0: never).
	failAfter int
	// returned is set once Stream returned: a write after it is a bug.
	returned atomic.Bool
	late     atomic.Int32
}

var errDiskFull = errors.New("disk full (test)")

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.returned.Load() {
		w.late.Add(1)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAfter > 0 && w.b.Len()+len(p) > w.failAfter {
		return 0, errDiskFull
	}
	w.writes++
	w.largest = max(w.largest, len(p))
	return w.b.Write(p)
}

func TestStream(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			c := connect(t, b.start(t))
			ctx := context.Background()

			t.Run("output arrives in chunks", func(t *testing.T) {
				var w chunkWriter
				// About 1.3 MB of output, all of it checked.
				if err := c.Stream(ctx, "seq 1 200000", nil, &w); err != nil {
					t.Fatal(err)
				}
				var want strings.Builder
				for i := 1; i <= 200000; i++ {
					fmt.Fprintf(&want, "%d\n", i)
				}
				if w.b.String() != want.String() {
					t.Fatalf("streamed %d bytes, want %d bytes of seq's output", w.b.Len(), want.Len())
				}
				if w.writes < 10 || w.largest > 256<<10 {
					t.Errorf("%d writes, the largest %d bytes: want the output in many small chunks", w.writes, w.largest)
				}
			})

			t.Run("stdin", func(t *testing.T) {
				var w chunkWriter
				if err := c.Stream(ctx, "tr a-z A-Z", strings.NewReader("label web-3\n"), &w); err != nil {
					t.Fatal(err)
				}
				if w.b.String() != "LABEL WEB-3\n" {
					t.Errorf("stdout %q", w.b.String())
				}
			})

			t.Run("exit status and the tail of stderr", func(t *testing.T) {
				var w chunkWriter
				// 200 KiB of noise on stderr, then the message that matters.
				cmd := "head -c 204800 /dev/zero | tr '\\0' x >&2; echo; echo 'the real error' >&2; echo partial; exit 3"
				err := c.Stream(ctx, cmd, nil, &w)
				var ee *remote.ExitError
				if !errors.As(err, &ee) || ee.Code != 3 {
					t.Fatalf("err %v, want an ExitError with code 3", err)
				}
				if len(ee.Stderr) != remote.StderrLimit || !strings.HasSuffix(string(ee.Stderr), "the real error\n") {
					t.Errorf("ExitError.Stderr holds %d bytes ending %q, want the last %d ending with the real error",
						len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-20):], remote.StderrLimit)
				}
				if w.b.String() != "\npartial\n" {
					t.Errorf("stdout %q", w.b.String())
				}
			})

			t.Run("a failing writer stops the command", func(t *testing.T) {
				w := chunkWriter{failAfter: 1 << 20}
				done := make(chan error, 1)
				go func() { done <- c.Stream(ctx, "yes tide", nil, &w) }()
				select {
				case err := <-done:
					w.returned.Store(true)
					if !errors.Is(err, errDiskFull) {
						t.Errorf("err %v, want the writer's error", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("Stream did not return after its writer failed")
				}
				checkNoLateWrites(t, c, &w)
			})

			t.Run("cancel", func(t *testing.T) {
				var w chunkWriter
				cctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- c.Stream(cctx, "yes tide", nil, &w) }()
				deadline := time.Now().Add(10 * time.Second)
				for {
					w.mu.Lock()
					n := w.b.Len()
					w.mu.Unlock()
					if n > 0 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("no output streamed")
					}
					<-time.After(5 * time.Millisecond)
				}
				cancel()
				select {
				case err := <-done:
					w.returned.Store(true)
					if !errors.Is(err, context.Canceled) {
						t.Errorf("err %v, want context.Canceled", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("Stream did not return after cancel")
				}
				checkNoLateWrites(t, c, &w)
			})

			// The connection stays usable.
			if out, _, err := c.Run(ctx, "echo still", nil); err != nil || string(out) != "still\n" {
				t.Errorf("after the streams: %q, %v", out, err)
			}
		})
	}
}

// checkNoLateWrites gives the connection a round trip to deliver anything
// still in flight, then checks none of it reached w after Stream returned.
func checkNoLateWrites(t *testing.T, c *remote.Client, w *chunkWriter) {
	t.Helper()
	if _, _, err := c.Run(context.Background(), "true", nil); err != nil {
		t.Fatal(err)
	}
	if n := w.late.Load(); n > 0 {
		t.Errorf("%d writes after Stream returned", n)
	}
}
