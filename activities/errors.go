package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/online"
	"github.com/hybridflow/hybridflow/internal/graph"
)

// nonRetryable returns an application error that Temporal will not retry.
func nonRetryable(typ, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}

// retryable returns an application error Temporal retries per policy.
func retryable(typ, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), typ)
}

// classify turns a backend error into a Temporal application error with a
// stable type, deciding retryability once, here.
// what names the step for the message ("create auth server evoSTS").
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return err // already classified by a callee
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return temporal.NewApplicationErrorWithCause(msg, ErrTransient, err)
	}
	if ge := new(graph.Error); errors.As(err, &ge) {
		switch ge.Kind {
		case graph.Throttled:
			return temporal.NewApplicationErrorWithOptions(msg, ErrThrottled, temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: ge.RetryAfter})
		case graph.Server:
			return temporal.NewApplicationErrorWithOptions(msg, ErrTransient, temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: ge.RetryAfter})
		case graph.Forbidden, graph.Unauthorized:
			return temporal.NewNonRetryableApplicationError(msg, ErrMissingPermission, err)
		case graph.Conflict, graph.Ambiguous:
			return temporal.NewNonRetryableApplicationError(msg, ErrConflict, err)
		case graph.Invalid:
			return temporal.NewNonRetryableApplicationError(msg, ErrInvalidInput, err)
		case graph.PageLimit:
			return temporal.NewNonRetryableApplicationError(msg, ErrGraphPageLimit, err)
		default:
			return temporal.NewApplicationErrorWithCause(msg, "Graph"+ge.Kind.String(), err)
		}
	}
	if d, ok := online.RetryAfter(err); ok {
		return temporal.NewApplicationErrorWithOptions(msg, ErrThrottled, temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: d})
	}
	if ad := new(online.AccessDeniedError); errors.As(err, &ad) {
		return temporal.NewNonRetryableApplicationError(msg, ErrMissingPermission, err)
	}
	if xe := new(exchange.Error); errors.As(err, &xe) {
		typ := exchange.ShortType(xe.Type)
		switch {
		case exchange.HasType(err, exchange.TypeAccessDenied):
			return temporal.NewNonRetryableApplicationError(msg, ErrMissingPermission, err)
		case exchange.Retryable(err):
			return temporal.NewApplicationErrorWithCause(msg, typ, err)
		default:
			return temporal.NewNonRetryableApplicationError(msg, typ, err)
		}
	}
	// Transport errors (connection refused, reset) are worth another try.
	return temporal.NewApplicationErrorWithCause(msg, ErrTransient, err)
}

// skippable reports whether a failed optional read (a mailbox to test
// with, one kind of virtual directory) may be passed over: only when a
// retry cannot bring it (no permission, no such object). A throttled or
// dropped call is retried instead; passing it over would plan on a gap
// that is not there (verification without a mailbox fails).
func skippable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(classify("", err), &app) && app.NonRetryable()
}
