package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tideops/tide/scheduler"
)

// PutOverride stores an override, replacing the role's previous one. The
// override must be well formed (scheduler.Override.Validate at its
// CreatedAt); checking that its expiry is in the future is the caller's
// business, which knows the time.
func (s *Store) PutOverride(o scheduler.Override) error {
	if err := o.Validate(o.CreatedAt); err != nil {
		return fmt.Errorf("storing override: %w", err)
	}
	if err := checkName("role", o.Role); err != nil {
		return fmt.Errorf("storing override: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketOverrides), []byte(o.Role), o)
	})
	if err != nil {
		return fmt.Errorf("storing override for %s: %w", o.Role, err)
	}
	return nil
}

// Overrides returns the overrides active at now, sorted by role. Expired
// overrides are deleted on the way (in a write transaction only when there
// is one to delete).
func (s *Store) Overrides(now time.Time) ([]scheduler.Override, error) {
	var active []scheduler.Override
	expired := false
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOverrides).ForEach(func(k, v []byte) error {
			var o scheduler.Override
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decoding override %s: %w", k, err)
			}
			if o.Active(now) {
				active = append(active, o)
			} else {
				expired = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading overrides: %w", err)
	}
	if expired {
		if err := s.pruneOverrides(now); err != nil {
			return nil, err
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].Role < active[j].Role })
	return active, nil
}

func (s *Store) pruneOverrides(now time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOverrides)
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var o scheduler.Override
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("decoding override %s: %w", k, err)
			}
			if !o.Active(now) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pruning expired overrides: %w", err)
	}
	return nil
}

// DeleteOverride removes the role's override. It reports whether there was
// one (expired or not).
func (s *Store) DeleteOverride(role string) (bool, error) {
	found := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOverrides)
		found = b.Get([]byte(role)) != nil
		if !found {
			return nil
		}
		return b.Delete([]byte(role))
	})
	if err != nil {
		return false, fmt.Errorf("deleting override for %s: %w", role, err)
	}
	return found, nil
}
