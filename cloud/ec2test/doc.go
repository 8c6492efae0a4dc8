// Package ec2test is an EC2 wire-protocol server for tests and demos: an
// http.Handler that speaks the EC2 Query API (form-encoded POST requests,
// XML responses and errors) for exactly the calls tide makes, RunInstances,
// DescribeInstances, TerminateInstances, CreateTags and GetConsoleOutput, so
// that the real aws-sdk-go-v2 client can be exercised end to end without AWS.
//
// It models the EC2 behaviours a careful client must survive: instances that
// stay pending for a few polls and get their address late, describe-by-id
// answering InvalidInstanceID.NotFound just after a launch (eventual
// consistency), injected RequestLimitExceeded and InsufficientInstanceCapacity
// errors (Server.FailNext), idempotent ClientToken with
// IdempotentParameterMismatch, and terminated instances that stay visible for
// a while.
//
// Instances are backed by a Backend: the built-in in-memory backend hands
// out fake 10.0.x.y addresses that are never dialled; a backend made of real
// hosts (for example the local cloud) lets the whole launch pipeline, SSH
// included, run through the SDK.
//
// ec2test imports only fleet from tide (plus the standard library); it must
// not depend on the deployer, the scheduler or any cloud implementation.
// It does not verify SigV4 signatures: it only requires that requests carry
// one.
package ec2test
