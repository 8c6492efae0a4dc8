package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/objstore/dir"
	"github.com/tideops/tide/objstore/s3"
)

// backupStore says where a fleet's backups go: the schedule's
// backups.store, else TIDE_BACKUP_STORE, else STATE_DIR/backups on the
// local and static clouds. The schedule wins, and TIDE_BACKUP_STORE naming
// another store is an error rather than an override: tide serve and the
// commands run by hand must back up to, and restore from, the same store,
// or a new host would be given an older backup than the newest. A stateful
// role with nowhere to put its backups is an error too (config refuses it
// on aws already): never a silent no-backup.
func backupStore(e *env, s *config.Schedule, stateDir, cloudName string) (string, error) {
	file, fromEnv := s.BackupStore(), e.Getenv("TIDE_BACKUP_STORE")
	if fromEnv != "" && !strings.HasPrefix(fromEnv, "s3://") && strings.Contains(fromEnv, ":/") {
		return "", fmt.Errorf("TIDE_BACKUP_STORE=%s: want s3://bucket/prefix or a directory", fromEnv)
	}
	var loc string
	switch {
	case file != "" && fromEnv != "" && !sameStore(file, fromEnv):
		return "", fmt.Errorf("TIDE_BACKUP_STORE=%s names another store than the schedule's backups.store (%s): unset it, or change backups.store in %s",
			fromEnv, s.Backups.Store, s.File)
	case file != "":
		loc = file
	case fromEnv != "":
		loc = fromEnv
	case cloudName == "local" || cloudName == "static":
		loc = filepath.Join(stateDir, "backups")
	}
	if loc == "" {
		for _, r := range s.Roles {
			if r.Stateful {
				return "", fmt.Errorf("role %s is stateful and no backup store is configured: set backups.store in %s", r.Name, s.File)
			}
		}
	}
	return loc, nil
}

// sameStore reports whether two store locations name the same store.
func sameStore(a, b string) bool {
	norm := func(loc string) string {
		if strings.HasPrefix(loc, "s3://") {
			return strings.TrimRight(loc, "/")
		}
		if abs, err := filepath.Abs(loc); err == nil {
			return abs
		}
		return filepath.Clean(loc)
	}
	return norm(a) == norm(b)
}

// s3Clients returns a function giving the S3 client of a schedule's
// region (AWS_ENDPOINT_URL_S3 points it elsewhere, path-style), made at
// the first call.
func s3Clients(ctx context.Context, e *env, s *config.Schedule) func() (*s3.Client, error) {
	var client *s3.Client
	return func() (*s3.Client, error) {
		if client != nil {
			return client, nil
		}
		endpoint := e.Getenv("AWS_ENDPOINT_URL_S3")
		c, err := s3.New(ctx, s3.Options{Region: s.Cloud.Region, Endpoint: endpoint, PathStyle: endpoint != ""})
		if err != nil {
			return nil, err
		}
		client = c
		return c, nil
	}
}

// openBackupStore opens the store the fleet's backups go to (see
// backupStore); nil when the fleet has none, which only a fleet without a
// stateful role may have.
func openBackupStore(e *env, s *config.Schedule, stateDir, cloudName string, s3Client func() (*s3.Client, error)) (converge.Store, error) {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	loc, err := backupStore(e, s, stateDir, cloudName)
	switch {
	case err != nil:
		return nil, err
	case loc == "":
		return nil, nil
	case strings.HasPrefix(loc, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(loc, "s3://"), "/")
		c, err := s3Client()
		if err != nil {
			return nil, err
		}
		return c.Store(bucket, prefix), nil
	}
	return dir.New(loc)
}
