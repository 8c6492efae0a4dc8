// Package s3test starts S3 servers for tests: gofakes3 inside the test
// process and versitygw, a real S3 gateway, as a child process. Both speak
// TLS (the SDK cannot stream unseekable bodies over plain HTTP) with a
// certificate the returned client trusts and whose PEM file hosts can give
// to curl. Only tests import it.
package s3test
