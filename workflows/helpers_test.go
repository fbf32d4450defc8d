package workflows_test

import (
	"errors"
	"strings"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

func lower(s string) string { return strings.ToLower(s) }

// continueAsNew exposes the next run's input of a continue-as-new error.
type continueAsNew struct{ e *workflow.ContinueAsNewError }

func (c continueAsNew) Get(v any) error {
	return converter.GetDefaultDataConverter().FromPayloads(c.e.Input, v)
}

func asContinueAsNew(err error) (continueAsNew, bool) {
	var e *workflow.ContinueAsNewError
	if errors.As(err, &e) {
		return continueAsNew{e}, true
	}
	return continueAsNew{}, false
}
