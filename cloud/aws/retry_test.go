package aws

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

func TestThrottleRetryer(t *testing.T) {
	r, err := newRetryer(RetryOptions{MaxAttempts: 3, ThrottleAttempts: 6})
	if err != nil {
		t.Fatal(err)
	}
	throttle := &smithy.GenericAPIError{Code: "RequestLimitExceeded"}
	internal := &smithy.GenericAPIError{Code: "InternalError"}
	capacity := &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity"}
	if got := r.MaxAttempts(); got != 6 {
		t.Errorf("MaxAttempts = %d, want 6", got)
	}
	if r.IsErrorRetryable(capacity) {
		t.Errorf("capacity errors retried")
	}
	if !r.IsErrorRetryable(throttle) {
		t.Errorf("throttles not retried")
	}
	for _, code := range []string{"AuthFailure", "SignatureDoesNotMatch", "RequestExpired"} {
		if r.IsErrorRetryable(&smithy.GenericAPIError{Code: code}) {
			t.Errorf("%s retried", code)
		}
	}
	tests := []struct {
		name     string
		attempt  int
		err      error
		wantStop bool
	}{
		{"throttle early", 1, throttle, false},
		{"throttle past MaxAttempts", 5, throttle, false},
		{"other error within MaxAttempts", 2, internal, false},
		{"other error at MaxAttempts", 3, internal, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := r.RetryDelay(tt.attempt, tt.err)
			if stop := err != nil; stop != tt.wantStop {
				t.Fatalf("RetryDelay(%d, %v) error = %v, want stop %v", tt.attempt, tt.err, err, tt.wantStop)
			}
			if tt.wantStop {
				var mae *retry.MaxAttemptsError
				if !errors.As(err, &mae) || !errors.Is(err, tt.err) {
					t.Errorf("stop error %v does not wrap the cause", err)
				}
			} else if d < 0 || d > DefaultMaxBackoff {
				t.Errorf("delay %s out of bounds", d)
			}
		})
	}
	if _, err := newRetryer(RetryOptions{Mode: "sometimes"}); err == nil {
		t.Errorf("unknown retry mode accepted")
	}
}
