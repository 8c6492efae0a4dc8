package s3_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tideops/tide/objstore/s3"
	"github.com/tideops/tide/objstore/s3/s3test"
)

// BenchmarkPutFile puts a 96 MiB spool file into versitygw in one PUT
// and in parts, the way backups are put.
func BenchmarkPutFile(b *testing.B) {
	const size = 96 << 20
	srv := s3test.StartVersity(b, "backups")
	f, err := os.Create(filepath.Join(b.TempDir(), "spool"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(randomBytes(size)); err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name                string
		threshold, partSize int64
		inFlight            int
	}{
		{"one PUT", 5 << 30, 0, 0},
		{"parts 16MiB x1", 1, 16 << 20, 1},
		{"parts 16MiB x4", 1, 16 << 20, 4},
	} {
		b.Run(m.name, func(b *testing.B) {
			o := srv.Options()
			o.MultipartThreshold, o.PartSize, o.PartConcurrency = m.threshold, m.partSize, m.inFlight
			c, err := s3.New(context.Background(), o)
			if err != nil {
				b.Fatal(err)
			}
			st := c.Store("backups", "bench")
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				if _, err := f.Seek(0, 0); err != nil {
					b.Fatal(err)
				}
				if _, err := st.Put(context.Background(), fmt.Sprintf("obj-%d", i), f, size); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
