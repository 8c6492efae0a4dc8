package state

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DesiredEntry is a role's last desired count and when it was decided.
type DesiredEntry struct {
	Count int       `json:"count"`
	At    time.Time `json:"at"`
}

// PutDesired records a role's desired count decided at at. After a restart
// Desired gives it back for scheduler.Role.Restore(Count, At).
func (s *Store) PutDesired(role string, n int, at time.Time) error {
	if err := checkName("role", role); err != nil {
		return fmt.Errorf("storing desired count: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("storing desired count of %s: negative count %d", role, n)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketDesired), []byte(role), DesiredEntry{Count: n, At: at})
	})
	if err != nil {
		return fmt.Errorf("storing desired count of %s: %w", role, err)
	}
	return nil
}

// Desired returns every role's last desired count by role.
func (s *Store) Desired() (map[string]DesiredEntry, error) {
	out := map[string]DesiredEntry{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDesired).ForEach(func(k, v []byte) error {
			var e DesiredEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding desired count of %s: %w", k, err)
			}
			out[string(k)] = e
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading desired counts: %w", err)
	}
	return out, nil
}
