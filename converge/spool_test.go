package converge_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/dir"
	"github.com/tideops/tide/objstore/s3"
	"github.com/tideops/tide/objstore/s3/s3test"
)

// spoolBackupSize is three parts of the store's 5 MiB in
// TestBackupSpoolDir.
const spoolBackupSize = 12 << 20

// spoolSchedule's backup writes spoolBackupSize random bytes.
var spoolSchedule = fmt.Sprintf(`name: conv
applications:
  - name: kv
    revision: "1"
    roles: [db]
    commands:
      start: while :; do sleep 1; done
      backup: head -c %d /dev/urandom > "{{.Backup}}"
      restore: "true"
roles:
  - name: db
    stateful: true
    min: 0
    max: 1
`, spoolBackupSize)

// spoolRecorder records the files archives are put from.
type spoolRecorder struct {
	converge.Store
	mu    sync.Mutex
	files map[string]string // key -> name of the *os.File put
}

func (s *spoolRecorder) Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error) {
	if f, ok := r.(*os.File); ok {
		s.mu.Lock()
		s.files[key] = f.Name()
		s.mu.Unlock()
	}
	return s.Store.Put(ctx, key, r, size)
}

// TestBackupSpoolDir backs a host up into versitygw through a spool file
// in Options.SpoolDir, with the store's multipart threshold below the
// archive's size: the archive goes up in parts read from the spool file
// and is verified by reading it back. A spool directory that does not
// exist stops the backup (and so the termination).
func TestBackupSpoolDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc := newTestCloud(t)

	t.Run("multipart from the spool file", func(t *testing.T) {
		srv := s3test.StartVersity(t, "tide-backups")
		o := srv.Options()
		o.MultipartThreshold, o.PartSize = 6<<20, 5<<20
		client, err := s3.New(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		st := &spoolRecorder{Store: client.Store("tide-backups", "prod"), files: map[string]string{}}
		spool := t.TempDir()
		c := newConverger(t, spoolSchedule, func(o *converge.Options) { o.Store, o.SpoolDir = st, spool })
		db := tc.launch(t, "conv", "db-1", "t3.large")
		if err := c.Converge(ctx, db.h, db.inst, "db"); err != nil {
			t.Fatal(err)
		}
		if err := c.BeforeTerminate(ctx, db.h, db.inst); err != nil {
			t.Fatal(err)
		}
		b, err := converge.Latest(ctx, st, "conv", "db", "kv")
		if err != nil {
			t.Fatal(err)
		}
		if b.Size != spoolBackupSize || b.VerifiedAt.IsZero() {
			t.Errorf("latest backup %+v, want %d bytes, verified", b, spoolBackupSize)
		}
		if got := st.files[b.Key]; filepath.Dir(got) != spool {
			t.Errorf("the archive was put from %q, want a file in the spool directory %s", got, spool)
		}
		if left, _ := os.ReadDir(spool); len(left) != 0 {
			t.Errorf("spool files left behind: %v", left)
		}
		head, err := srv.SDK().HeadObject(ctx, &s3sdk.HeadObjectInput{Bucket: aws.String("tide-backups"), Key: aws.String("prod/" + b.Key)})
		if err != nil {
			t.Fatal(err)
		}
		if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
			t.Errorf("ETag %s: want a multipart upload's of 3 parts", etag)
		}
	})

	t.Run("missing spool directory", func(t *testing.T) {
		st, err := dir.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		missing := filepath.Join(t.TempDir(), "missing")
		c := newConverger(t, statefulSchedule, func(o *converge.Options) { o.Store, o.SpoolDir = st, missing })
		db := tc.launch(t, "conv", "db-2", "t3.large")
		if err := c.Converge(ctx, db.h, db.inst, "db"); err != nil {
			t.Fatal(err)
		}
		err = c.BeforeTerminate(ctx, db.h, db.inst)
		if err == nil || !strings.Contains(err.Error(), "spooling the archive") || !strings.Contains(err.Error(), missing) {
			t.Errorf("BeforeTerminate with spool directory %s: %v, want a spooling error naming it", missing, err)
		}
	})
}
