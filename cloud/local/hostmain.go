package local

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// RunHostIfAsked makes any binary able to stand in for `tide local-host`:
// when the process was started as a local-cloud host (HostDirEnv set), it
// serves that host until SIGTERM and exits the process; otherwise it
// returns at once. Test binaries call it first thing in TestMain and
// launch hosts with Options.Executable set to themselves, so that tests
// need no tide binary.
func RunHostIfAsked() {
	dir := os.Getenv(HostDirEnv)
	if dir == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := RunHost(ctx, dir, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local host:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
