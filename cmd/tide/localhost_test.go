package main

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tideops/tide/cloud/local"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/remote"
)

func TestLocalHostCommand(t *testing.T) {
	t.Parallel()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	// The provider prepares the host's directory; its "executable" exits at
	// once, and the host runs here instead, through the command.
	p, err := local.New(local.Options{
		StateDir:       t.TempDir(),
		Network:        "127.77.20.0/24",
		Executable:     []string{"/bin/true"},
		AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in, err := p.Launch(ctx, fleet.LaunchSpec{ClientToken: "cmd", Fleet: "f", Role: "web", Label: "web-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Terminate(context.Background(), in.ID) })
	dir := p.HostDir(in.ID)

	e := &env{
		Stdout: io.Discard, Stderr: io.Discard, Stdin: strings.NewReader(""),
		Getenv: func(string) string { return "" },
		Logger: slog.New(slog.DiscardHandler),
	}
	if code := run(ctx, e, []string{"local-host"}); code == 0 {
		t.Error("local-host without -dir succeeded")
	}

	hostCtx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- run(hostCtx, e, []string{"local-host", "-dir", dir}) }()
	t.Cleanup(func() { stop(); <-done })

	// The host writes the address it serves on to its ready marker.
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		data, _ := os.ReadFile(filepath.Join(dir, "ready"))
		addr = strings.TrimSpace(string(data))
		if addr != "" {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("local-host exited with %d", code)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("local-host did not boot")
		}
	}
	fps, err := p.HostKeyFingerprints(ctx, in.ID)
	if err != nil || len(fps) == 0 {
		t.Fatalf("fingerprints: %v, %v", fps, err)
	}
	d, err := remote.NewDialer(remote.Config{User: "tide", Signers: []ssh.Signer{signer}, KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial(ctx, addr, fps)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, _, err := c.Run(ctx, "echo served", nil); err != nil || string(out) != "served\n" {
		t.Errorf("run on the command's host: %q, %v", out, err)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("local-host exited with %d after its context ended, want 0", code)
	}
	done <- 0 // for the cleanup
}
