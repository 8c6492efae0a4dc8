package ec2test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"github.com/tideops/tide/fleet"
)

// Backend provides the hosts behind the server's instances. The server
// chooses the instance ids and keeps the EC2 view (states, tags, tokens); the
// backend only starts, locates and stops hosts. Calls may block on I/O; the
// server never holds its lock across them.
type Backend interface {
	// Start boots a host for instance id. spec.ClientToken is never empty:
	// it is the request's client token, or id when the request had none, so
	// a backend may use it as its own idempotency key. Start may return ""
	// when the host has no address yet; the server then asks Host.
	Start(ctx context.Context, id string, spec fleet.LaunchSpec) (address string, err error)
	// Host returns the state of the host of a started instance, and its
	// address once it has one (HostUp). A host that died says HostDown:
	// the server then moves its instance out of pending (to terminated,
	// as EC2 does with an instance that fails to launch) or out of running
	// (to stopped, as when its operating system shuts down). A backend that
	// cannot tell for now says HostBooting.
	Host(ctx context.Context, id string) (address string, state HostState)
	// ConsoleOutput returns the host's console text so far (plain text, not
	// base64), "" when it has printed nothing yet. For a host that died it
	// should say why, if it can: the server keeps the console of a host that
	// died while booting, as EC2 keeps a terminated instance's last output.
	ConsoleOutput(ctx context.Context, id string) (string, error)
	// Stop stops the host and frees its resources. Stopping an unknown or
	// already stopped host is not an error.
	Stop(ctx context.Context, id string) error
}

// Restarter is implemented by a Backend whose hosts can boot again after
// they died, with their disks: StartInstances needs it (without it,
// starting a stopped instance fails with UnsupportedOperation). Restart
// boots the host of stopped instance id again; the server then asks Host
// for its state and address, as after a launch. A
// *fleet.InsufficientCapacityError becomes EC2's InsufficientInstanceCapacity.
type Restarter interface {
	Restart(ctx context.Context, id string) error
}

// HostState is what a Backend says of the host behind an instance.
type HostState int

// The states of a host.
const (
	// HostBooting is a host without an address yet (or one the backend
	// cannot see for now).
	HostBooting HostState = iota
	// HostUp is a host that has booted and has its address.
	HostUp
	// HostDown is a host that died: its process ended, or it is gone. It
	// will not get an address, nor keep serving the one it had.
	HostDown
)

// String returns the state's name: booting, up or down.
func (s HostState) String() string {
	switch s {
	case HostBooting:
		return "booting"
	case HostUp:
		return "up"
	case HostDown:
		return "down"
	}
	return fmt.Sprintf("HostState(%d)", int(s))
}

// MemoryBackend is an in-memory Backend for unit tests. Its hosts get fake
// addresses in 10.0.0.0/16 that nothing listens on, and a console that prints
// a cloud-init style host key fingerprint block with a fingerprint derived
// from the instance id (see FakeFingerprint). Crash makes a host die.
type MemoryBackend struct {
	mu      sync.Mutex
	next    int
	hosts   map[string]string // id -> address
	crashed map[string]string // id -> the last words on its console
}

var (
	_ Backend   = (*MemoryBackend)(nil)
	_ Restarter = (*MemoryBackend)(nil)
)

// NewMemoryBackend returns an empty MemoryBackend.
func NewMemoryBackend() *MemoryBackend {
	return &MemoryBackend{hosts: make(map[string]string), crashed: make(map[string]string)}
}

// Start allocates the next fake address. The address is reported through
// Host, never by Start, so that clients see it appear late.
func (b *MemoryBackend) Start(_ context.Context, id string, _ fleet.LaunchSpec) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.hosts[id]; !ok {
		b.next++
		b.hosts[id] = fmt.Sprintf("10.0.%d.%d", (b.next/250)%256, b.next%250+1)
	}
	return "", nil
}

// Host returns the fake address of a started host; a crashed or unknown
// host is down.
func (b *MemoryBackend) Host(_ context.Context, id string) (string, HostState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.hosts[id]
	if _, crashed := b.crashed[id]; !ok || crashed {
		return "", HostDown
	}
	return a, HostUp
}

// Crash makes a started host die, with lastWords at the end of its console
// (a panic, say). It reports whether the host was started and alive.
func (b *MemoryBackend) Crash(id, lastWords string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, started := b.hosts[id]
	_, crashed := b.crashed[id]
	if !started || crashed {
		return false
	}
	b.crashed[id] = lastWords
	return true
}

// Restart brings a crashed host back, with its address and fingerprint.
func (b *MemoryBackend) Restart(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.hosts[id]; !ok {
		return fmt.Errorf("no host for %s", id)
	}
	delete(b.crashed, id)
	return nil
}

// ConsoleOutput returns a console with a host key fingerprint block, and a
// crashed host's last words after it.
func (b *MemoryBackend) ConsoleOutput(_ context.Context, id string) (string, error) {
	b.mu.Lock()
	_, ok := b.hosts[id]
	lastWords, crashed := b.crashed[id]
	b.mu.Unlock()
	if !ok {
		return "", nil
	}
	out := "[    0.000000] Linux version 6.1.0 (fake)\n" +
		HostKeyConsole("ip-"+id, []string{"256 " + FakeFingerprint(id) + " root@ip-" + id + " (ED25519)"})
	if crashed {
		out += lastWords
	}
	return out, nil
}

// Stop forgets the host.
func (b *MemoryBackend) Stop(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.hosts, id)
	delete(b.crashed, id)
	return nil
}

// FakeFingerprint is the SHA256 fingerprint the MemoryBackend prints for an
// instance: the unpadded base64 of the SHA-256 of the id, as ssh-keygen
// formats fingerprints.
func FakeFingerprint(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// HostKeyConsole formats host key fingerprints the way cloud-init's
// write-ssh-key-fingerprints prints them on an EC2 console, each line prefixed
// with "ec2: ". A line may be a full ssh-keygen line ("256 SHA256:... root@host
// (ED25519)") or a bare fingerprint ("SHA256:..."), which is printed as an
// ED25519 key of host.
func HostKeyConsole(host string, lines []string) string {
	var b strings.Builder
	b.WriteString("ec2: #############################################################\n")
	b.WriteString("ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n")
	for _, l := range lines {
		if !strings.Contains(l, " ") {
			l = "256 " + l + " root@" + host + " (ED25519)"
		}
		b.WriteString("ec2: " + l + "\n")
	}
	b.WriteString("ec2: -----END SSH HOST KEY FINGERPRINTS-----\n")
	b.WriteString("ec2: #############################################################\n")
	return b.String()
}
