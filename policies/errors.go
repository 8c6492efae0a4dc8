package policies

import "fmt"

// SpecError says which field of a window's specification is wrong and why.
// Field is one of "start", "end", "duration", "timezone", "count", "mode",
// "from" or "until".
type SpecError struct {
	Field string
	Err   error
}

// Error returns the field and the reason, e.g. `end: window never ends: ...`.
func (e *SpecError) Error() string { return fmt.Sprintf("%s: %v", e.Field, e.Err) }

// Unwrap returns the underlying reason.
func (e *SpecError) Unwrap() error { return e.Err }

func specErrorf(field, format string, args ...any) *SpecError {
	return &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
}
