// Package ec2local backs the EC2 wire-protocol test server (cloud/ec2test)
// with local-cloud hosts (cloud/local), so that tide's whole launch pipeline,
// SSH included, runs through the real aws-sdk-go-v2 client offline: in tests
// and in `tide ec2-demo`.
//
// An EC2 instance of the server is one detached local host: it gets its
// address (reported as the instance's privateIpAddress) once it has booted
// and serves SSH on the local cloud's port, and its console carries its host
// key fingerprints in the block cloud-init prints on EC2, so tide verifies
// keys from GetConsoleOutput as it does on AWS. A host whose process dies is
// down for the server (its instance terminates if it was booting, stops if
// it ran), and its console then ends with the tail of the host's own
// console log: what the process printed before it stopped. Starting a
// stopped instance (StartInstances) boots its local host again with its
// filesystem, address and host key. A host tags its instance
// through the server's API, in a request signed (SigV4, with the SDK's
// signer) with a credential the server is given for the hosts alone, as an
// instance profile's would be on EC2.
//
// ec2local imports only cloud/ec2test, cloud/local and fleet from tide; it
// must not depend on the deployer, the scheduler or cloud/aws.
package ec2local
