package dir_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tideops/tide/objstore"
	"github.com/tideops/tide/objstore/dir"
)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, err := dir.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("backup "), 1000)
	info, err := s.Put(ctx, "backups/f/db/app/1.tgz", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.Key != "backups/f/db/app/1.tgz" {
		t.Errorf("Put info = %+v", info)
	}
	rc, err := s.Get(ctx, "backups/f/db/app/1.tgz")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
	if _, err := s.Put(ctx, "backups/f/db/app/2.tgz", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "other/k", strings.NewReader("y"), -1); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, "backups/")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != "backups/f/db/app/1.tgz" || list[1].Key != "backups/f/db/app/2.tgz" {
		t.Errorf("List = %+v", list)
	}
	if err := s.Delete(ctx, "backups/f/db/app/2.tgz"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "backups/f/db/app/2.tgz"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get missing: %v, want ErrNotFound", err)
	}
}

func TestShortPutStoresNothing(t *testing.T) {
	ctx := context.Background()
	s, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("abc"), 10); err == nil {
		t.Fatal("short Put succeeded")
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Stat after short Put: %v, want ErrNotFound", err)
	}
	ents, _ := os.ReadDir(s.Root())
	if len(ents) != 0 {
		t.Errorf("leftovers in the store: %v", ents)
	}
}

func TestKeysStayInside(t *testing.T) {
	s, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "/abs", "a/../../b", ""} {
		t.Run(key, func(t *testing.T) {
			if _, err := s.Put(context.Background(), key, strings.NewReader("x"), 1); err == nil {
				t.Errorf("Put(%q) succeeded", key)
			}
		})
	}
}
