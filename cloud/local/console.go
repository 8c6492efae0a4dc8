package local

import (
	"bufio"
	"strings"
)

// The markers cloud-init prints around the host key fingerprints on an EC2
// instance's console, which the local hosts print the same way.
const (
	fingerprintsBegin = "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----"
	fingerprintsEnd   = "ec2: -----END SSH HOST KEY FINGERPRINTS-----"
)

// parseFingerprints returns the SHA256 fingerprints printed between the
// fingerprint markers of a console log (with or without the "ec2: " prefix),
// from the last complete block: a host prints a block at every boot.
func parseFingerprints(console string) []string {
	var (
		in   bool
		cur  []string
		last []string
	)
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "ec2:"))
		switch {
		case strings.HasPrefix(line, "-----BEGIN SSH HOST KEY FINGERPRINTS-----"):
			in, cur = true, nil
		case strings.HasPrefix(line, "-----END SSH HOST KEY FINGERPRINTS-----"):
			if in {
				last = cur
			}
			in = false
		case in:
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "SHA256:") && len(f) > len("SHA256:") {
					cur = append(cur, f)
				}
			}
		}
	}
	return last
}
