// Package aws is tide's Amazon EC2 cloud: it lists, launches (idempotently,
// with a client token and tags from the start), tags, starts again (a
// stopped instance, with its volumes) and terminates the instances of a
// fleet through aws-sdk-go-v2, waits for them to run, and reads their SSH
// host key fingerprints from the console.
//
// The SDK client is built in one place, New, from config.LoadDefaultConfig
// (shared profiles, environment, instance metadata; region; an optional
// endpoint override) with a retryer tuned for EC2's request throttling:
// throttled calls get more attempts than other transient failures, with
// bounded exponential backoff, and capacity errors are not retried (the
// caller is better placed to pick another zone). The provider reaches the
// SDK only through an unexported interface that lists the six calls it
// makes, with the SDK's own signatures.
//
// Host keys. EC2 images running cloud-init print a block
//
//	-----BEGIN SSH HOST KEY FINGERPRINTS-----
//	256 SHA256:... root@ip-10-0-1-2 (ED25519)
//	-----END SSH HOST KEY FINGERPRINTS-----
//
// to the serial console at first boot (often with an "ec2: " or syslog
// prefix); HostKeyFingerprints returns the fingerprints of the last complete
// block, as "SHA256:..." strings (and "MD5:aa:bb:..." for images old enough
// to print MD5 fingerprints). The console is only published some time after
// an instance runs, and some images print no keys at all: in both cases the
// list is empty, not an error. The caller then decides: retry until a
// deadline, or fall back to trust on first use, pinning the first key the
// host presents to the instance id (so a later address reuse by another
// instance is still caught as a mismatch). That decision belongs to the
// launch pipeline, not to this package.
//
// aws imports only fleet from tide; it must not depend on the deployer, the
// scheduler or other clouds. Metrics around its calls are added by a
// decorator in cmd.
package aws
