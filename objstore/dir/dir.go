package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tideops/tide/objstore"
)

// Store keeps objects as files below a root directory.
type Store struct {
	root string
}

// New returns a store rooted at root, creating the directory.
func New(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("object store %s: %w", root, err)
	}
	return &Store{root: abs}, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// String names the store in messages.
func (s *Store) String() string { return "dir:" + s.root }

func (s *Store) path(key string) (string, error) {
	if err := objstore.CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put writes r under key and returns what was stored. size is the number
// of bytes r holds (-1 when unknown); a reader that ends short of it is an
// error and stores nothing.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (objstore.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return objstore.Info{}, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		return objstore.Info{}, fmt.Errorf("putting %s: %w", key, err)
	}
	return s.Stat(ctx, key)
}

// Get opens the object under key; the caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("getting %s: %w", key, objstore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", key, err)
	}
	return f, nil
}

// Stat describes the object under key.
func (s *Store) Stat(ctx context.Context, key string) (objstore.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return objstore.Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.IsDir()) {
		return objstore.Info{}, fmt.Errorf("stat %s: %w", key, objstore.ErrNotFound)
	}
	if err != nil {
		return objstore.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return objstore.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List returns the objects whose keys begin with prefix, by key.
func (s *Store) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	var out []objstore.Info
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, objstore.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object under key; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
