// Package local is the embedded local cloud, tide's default provider: each
// instance is a detached process on this machine (RunHost) that, after a boot
// delay, serves real SSH on its own loopback address (one address per
// instance inside a 127.0.0.0/8 network, on a configured port), runs commands
// with /bin/sh in a directory standing for its filesystem, and prints its
// host key fingerprint on a console log as EC2 instances do.
//
// Instances and their addresses persist in the state directory, so they
// survive tide exiting and several tide processes can share them.
//
// Paths on a host: a command runs with its working directory at the host's
// root directory (<state>/local/hosts/<id>/root) and with HOME and TIDE_ROOT
// set to it; the data path that stands for /mnt is <root>/mnt, exported to
// commands as DATA and reported on each instance in the tide:data-path tag,
// so the deployer templates that path rather than a literal /mnt.
//
// local imports only fleet and clock from tide; it must never import the
// deployer or the scheduler.
package local
