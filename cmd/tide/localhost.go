package main

import (
	"context"
	"errors"
	"flag"

	"github.com/tideops/tide/cloud/local"
)

func init() {
	register(command{
		Name:    "local-host",
		Hidden:  true,
		Summary: "run one local-cloud host (started by the local cloud, not by hand)",
		Run:     runLocalHost,
	})
}

// runLocalHost is the process of one local-cloud host. The local cloud
// starts it detached, with -dir (and TIDE_LOCAL_HOST_DIR) naming the host's
// directory; it runs until SIGTERM.
func runLocalHost(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	dir := fs.String("dir", e.Getenv(local.HostDirEnv), "the host's directory")
	if err := parseFlags(fs, args, "Run one local-cloud host: serve SSH for the host whose directory is -dir."); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("no host directory: pass -dir")
	}
	return local.RunHost(ctx, *dir, e.Logger.With("component", "local_host"))
}
