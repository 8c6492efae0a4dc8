package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Kinds of operation.
const (
	OpLaunch    = "launch"
	OpTerminate = "terminate"
	OpDeploy    = "deploy"
)

// Operation is a change to the fleet that tide has started and not yet
// finished. It is stored before the cloud is called, so that after a crash
// the service finds it in InFlight and resumes it instead of starting it
// again: a launch is retried with the same ClientToken, which the cloud
// answers with the instance of the first attempt.
type Operation struct {
	// ID identifies the operation; the caller chooses it (the launch's
	// client token is a good one).
	ID string `json:"id"`
	// Kind is OpLaunch, OpTerminate or OpDeploy.
	Kind  string `json:"kind"`
	Role  string `json:"role"`
	Label string `json:"label,omitempty"`
	// ClientToken is the launch's idempotency token.
	ClientToken string `json:"client_token,omitempty"`
	// InstanceID is set once known (at once for terminate and deploy,
	// after the launch call for a launch).
	InstanceID string    `json:"instance_id,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	// Detail is free text for people (revision deployed, reason).
	Detail string `json:"detail,omitempty"`
	// EndedAt and Result are set on finished operations only.
	EndedAt time.Time `json:"ended_at,omitzero"`
	Result  string    `json:"result,omitempty"`
}

func (op Operation) validate() error {
	if err := checkName("operation id", op.ID); err != nil {
		return err
	}
	switch op.Kind {
	case OpLaunch, OpTerminate, OpDeploy:
	default:
		return fmt.Errorf("operation %s: kind must be %s, %s or %s, not %q", op.ID, OpLaunch, OpTerminate, OpDeploy, op.Kind)
	}
	if op.Role == "" {
		return fmt.Errorf("operation %s: role is required", op.ID)
	}
	if op.Kind == OpLaunch && op.ClientToken == "" {
		return fmt.Errorf("operation %s: a launch needs its client token before the cloud is called", op.ID)
	}
	if op.StartedAt.IsZero() {
		return fmt.Errorf("operation %s: start time is required", op.ID)
	}
	return nil
}

// BeginOperation records an operation as in flight. It fails with an error
// wrapping ErrExists when one with the same ID is in flight already.
func (s *Store) BeginOperation(op Operation) error {
	if err := op.validate(); err != nil {
		return fmt.Errorf("beginning operation: %w", err)
	}
	op.EndedAt, op.Result = time.Time{}, ""
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOperations)
		if b.Get([]byte(op.ID)) != nil {
			return fmt.Errorf("operation %s: %w", op.ID, ErrExists)
		}
		return putJSON(b, []byte(op.ID), op)
	})
	if err != nil {
		return fmt.Errorf("beginning %s of %s: %w", op.Kind, op.Role, err)
	}
	return nil
}

// UpdateOperation replaces an in-flight operation, for example to record
// the instance id a launch returned. It fails with an error wrapping
// ErrNotFound when no operation with that ID is in flight.
func (s *Store) UpdateOperation(op Operation) error {
	if err := op.validate(); err != nil {
		return fmt.Errorf("updating operation: %w", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOperations)
		if b.Get([]byte(op.ID)) == nil {
			return fmt.Errorf("operation %s: %w", op.ID, ErrNotFound)
		}
		return putJSON(b, []byte(op.ID), op)
	})
	if err != nil {
		return fmt.Errorf("updating operation %s: %w", op.ID, err)
	}
	return nil
}

// EndOperation removes an operation from those in flight and keeps it,
// with its result ("ok", or the error's text) and end time at, among the
// finished ones (the newest Options.FinishedOperations are kept). It fails
// with an error wrapping ErrNotFound when the operation is not in flight,
// which a resumed operation ended twice may safely ignore.
func (s *Store) EndOperation(id, result string, at time.Time) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOperations)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("operation %s: %w", id, ErrNotFound)
		}
		var op Operation
		if err := json.Unmarshal(v, &op); err != nil {
			return fmt.Errorf("decoding operation %s: %w", id, err)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		op.EndedAt, op.Result = at, result
		done := tx.Bucket(bucketFinished)
		seq, err := done.NextSequence()
		if err != nil {
			return err
		}
		if err := putJSON(done, seqKey(at, seq), op); err != nil {
			return err
		}
		c := done.Cursor()
		k, _ := c.Last()
		for i := 1; i < s.opts.FinishedOperations && k != nil; i++ {
			k, _ = c.Prev()
		}
		if k == nil {
			return nil
		}
		_, err = pruneBefore(done, append([]byte(nil), k...))
		return err
	})
	if err != nil {
		return fmt.Errorf("ending operation %s: %w", id, err)
	}
	return nil
}

// InFlight returns the operations begun and not ended, oldest first.
func (s *Store) InFlight() ([]Operation, error) {
	var ops []Operation
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOperations).ForEach(func(k, v []byte) error {
			var op Operation
			if err := json.Unmarshal(v, &op); err != nil {
				return fmt.Errorf("decoding operation %s: %w", k, err)
			}
			ops = append(ops, op)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading operations in flight: %w", err)
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].StartedAt.Before(ops[j].StartedAt) })
	return ops, nil
}

// Finished returns the newest finished operations, newest first, at most
// limit (limit <= 0: all kept).
func (s *Store) Finished(limit int) ([]Operation, error) {
	var ops []Operation
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFinished).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(ops) < limit); k, v = c.Prev() {
			var op Operation
			if err := json.Unmarshal(v, &op); err != nil {
				return fmt.Errorf("decoding finished operation: %w", err)
			}
			ops = append(ops, op)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading finished operations: %w", err)
	}
	return ops, nil
}
