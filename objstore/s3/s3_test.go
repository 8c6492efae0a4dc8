package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/s3/s3test"
)

// servers are the S3 servers every test runs against.
var servers = []struct {
	name  string
	start func(testing.TB, ...string) s3test.Server
}{
	{"gofakes3", s3test.StartFake},
	{"versitygw", s3test.StartVersity},
}

func TestStoreRoundTrip(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			s := srv.start(t, "backups")
			c := s.Client(t)
			st := c.Store("backups", "tide/")
			if got := st.String(); got != "s3://backups/tide" {
				t.Errorf("String() = %q", got)
			}
			data := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB, streamed unseekable
			info, err := st.Put(ctx, "f/db/app/1.tgz", io.MultiReader(bytes.NewReader(data)), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(data)) {
				t.Errorf("Put size %d, want %d", info.Size, len(data))
			}
			rc, err := st.Get(ctx, "f/db/app/1.tgz")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get: %d bytes, %v", len(got), err)
			}
			if _, err := st.Put(ctx, "f/db/app/latest.json", strings.NewReader(`{}`), -1); err != nil {
				t.Fatal(err)
			}
			list, err := st.List(ctx, "f/db/")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].Key != "f/db/app/1.tgz" || list[1].Key != "f/db/app/latest.json" {
				t.Errorf("List = %+v", list)
			}
			if _, err := st.Stat(ctx, "f/db/app/missing"); !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("Stat missing: %v, want ErrNotFound", err)
			}
			if _, err := st.Get(ctx, "f/db/app/missing"); !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("Get missing: %v, want ErrNotFound", err)
			}
			if err := st.Delete(ctx, "f/db/app/1.tgz"); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Stat(ctx, "f/db/app/1.tgz"); !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestPresignGet(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			s := srv.start(t, "artifacts")
			c := s.Client(t)
			if _, err := c.Store("artifacts", "").Put(ctx, "app/1.0.tgz", strings.NewReader("release"), 7); err != nil {
				t.Fatal(err)
			}
			url, err := c.PresignGet(ctx, "artifacts", "app/1.0.tgz", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.HTTPClient.Get(url) // no credentials: the URL carries the signature
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "release" {
				t.Errorf("GET presigned: %d %q", resp.StatusCode, body)
			}
			resp, err = s.HTTPClient.Get(strings.Replace(url, "1.0.tgz", "2.0.tgz", 1))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Errorf("a URL signed for another key was accepted")
			}
		})
	}
}
