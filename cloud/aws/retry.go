package aws

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// newRetryer builds the SDK retryer from o: the standard or adaptive
// retryer, wrapped so that throttles get o.ThrottleAttempts and other
// retryable errors o.MaxAttempts.
func newRetryer(o RetryOptions) (aws.RetryerV2, error) {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.ThrottleAttempts == 0 {
		o.ThrottleAttempts = DefaultThrottleAttempts
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxAttempts < 1 || o.ThrottleAttempts < 1 {
		return nil, fmt.Errorf("aws retry attempts must be positive (got %d and %d)", o.MaxAttempts, o.ThrottleAttempts)
	}
	std := func(so *retry.StandardOptions) {
		so.MaxAttempts = max(o.MaxAttempts, o.ThrottleAttempts)
		so.MaxBackoff = o.MaxBackoff
		if o.Backoff != nil {
			so.Backoff = o.Backoff
		}
	}
	var inner aws.RetryerV2
	switch o.Mode {
	case "", aws.RetryModeAdaptive:
		inner = retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, std)
		})
	case aws.RetryModeStandard:
		inner = retry.NewStandard(std)
	default:
		return nil, fmt.Errorf("aws retry mode %q: want %q or %q", o.Mode, aws.RetryModeStandard, aws.RetryModeAdaptive)
	}
	return &throttleRetryer{
		RetryerV2: inner,
		attempts:  o.MaxAttempts,
		throttle:  retry.IsErrorThrottles(retry.DefaultThrottles),
	}, nil
}

// throttleRetryer gives throttled calls more attempts than other retryable
// failures, and never retries a capacity error.
type throttleRetryer struct {
	aws.RetryerV2
	attempts int // for retryable errors other than throttles
	throttle retry.IsErrorThrottle
}

var _ aws.RetryerV2 = (*throttleRetryer)(nil)

// IsErrorRetryable reports whether the SDK may retry after err. Capacity
// errors come back as 500s, which the SDK would retry; they are final here.
// Authentication failures (4xx) are final for the SDK already, but for the
// one retry its clock skew correction makes when EC2's Date header shows
// this machine's clock is off (TestAuthFailures, TestClockSkew).
func (r *throttleRetryer) IsErrorRetryable(err error) bool {
	if isCapacity(err) {
		return false
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

// RetryDelay returns the delay before the next attempt, or ends the retries
// of a non-throttle error that has used its attempts.
func (r *throttleRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if attempt >= r.attempts && !r.throttle.IsErrorThrottle(err).Bool() {
		return 0, &retry.MaxAttemptsError{Attempt: attempt, Err: err}
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}

// errorCode returns the EC2 error code err carries, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isCapacity(err error) bool {
	switch errorCode(err) {
	case "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity":
		return true
	}
	return false
}

// authHints maps the codes with which EC2 refuses to authenticate a call to
// what to check.
var authHints = map[string]string{
	"AuthFailure":                "check the access key, that it is active, and the region",
	"InvalidClientTokenId":       "check the access key",
	"MissingAuthenticationToken": "no credentials were sent",
	"SignatureDoesNotMatch":      "check the secret access key; a proxy may have changed the request",
	"IncompleteSignature":        "the request's signature is malformed",
	"RequestExpired":             "check this machine's clock: the request's signing time is too far from EC2's",
}

func isAuth(err error) bool {
	_, ok := authHints[errorCode(err)]
	return ok
}

func isThrottle(err error) bool {
	_, ok := retry.DefaultThrottleErrorCodes[errorCode(err)]
	return ok
}

func isNotFound(err error) bool {
	return errorCode(err) == "InvalidInstanceID.NotFound"
}
