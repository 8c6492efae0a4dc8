// Package s3 is an object store in an S3 bucket (under a key prefix),
// through aws-sdk-go-v2, and a presigner that hands hosts a time-limited
// GET URL for an object, so that a host without the SDK or credentials can
// fetch it with curl. The SDK sits behind an unexported interface listing
// the calls used; the client is built in one place, New, from
// config.LoadDefaultConfig.
//
// s3 imports only objstore, the AWS SDK and the standard library.
package s3
