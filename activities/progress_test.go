package activities

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
)

// TestProgressFailKeepsTheError: carrying undo records must not change
// how Temporal treats the failure (type, retryability, Retry-After).
func TestProgressFailKeepsTheError(t *testing.T) {
	undo := UndoRecord{System: SystemOnPrem, Kind: UndoRemoveAuthServer, Name: "evoSTS"}
	cases := []struct {
		name      string
		err       error
		written   bool
		wantType  string
		wantRetry bool
		wantDelay time.Duration
	}{
		{"retryable, throttled", temporal.NewApplicationErrorWithOptions("slow down", ErrThrottled, temporal.ApplicationErrorOptions{NextRetryDelay: 3 * time.Second}), true, ErrThrottled, true, 3 * time.Second},
		{"non-retryable", nonRetryable(ErrConflict, "not ours"), true, ErrConflict, false, 0},
		{"unclassified", errors.New("connection reset"), true, ErrTransient, true, 0},
		{"nothing written", nonRetryable(ErrConflict, "not ours"), false, ErrConflict, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startProgress(context.Background())
			if c.written {
				p.add(StepResult{Outcome: Created, Detail: "created auth server evoSTS", Undo: []UndoRecord{undo}}, true)
			}
			err := p.fail(c.err)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != c.wantType || app.NonRetryable() == c.wantRetry || app.NextRetryDelay() != c.wantDelay {
				t.Fatalf("fail(%v) = %v", c.err, err)
			}
			got, ok := FailedProgress(err)
			if ok != c.written || (ok && (got.Outcome != Created || len(got.Undo) != 1 || !reflect.DeepEqual(got.Undo[0], undo))) {
				t.Fatalf("FailedProgress = %+v, %v", got, ok)
			}
		})
	}
}

// TestProgressAddsEachUndoOnce: a record an earlier attempt reported is
// not repeated when this attempt reports it too.
func TestProgressAddsEachUndoOnce(t *testing.T) {
	u := UndoRecord{System: SystemOnPrem, Kind: UndoRemoveSettingOverride, Name: "x"}
	p := startProgress(context.Background())
	p.add(StepResult{Outcome: Created, Undo: []UndoRecord{u}}, false)
	p.add(StepResult{Outcome: Unchanged, Undo: []UndoRecord{u}}, false)
	if r := p.done(); len(r.Undo) != 1 || r.Outcome != Created {
		t.Fatalf("%+v", r)
	}
}
