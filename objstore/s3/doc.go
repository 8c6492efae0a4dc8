// Package s3 is an object store in an S3 bucket (under a key prefix),
// through aws-sdk-go-v2, and a presigner that hands hosts a time-limited
// GET URL for an object, so that a host without the SDK or credentials can
// fetch it with curl. The SDK sits behind an unexported interface listing
// the calls used; the client is built in one place, New, from
// config.LoadDefaultConfig.
//
// Bodies above a threshold (64 MiB by default) are put with a multipart
// upload, written here against the SDK's S3 calls: parts of 16 MiB or
// more, a few in flight, each with its CRC32C for S3 to check, and the
// upload aborted on any failure so that no parts are left to be billed.
// A lifecycle rule aborting incomplete multipart uploads after a day is
// still worth setting on the bucket, for a tide killed mid-upload.
//
// s3 imports only objstore, the AWS SDK and the standard library.
package s3
