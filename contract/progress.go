package contract

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// FailedProgress returns what a failed step activity had done before it
// failed (its undo records), when it said so; ok is false otherwise.
func FailedProgress(err error) (StepResult, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.HasDetails() {
		return StepResult{}, false
	}
	var r StepResult
	if app.Details(&r) != nil || len(r.Undo) == 0 {
		return StepResult{}, false
	}
	return r, true
}
