// Package localtest gives tests a local cloud of their own: a provider on
// a temporary state directory and a loopback network of its own, a client
// key its hosts accept, an SSH dialer that checks their host keys against
// their consoles, and a cleanup that terminates every host and checks that
// none of their processes is left.
//
// It is for tests only. The test binary must double as a host:
// TestMain calls local.RunHostIfAsked first. It depends on cloud/local,
// remote and fleet, never on the deployer or the commands.
package localtest
