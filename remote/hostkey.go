package remote

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyMismatchError says a host presented a key other than the one
// known_hosts holds for its address. It is never retried: either the host
// was replaced (call Forget for its address when the cloud says so) or
// someone is in the middle.
type HostKeyMismatchError struct {
	Addr string   // the address dialled, host:port
	Got  string   // SHA256 fingerprint of the key presented
	Want []string // SHA256 fingerprints known_hosts holds for the address
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key mismatch for %s: got %s, known_hosts has %s", e.Addr, e.Got, strings.Join(e.Want, ", "))
}

// UnknownHostKeyError says a host not yet in known_hosts presented a key
// whose fingerprint is not among those the caller expected (the ones the
// cloud printed on the host's console). It is not retried: fetch the
// fingerprints again and dial again.
type UnknownHostKeyError struct {
	Addr     string   // the address dialled, host:port
	Got      string   // SHA256 fingerprint of the key presented
	Expected []string // the fingerprints the caller expected
}

func (e *UnknownHostKeyError) Error() string {
	if len(e.Expected) == 0 {
		return fmt.Sprintf("unknown host key for %s: %s, and no expected fingerprints to check it against", e.Addr, e.Got)
	}
	return fmt.Sprintf("unknown host key for %s: %s is not among the expected %s", e.Addr, e.Got, strings.Join(e.Expected, ", "))
}

// IsHostKeyError reports whether err is or wraps a host key verification
// failure (a mismatch, an unknown key, or a revoked key): errors that
// retrying cannot fix.
func IsHostKeyError(err error) bool {
	var m *HostKeyMismatchError
	var u *UnknownHostKeyError
	var r *knownhosts.RevokedError
	return errors.As(err, &m) || errors.As(err, &u) || errors.As(err, &r)
}

// knownHosts is a known_hosts file shared by the dials of one Dialer and,
// through a lock file, by other processes.
type knownHosts struct {
	path string
	mu   sync.Mutex
}

// lock takes the in-process mutex and an exclusive flock on path+".lock".
func (k *knownHosts) lock() (unlock func(), err error) {
	k.mu.Lock()
	f, err := os.OpenFile(k.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		k.mu.Unlock()
		return nil, fmt.Errorf("opening known_hosts lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		k.mu.Unlock()
		return nil, fmt.Errorf("locking known_hosts: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		k.mu.Unlock()
	}, nil
}

// ensure creates the file (and its directory) if it does not exist.
func (k *knownHosts) ensure() error {
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("creating known_hosts directory: %w", err)
	}
	f, err := os.OpenFile(k.path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("creating known_hosts: %w", err)
	}
	return f.Close()
}

// callback reads the file afresh, so that keys other processes added count.
func (k *knownHosts) callback() (ssh.HostKeyCallback, error) {
	if err := k.ensure(); err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(k.path)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return cb, nil
}

// probeKey is a throwaway key used to ask the known_hosts database which
// keys it holds for an address: it never matches, so the KeyError lists them.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// known returns the keys known_hosts holds for addr (host:port).
func (k *knownHosts) known(addr string) ([]ssh.PublicKey, error) {
	cb, err := k.callback()
	if err != nil {
		return nil, err
	}
	err = cb(addr, strAddr(addr), probeKey())
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil, nil
	}
	keys := make([]ssh.PublicKey, 0, len(ke.Want))
	for _, w := range ke.Want {
		keys = append(keys, w.Key)
	}
	return keys, nil
}

// add appends a line for addr to the file. The caller holds the lock.
func (k *knownHosts) add(addr string, key ssh.PublicKey) error {
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening known_hosts: %w", err)
	}
	if _, err := fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)); err != nil {
		f.Close()
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	return nil
}

// forget rewrites the file without the lines whose only host pattern is
// addr (plain or hashed). Lines naming several hosts lose only addr.
func (k *knownHosts) forget(addr string) error {
	unlock, err := k.lock()
	if err != nil {
		return err
	}
	defer unlock()
	data, err := os.ReadFile(k.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading known_hosts: %w", err)
	}
	host := knownhosts.Normalize(addr)
	var out bytes.Buffer
	changed := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		kept, drop := dropHost(line, host)
		if drop {
			changed = true
			continue
		}
		if kept != line {
			changed = true
		}
		out.WriteString(kept)
		out.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading known_hosts: %w", err)
	}
	if !changed {
		return nil
	}
	tmp := k.path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing known_hosts: %w", err)
	}
	if err := os.Rename(tmp, k.path); err != nil {
		return fmt.Errorf("replacing known_hosts: %w", err)
	}
	return nil
}

// dropHost removes host from a known_hosts line's host list. drop is true
// when nothing would be left.
func dropHost(line, host string) (kept string, drop bool) {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' {
		return line, false
	}
	fields := strings.Fields(trimmed)
	i := 0
	if strings.HasPrefix(fields[0], "@") { // @cert-authority, @revoked
		if len(fields) < 2 {
			return line, false
		}
		i = 1
	}
	var keep []string
	for _, h := range strings.Split(fields[i], ",") {
		if h == host || hashedMatch(h, host) {
			continue
		}
		keep = append(keep, h)
	}
	if len(keep) == len(strings.Split(fields[i], ",")) {
		return line, false
	}
	if len(keep) == 0 {
		return "", true
	}
	fields[i] = strings.Join(keep, ",")
	return strings.Join(fields, " "), false
}

// hashedMatch reports whether a "|1|salt|hash" pattern stands for host.
func hashedMatch(pattern, host string) bool {
	parts := strings.Split(pattern, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return hmac.Equal(mac.Sum(nil), want)
}

// hostKeyAlgorithms lists the algorithms to ask a host for, given the keys
// known_hosts holds for it, so that a host that also has a key of another
// type does not present that one and look like a mismatch. nil means any.
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var algos []string
	for _, k := range keys {
		switch t := k.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	slices.Sort(algos)
	return slices.Compact(algos)
}

// strAddr is host:port as a net.Addr, for the knownhosts callback.
type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }
