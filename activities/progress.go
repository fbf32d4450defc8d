package activities

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// A step that writes more than once in one activity (both auth servers;
// the setting override and the refresh that loads it) must not lose the
// undo record of an earlier write when a later call fails: a failed
// activity returns no result, and its retry finds the object and reports
// it unchanged. progress keeps what the activity has done so far where
// both outcomes can reach the workflow:
//   - across attempts, as heartbeat details (recorded after a write that
//     more calls follow; the first heartbeat of an attempt is sent at once),
//     which the next attempt reads back and reports as its own;
//   - on the failure the workflow finally sees, as the application
//     error's details (FailedProgress reads them).
//
// Outside an activity (the bench's scripts call activities directly)
// there are no attempts to carry across, so only the error details apply.
type progress struct {
	ctx   context.Context
	inAct bool
	// mu guards result, which keepAlive's heartbeats read.
	mu     sync.Mutex
	result StepResult
}

// startProgress reads what earlier attempts of this activity recorded.
func startProgress(ctx context.Context) *progress {
	p := &progress{ctx: ctx, inAct: activity.IsActivity(ctx)}
	if p.inAct && activity.HasHeartbeatDetails(ctx) {
		var prior StepResult
		if err := activity.GetHeartbeatDetails(ctx, &prior); err == nil {
			prior.Detail = earlierAttempt(prior.Detail)
			p.result = prior
		}
	}
	return p
}

func earlierAttempt(detail string) string {
	if detail == "" {
		return ""
	}
	return "an earlier attempt: " + detail
}

// add folds one call's result in; more says whether calls follow that
// could fail, so the records so far must survive this attempt.
func (p *progress) add(r StepResult, more bool) {
	p.mu.Lock()
	for _, u := range r.Undo {
		if p.has(u) {
			continue
		}
		p.result.Undo = append(p.result.Undo, u)
	}
	r.Undo = nil
	p.result.Merge(r)
	beat := more && p.inAct && len(p.result.Undo) > 0
	p.mu.Unlock()
	if beat {
		activity.RecordHeartbeat(p.ctx, p.details())
	}
}

// details is what a heartbeat carries: the result so far when it holds
// undo records, else nothing.
func (p *progress) details() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.result.Undo) == 0 {
		return nil
	}
	r := p.result
	r.Undo = slices.Clone(r.Undo)
	return r
}

// keepAlive heartbeats with the records so far while the step runs (see
// the package's keepAlive); the caller defers the returned stop.
func (p *progress) keepAlive() (stop func()) { return keepAlive(p.ctx, p.details) }

// holds says whether the result so far has a record of kind for the
// Exchange object name on side sys (case-insensitive, as Exchange names
// are): an earlier attempt recorded it, so finding the object again is
// no reason for a second record.
func (p *progress) holds(sys System, kind, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.result.Undo {
		if v.System == sys && v.Kind == kind && strings.EqualFold(v.Name, name) {
			return true
		}
	}
	return false
}

func (p *progress) has(u UndoRecord) bool {
	for _, v := range p.result.Undo {
		if reflect.DeepEqual(u, v) {
			return true
		}
	}
	return false
}

// done is the activity's result.
func (p *progress) done() StepResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.result.Outcome == "" {
		p.result.Outcome = Unchanged
	}
	return p.result
}

// fail returns err carrying the undo records so far, keeping its type,
// retryability, cause and Retry-After; with nothing to undo, err as is.
func (p *progress) fail(err error) error {
	partial := p.done()
	if err == nil || len(partial.Undo) == 0 {
		return err
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return temporal.NewApplicationErrorWithOptions(err.Error(), ErrTransient, temporal.ApplicationErrorOptions{Cause: err, Details: []any{partial}})
	}
	return temporal.NewApplicationErrorWithOptions(app.Message(), app.Type(), temporal.ApplicationErrorOptions{
		NonRetryable: app.NonRetryable(), Cause: app.Unwrap(), NextRetryDelay: app.NextRetryDelay(),
		Category: app.Category(), Details: []any{partial}})
}
