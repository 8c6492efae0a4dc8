package objstore

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound says no object has the key. Stores wrap it; callers test it
// with errors.Is.
var ErrNotFound = errors.New("object not found")

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// CheckKey rejects keys that are empty, absolute, or that step out of the
// store with "." or ".." segments. Keys are slash-separated.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("empty object key")
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("object key %q: must not begin or end with /", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("object key %q: empty, . or .. segment", key)
		}
	}
	return nil
}

// ParseS3URL splits s3://bucket/key into bucket and key.
func ParseS3URL(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q: want s3://bucket/key", u)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q: want s3://bucket/key", u)
	}
	return bucket, key, nil
}
