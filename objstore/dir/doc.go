// Package dir is an object store in a directory on this machine: the backup
// store of the local cloud, kept under tide's state directory. A key is a
// slash-separated path below the root; writes go to a temporary file that
// is synced and renamed, so a reader never sees half an object.
//
// dir imports only objstore and the standard library.
package dir
