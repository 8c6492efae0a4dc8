package local

import (
	"slices"
	"testing"
)

func TestParseFingerprints(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		console string
		want    []string
	}{
		{"empty", "", nil},
		{"cloud-init block", `[   12.3] cloud-init[1]: ok
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 SHA256:AAAA root@ip-10-0-0-1 (ECDSA)
ec2: 256 SHA256:BBBB root@ip-10-0-0-1 (ED25519)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ssh-ed25519 AAAAC3 root@ip
-----END SSH HOST KEY KEYS-----
`, []string{"SHA256:AAAA", "SHA256:BBBB"}},
		{"short form", "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: ED25519 SHA256:CCCC\nec2: -----END SSH HOST KEY FINGERPRINTS-----\n", []string{"SHA256:CCCC"}},
		{"unterminated block", "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: ED25519 SHA256:CCCC\n", nil},
		{"last boot wins", "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:OLD\n-----END SSH HOST KEY FINGERPRINTS-----\n" +
			"-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:NEW\n-----END SSH HOST KEY FINGERPRINTS-----\n", []string{"SHA256:NEW"}},
		{"fingerprints outside a block", "SHA256:XXXX\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseFingerprints(tt.console); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
