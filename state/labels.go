package state

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LabelEntry is what tide knows of an instance's label without asking the
// cloud or the host again.
type LabelEntry struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	Label   string `json:"label"`
}

// PutLabel records the label (and address) of an instance, replacing what
// was recorded for it.
func (s *Store) PutLabel(id, address, label string) error {
	if err := checkName("instance id", id); err != nil {
		return fmt.Errorf("storing label: %w", err)
	}
	if label == "" {
		return fmt.Errorf("storing label of %s: label is required", id)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketLabels), []byte(id), LabelEntry{ID: id, Address: address, Label: label})
	})
	if err != nil {
		return fmt.Errorf("storing label %s of %s: %w", label, id, err)
	}
	return nil
}

// Labels returns the label cache by instance id.
func (s *Store) Labels() (map[string]LabelEntry, error) {
	out := map[string]LabelEntry{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLabels).ForEach(func(k, v []byte) error {
			var e LabelEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding label of %s: %w", k, err)
			}
			out[string(k)] = e
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading labels: %w", err)
	}
	return out, nil
}

// DeleteLabel forgets an instance's label (after it is terminated). It is
// not an error when there is none.
func (s *Store) DeleteLabel(id string) error {
	if id == "" {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLabels).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("deleting label of %s: %w", id, err)
	}
	return nil
}

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
