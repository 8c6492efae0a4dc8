package objstore_test

import (
	"testing"

	"github.com/tideops/tide/objstore"
)

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"backups/f/db/app/latest.json", true},
		{"a", true},
		{"", false},
		{"/abs", false},
		{"trailing/", false},
		{"a//b", false},
		{"a/../b", false},
		{"./a", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if err := objstore.CheckKey(tc.key); (err == nil) != tc.ok {
				t.Errorf("CheckKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
			}
		})
	}
}

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, key string
		ok              bool
	}{
		{"s3://b/k", "b", "k", true},
		{"s3://b/dir/k.tgz", "b", "dir/k.tgz", true},
		{"s3://b", "", "", false},
		{"s3://b/", "", "", false},
		{"https://b/k", "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			b, k, err := objstore.ParseS3URL(tc.in)
			if (err == nil) != tc.ok || b != tc.bucket || k != tc.key {
				t.Errorf("ParseS3URL(%q) = %q, %q, %v", tc.in, b, k, err)
			}
		})
	}
}
