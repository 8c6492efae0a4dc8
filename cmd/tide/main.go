package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// main is thin: it turns signals into context cancellation and hands the
// arguments to run, so that every command can be started inside tests.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newEnv(), os.Args[1:])
	stop()
	os.Exit(code)
}
