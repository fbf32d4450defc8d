package activities

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/graph"
)

// TestClassifyGraphKinds: each Graph error kind becomes one stable
// application error type, retryable exactly where asking again can help.
// A list that ran past the page cap is not: a retry would page as long.
func TestClassifyGraphKinds(t *testing.T) {
	cases := []struct {
		kind      graph.Kind
		typ       string
		retryable bool
	}{
		{graph.Throttled, ErrThrottled, true},
		{graph.Server, ErrTransient, true},
		{graph.Forbidden, ErrMissingPermission, false},
		{graph.Unauthorized, ErrMissingPermission, false},
		{graph.Conflict, ErrConflict, false},
		{graph.Ambiguous, ErrConflict, false},
		{graph.Invalid, ErrInvalidInput, false},
		{graph.PageLimit, ErrGraphPageLimit, false},
		// An answer the client could not parse may be a truncated reply.
		{graph.Unknown, "Graphunknown", true},
	}
	for _, c := range cases {
		err := classify("read", &graph.Error{Op: "Op", Kind: c.kind, Message: "m"})
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			t.Fatalf("%v: not an application error: %v", c.kind, err)
		}
		if app.Type() != c.typ || app.NonRetryable() == c.retryable {
			t.Errorf("%v: type %q non-retryable %v, want %q retryable %v", c.kind, app.Type(), app.NonRetryable(), c.typ, c.retryable)
		}
	}
}
