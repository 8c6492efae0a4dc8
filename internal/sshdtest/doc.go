// Package sshdtest runs Debian's OpenSSH sshd for a test, on a loopback
// address of its own, with a host key of its own and an authorized_keys
// file in a temporary directory: New prepares a server, Start runs it until
// Stop or the end of the test, Rekey gives it a new host key, and Need
// skips a test when sshd is missing (and fails it under CI=true).
//
// It is test support: only _test.go files import it (it is written in plain
// Go files so that the tests of several packages can share it). It must not
// depend on any other tide package.
package sshdtest
