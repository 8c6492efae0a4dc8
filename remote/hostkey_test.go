package remote

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func testKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestForget(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey(t), testKey(t)
	const addr = "127.0.10.7:2222"
	host := knownhosts.Normalize(addr)
	for _, tt := range []struct {
		name       string
		lines      []string
		wantKnown  bool     // addr still known afterwards
		wantRemain []string // substrings that must survive
	}{
		{"plain line", []string{knownhosts.Line([]string{host}, k1)}, false, nil},
		{"hashed line", []string{knownhosts.Line([]string{knownhosts.HashHostname(host)}, k1)}, false, nil},
		{"other hosts kept", []string{
			knownhosts.Line([]string{host}, k1),
			knownhosts.Line([]string{"[127.0.10.8]:2222"}, k2),
			"# a comment",
		}, false, []string{"[127.0.10.8]:2222", "# a comment"}},
		{"shared line loses only addr", []string{knownhosts.Line([]string{host, "web-3.example"}, k1)}, false, []string{"web-3.example"}},
		{"port 22 entry is another host", []string{knownhosts.Line([]string{"127.0.10.7"}, k1)}, false, []string{"127.0.10.7 "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kh := &knownHosts{path: filepath.Join(t.TempDir(), "known_hosts")}
			if err := os.WriteFile(kh.path, []byte(strings.Join(tt.lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := kh.forget(addr); err != nil {
				t.Fatal(err)
			}
			keys, err := kh.known(addr)
			if err != nil {
				t.Fatal(err)
			}
			if (len(keys) > 0) != tt.wantKnown {
				t.Errorf("after forget, known keys %d", len(keys))
			}
			data, _ := os.ReadFile(kh.path)
			for _, s := range tt.wantRemain {
				if !strings.Contains(string(data), s) {
					t.Errorf("%q lost from %q", s, data)
				}
			}
		})
	}
}

func TestHostKeyAlgorithms(t *testing.T) {
	t.Parallel()
	if got := hostKeyAlgorithms(nil); got != nil {
		t.Errorf("no known keys: %v, want nil (any)", got)
	}
	got := hostKeyAlgorithms([]ssh.PublicKey{testKey(t)})
	if len(got) != 1 || got[0] != ssh.KeyAlgoED25519 {
		t.Errorf("ed25519 known: %v", got)
	}
}

func TestNormalizeFingerprints(t *testing.T) {
	t.Parallel()
	got := normalizeFingerprints([]string{" SHA256:abc= ", "def", ""})
	if strings.Join(got, ",") != "SHA256:abc,SHA256:def" {
		t.Errorf("got %v", got)
	}
}
