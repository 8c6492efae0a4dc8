package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tideops/tide/scheduler"
)

// AppendDecision stores a decision record. In the same transaction it drops
// the role's decisions older than Options.DecisionRetention before rec.At
// and the oldest ones beyond Options.DecisionsPerRole.
func (s *Store) AppendDecision(rec scheduler.Record) error {
	if err := checkName("role", rec.Role); err != nil {
		return fmt.Errorf("storing decision: %w", err)
	}
	if rec.At.IsZero() {
		return fmt.Errorf("storing decision for %s: time is required", rec.Role)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding decision for %s: %w", rec.Role, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := nested(tx.Bucket(bucketDecisions), rec.Role, true)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(rec.At, seq), data); err != nil {
			return err
		}
		counts := tx.Bucket(bucketDecisionCounts)
		n := getU64(counts.Get([]byte(rec.Role))) + 1
		pruned, err := pruneBefore(b, timeKey(rec.At.Add(-s.opts.DecisionRetention)))
		if err != nil {
			return err
		}
		n -= uint64(min(uint64(pruned), n))
		c := b.Cursor()
		for k, _ := c.First(); k != nil && n > uint64(s.opts.DecisionsPerRole); k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			n--
		}
		return counts.Put([]byte(rec.Role), u64(n))
	})
	if err != nil {
		return fmt.Errorf("storing decision for %s: %w", rec.Role, err)
	}
	return nil
}

// Decisions returns the role's decisions at or after since, newest first,
// at most limit of them (limit <= 0: all). An empty role returns the
// decisions of every role, merged newest first.
func (s *Store) Decisions(role string, since time.Time, limit int) ([]scheduler.Record, error) {
	var out []scheduler.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketDecisions)
		var roles []string
		if role != "" {
			roles = []string{role}
		} else {
			err := parent.ForEachBucket(func(k []byte) error {
				roles = append(roles, string(k))
				return nil
			})
			if err != nil {
				return err
			}
		}
		cut := timeKey(since)
		for _, r := range roles {
			b := parent.Bucket([]byte(r))
			if b == nil {
				continue
			}
			c := b.Cursor()
			taken := 0
			for k, v := c.Last(); k != nil && bytes.Compare(k[:8], cut) >= 0; k, v = c.Prev() {
				if limit > 0 && taken == limit {
					break
				}
				var rec scheduler.Record
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("decoding decision of %s at %s: %w", r, keyTime(k).Format(time.RFC3339Nano), err)
				}
				out = append(out, rec)
				taken++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading decisions: %w", err)
	}
	if role == "" {
		sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
	}
	return out, nil
}
