// Package objstore holds what object stores share: the description of a
// stored object and the not-found error. The stores themselves live in one
// subpackage per system (dir for a directory on this machine, s3 for S3
// through aws-sdk-go-v2); the interface they satisfy is declared by the
// package that uses them (converge).
//
// objstore is a leaf: it imports only the standard library.
package objstore
