package server

import (
	"context"
	"net/http"
	"strings"
)

// startAction runs an action (apply, deploy, rollback) in the background,
// one at a time, under the server's own context (a client that hangs up
// does not cancel a launch half-way). It returns the status the client gets, or a 409 when
// another action is running.
func (s *Server) startAction(st ActionStatus, fn func(ctx context.Context) (*ActionResult, error)) (ActionStatus, error) {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	if err := s.runningLocked(); err != nil {
		return ActionStatus{}, err
	}
	if s.actCtx.Err() != nil {
		return ActionStatus{}, errorf(http.StatusServiceUnavailable, "the server is shutting down")
	}
	st.Started, st.Running = s.o.Clock.Now(), true
	cur := st
	s.action = &cur
	s.actWG.Add(1)
	go func() {
		defer s.actWG.Done()
		ctx, cancel := context.WithTimeout(s.actCtx, s.o.ActionTimeout)
		defer cancel()
		attrs := []any{"kind", st.Kind}
		if st.App != "" {
			attrs = append(attrs, "app", st.App, "revision", st.Revision)
		}
		if len(st.Labels) > 0 {
			attrs = append(attrs, "labels", strings.Join(st.Labels, ","), "discard_data", st.DiscardData)
			if st.Reason != "" {
				attrs = append(attrs, "reason", st.Reason)
			}
		}
		s.logger.Info("action started", attrs...)
		res, err := fn(ctx)
		s.actMu.Lock()
		defer s.actMu.Unlock()
		done := s.o.Clock.Now()
		s.action.Running, s.action.Finished, s.action.Result = false, &done, res
		if err != nil {
			s.action.Error = err.Error()
			s.logger.Error("action failed", "kind", st.Kind, "err", err)
			return
		}
		s.logger.Info("action finished", "kind", st.Kind, "duration", done.Sub(st.Started))
	}()
	return st, nil
}

// noResult adapts an action that reports no result to startAction.
func noResult(fn func(ctx context.Context) error) func(ctx context.Context) (*ActionResult, error) {
	return func(ctx context.Context) (*ActionResult, error) { return nil, fn(ctx) }
}

// actionRunning returns the 409 of an action still running, or nil.
func (s *Server) actionRunning() error {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	return s.runningLocked()
}

// runningLocked is actionRunning with actMu held.
func (s *Server) runningLocked() error {
	if s.action != nil && s.action.Running {
		return errorf(http.StatusConflict, "a %s started at %s is still running", s.action.Kind, s.action.Started.Format("15:04:05"))
	}
	return nil
}

// actionStatus returns a copy of the latest action's status, or nil.
func (s *Server) actionStatus() *ActionStatus {
	s.actMu.Lock()
	defer s.actMu.Unlock()
	if s.action == nil {
		return nil
	}
	cp := *s.action
	return &cp
}
