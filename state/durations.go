package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Kinds of duration tide records per role.
const (
	// DurationReady is from the launch call to the host being ready
	// (running, reachable and deployed): the lead time a scale-up needs.
	DurationReady = "ready"
	// DurationDeploy is one deploy of a revision to a running host.
	DurationDeploy = "deploy"
)

// AppendDuration records how long one operation of a kind took for a role,
// finished at at. In the same transaction it keeps only the newest
// Options.DurationsPerKind of the role and kind, none older than
// Options.DurationRetention before at.
func (s *Store) AppendDuration(role, kind string, d time.Duration, at time.Time) error {
	if err := checkName("role", role); err != nil {
		return fmt.Errorf("storing duration: %w", err)
	}
	if err := checkName("duration kind", kind); err != nil {
		return fmt.Errorf("storing duration: %w", err)
	}
	if d < 0 {
		return fmt.Errorf("storing %s duration for %s: negative duration %s", kind, role, d)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb, err := nested(tx.Bucket(bucketDurations), role, true)
		if err != nil {
			return err
		}
		b, err := nested(rb, kind, true)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(at, seq), u64(uint64(d))); err != nil {
			return err
		}
		if _, err := pruneBefore(b, timeKey(at.Add(-s.opts.DurationRetention))); err != nil {
			return err
		}
		// Keep the newest DurationsPerKind: walk back that many, drop the rest.
		c := b.Cursor()
		k, _ := c.Last()
		for i := 1; i < s.opts.DurationsPerKind && k != nil; i++ {
			k, _ = c.Prev()
		}
		if k == nil {
			return nil
		}
		_, err = pruneBefore(b, append([]byte(nil), k...))
		return err
	})
	if err != nil {
		return fmt.Errorf("storing %s duration for %s: %w", kind, role, err)
	}
	return nil
}

// Durations returns the role's durations of a kind recorded at or after
// since, oldest first.
func (s *Store) Durations(role, kind string, since time.Time) ([]time.Duration, error) {
	var out []time.Duration
	err := s.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketDurations).Bucket([]byte(role))
		if rb == nil {
			return nil
		}
		b := rb.Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			out = append(out, time.Duration(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s durations of %s: %w", kind, role, err)
	}
	return out, nil
}

// LeadTime returns the q-quantile (0..1, linear interpolation) of the
// role's stored launch-to-ready durations (DurationReady), or fallback when
// fewer than Options.LeadTimeMinSamples are stored or they cannot be read.
// The scheduler's forecast looks this far ahead.
func (s *Store) LeadTime(role string, q float64, fallback time.Duration) time.Duration {
	ds, err := s.Durations(role, DurationReady, time.Time{})
	if err != nil || len(ds) < s.opts.LeadTimeMinSamples || len(ds) == 0 {
		return fallback
	}
	return quantile(ds, q)
}

// quantile returns the q-quantile of ds (0 <= q <= 1, clamped) with linear
// interpolation between the closest ranks. It sorts a copy; ds must not be
// empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	if math.IsNaN(q) || q <= 0 {
		return sorted[0]
	}
	if q >= 1 {
		return sorted[len(sorted)-1]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	frac := pos - float64(lo)
	return sorted[lo] + time.Duration(math.Round(frac*float64(sorted[hi]-sorted[lo])))
}
