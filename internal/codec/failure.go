package codec

import (
	"errors"

	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// FailureConverter is Temporal's default failure converter over dc, with
// error messages and stack traces moved into an encoded payload, that
// also marks a failure caused by a refused unsealed payload (a
// *PlaintextError anywhere in the error's chain) as non-retryable, with
// type PlaintextErrorType. The SDK wraps a payload that cannot be decoded
// in its own error before converting it, so without this an activity
// given a forged input would be retried until its policy gave up.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return failureConverter{temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})}
}

type failureConverter struct{ converter.FailureConverter }

func (f failureConverter) ErrorToFailure(err error) *failurepb.Failure {
	var pe *PlaintextError
	var app *temporal.ApplicationError
	if errors.As(err, &pe) && !errors.As(err, &app) {
		err = temporal.NewNonRetryableApplicationError(err.Error(), PlaintextErrorType, nil)
	}
	return f.FailureConverter.ErrorToFailure(err)
}
