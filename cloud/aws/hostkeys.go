package aws

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/tideops/tide/fleet"
)

const (
	beginFingerprints = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
	endFingerprints   = "-----END SSH HOST KEY FINGERPRINTS-----"
)

// HostKeyFingerprints returns the SSH host key fingerprints the instance
// printed on its console at boot ("SHA256:..." and, from old images,
// "MD5:aa:bb:..."), from the last complete fingerprint block. The list is
// empty, not an error, when the console has none yet or the image prints
// none; see the package documentation for what the caller does then. An
// unknown id gives *fleet.NotFoundError.
func (p *Provider) HostKeyFingerprints(ctx context.Context, id string) ([]string, error) {
	out, err := p.api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("reading console of %s: %w", id, &fleet.NotFoundError{ID: id})
		}
		return nil, fmt.Errorf("reading console of %s: %w", id, mapError(err))
	}
	enc := aws.ToString(out.Output)
	if enc == "" {
		return []string{}, nil
	}
	console, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("reading console of %s: decoding base64: %w", id, err)
	}
	return parseFingerprints(string(console)), nil
}

// parseFingerprints returns the fingerprints of the last complete host key
// fingerprint block in a console text. Lines may carry any prefix (such as
// "ec2: " or a syslog header); in a block, every field that is a well-formed
// SHA256 or MD5 fingerprint counts.
func parseFingerprints(console string) []string {
	last := []string{}
	var cur []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, beginFingerprints):
			in, cur = true, []string{}
		case strings.Contains(line, endFingerprints):
			if in {
				last = cur
			}
			in = false
		case in:
			for _, f := range strings.Fields(line) {
				if fp, ok := fingerprint(f); ok && !contains(cur, fp) {
					cur = append(cur, fp)
				}
			}
		}
	}
	return last
}

// fingerprint recognises "SHA256:<43 base64 characters>" (as ssh-keygen -l
// prints it) and MD5 fingerprints, bare ("aa:bb:...") or prefixed
// ("MD5:aa:bb:..."), returned with the "MD5:" prefix.
func fingerprint(f string) (string, bool) {
	if rest, ok := strings.CutPrefix(f, "SHA256:"); ok {
		b, err := base64.RawStdEncoding.DecodeString(rest)
		return f, err == nil && len(b) == 32
	}
	rest := strings.TrimPrefix(f, "MD5:")
	if len(rest) != 47 {
		return "", false
	}
	for i, c := range rest {
		if i%3 == 2 {
			if c != ':' {
				return "", false
			}
		} else if !strings.ContainsRune("0123456789abcdef", c) {
			return "", false
		}
	}
	return "MD5:" + rest, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
