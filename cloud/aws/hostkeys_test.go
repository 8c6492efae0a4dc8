package aws

import (
	"fmt"
	"testing"
)

const (
	fpA = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
	fpB = "SHA256:2jmj7l5rSw0yVb/vlWAYkK/YBwk2jmj7l5rSw0yVb/s"
	md5 = "1f:2e:3d:4c:5b:6a:79:88:97:a6:b5:c4:d3:e2:f1:00"
)

func TestParseFingerprints(t *testing.T) {
	tests := []struct {
		name, console string
		want          []string
	}{
		{"empty console", "", []string{}},
		{"cloud-init block", "boot\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 " + fpA + " root@ip-10-0-1-2 (ECDSA)\n256 " + fpB + " root@ip-10-0-1-2 (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\nlogin:",
			[]string{fpA, fpB}},
		{"ec2 prefix", "ec2: #####\nec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 " + fpA + " root@host (ED25519)\nec2: -----END SSH HOST KEY FINGERPRINTS-----\n",
			[]string{fpA}},
		{"syslog prefix", "<14>Mar 10 12:00:00 ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n<14>Mar 10 12:00:00 ec2: 256 " + fpA + " root@host (ED25519)\r\n<14>Mar 10 12:00:00 ec2: -----END SSH HOST KEY FINGERPRINTS-----\r\n",
			[]string{fpA}},
		{"old MD5 fingerprints", "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 2048 " + md5 + " /etc/ssh/ssh_host_rsa_key.pub (RSA)\nec2: 256 MD5:" + md5 + " root@h (ECDSA)\nec2: -----END SSH HOST KEY FINGERPRINTS-----\n",
			[]string{"MD5:" + md5}},
		{"block not finished yet", "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 " + fpA + " root@host (ED25519)\n", []string{}},
		{"last complete block wins", "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 " + fpA + " r@h (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\nreboot\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 " + fpB + " r@h (ED25519)\n-----END SSH HOST KEY FINGERPRINTS-----\n",
			[]string{fpB}},
		{"fingerprints outside a block ignored", "256 " + fpA + " root@host (ED25519)\n", []string{}},
		{"malformed fingerprints ignored", "-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:short r@h (ED25519)\n256 SHA256:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!! r@h\n-----END SSH HOST KEY FINGERPRINTS-----\n",
			[]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseFingerprints(tt.console)
			if got == nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("parseFingerprints = %#v, want %#v", got, tt.want)
			}
		})
	}
}
