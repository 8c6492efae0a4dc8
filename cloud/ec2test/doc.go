// Package ec2test is an EC2 wire-protocol server for tests and demos: an
// http.Handler that speaks the EC2 Query API (form-encoded POST requests,
// XML responses and errors) for exactly the calls tide makes, RunInstances,
// DescribeInstances, TerminateInstances, StartInstances, CreateTags and
// GetConsoleOutput, so
// that the real aws-sdk-go-v2 client can be exercised end to end without AWS.
//
// It models the EC2 behaviours a careful client must survive: instances that
// stay pending for a few polls and get their address late, describe-by-id
// answering InvalidInstanceID.NotFound just after a launch (eventual
// consistency), injected RequestLimitExceeded and InsufficientInstanceCapacity
// errors (Server.FailNext), idempotent ClientToken with
// IdempotentParameterMismatch, and terminated instances that stay visible for
// a while. A host that dies is reflected as EC2 would: an instance whose host
// dies while it is pending terminates (pending, shutting-down, terminated,
// with the state reason Server.InternalError, "Internal error on launch"),
// its host freed and its last console kept for GetConsoleOutput; one whose
// host dies while it runs stops (Client.InstanceInitiatedShutdown), and
// StartInstances takes it through pending to running again, its host booted
// again by a backend that is a Restarter (other states but pending and
// running are refused with IncorrectInstanceState).
//
// Instances are backed by a Backend: the built-in in-memory backend hands
// out fake 10.0.x.y addresses that are never dialled; a backend made of real
// hosts (for example the local cloud) lets the whole launch pipeline, SSH
// included, run through the SDK.
//
// ec2test imports only fleet from tide (plus the standard library); it must
// not depend on the deployer, the scheduler or any cloud implementation.
//
// Every request must be signed with AWS Signature Version 4 (the
// Authorization header form the SDKs use) by one of the credentials in
// Options.Credentials, for the server's region and the service "ec2". The
// verifier is written from AWS's specification (canonical request, string to
// sign, derived signing key, constant-time comparison) and answers as EC2
// does: AuthFailure (401) for a missing signature, an unknown access key or
// a credential scoped to another region or service; SignatureDoesNotMatch
// (403) for a wrong secret or a request changed after signing;
// RequestExpired (400) for a signing time more than Options.MaxSkew from the
// server's clock; IncompleteSignature (400) for a malformed Authorization
// header. Responses carry the server's clock in their Date header, from which
// the SDK corrects its own. Presigned (query string) requests are refused.
package ec2test
