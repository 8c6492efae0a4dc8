package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tideops/tide/scheduler"
)

// AppendSamples stores load samples of a role, 16 bytes each (the time in
// Unix nanoseconds as the key, the value's float64 bits). A sample at the
// same instant as a stored one replaces it, so a backfill that overlaps
// what is stored is harmless. NaN and infinite values are rejected: a
// missing metric is not stored as a number. In the same transaction the
// role's samples older than Options.SampleRetention before the newest
// appended sample are dropped.
func (s *Store) AppendSamples(role string, samples []scheduler.Sample) error {
	if err := checkName("role", role); err != nil {
		return fmt.Errorf("storing samples: %w", err)
	}
	if len(samples) == 0 {
		return nil
	}
	newest := samples[0].At
	for _, sm := range samples {
		if math.IsNaN(sm.Value) || math.IsInf(sm.Value, 0) {
			return fmt.Errorf("storing samples for %s: value at %s is %g", role, sm.At.Format(time.RFC3339), sm.Value)
		}
		if sm.At.IsZero() {
			return fmt.Errorf("storing samples for %s: a sample has no time", role)
		}
		if sm.At.After(newest) {
			newest = sm.At
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := nested(tx.Bucket(bucketSamples), role, true)
		if err != nil {
			return err
		}
		for _, sm := range samples {
			if err := b.Put(timeKey(sm.At), f64(sm.Value)); err != nil {
				return err
			}
		}
		_, err = pruneBefore(b, timeKey(newest.Add(-s.opts.SampleRetention)))
		return err
	})
	if err != nil {
		return fmt.Errorf("storing samples for %s: %w", role, err)
	}
	return nil
}

// Samples returns the role's samples at or after since, oldest first, with
// times in UTC.
func (s *Store) Samples(role string, since time.Time) ([]scheduler.Sample, error) {
	var out []scheduler.Sample
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSamples).Bucket([]byte(role))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("sample entry of %d+%d bytes, want 8+8", len(k), len(v))
			}
			out = append(out, scheduler.Sample{At: keyTime(k), Value: math.Float64frombits(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading samples of %s: %w", role, err)
	}
	return out, nil
}
