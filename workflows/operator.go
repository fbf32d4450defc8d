package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/steps"
)

// Operator updates. A step whose activity still fails after its retry
// policy pauses the workflow; an operator answers with one of these.
const (
	UpdateRetry = "retry" // run the failed step again
	UpdateSkip  = "skip"  // mark it skipped and go on
	UpdateAbort = "abort" // undo this run's changes in reverse and stop
)

// QueryState returns the workflow's plan and per-step state.
const QueryState = "state"

// Failure policies: what a step failure that survives retries does.
const (
	PolicyPause      = "pause"      // wait for retry / skip / abort (default)
	PolicyCompensate = "compensate" // undo this run's changes, then fail
	PolicyFail       = "fail"       // fail as is, leaving changes in place
)

// Step statuses as shown by the query and the HybridflowState attribute.
const (
	StatusPending     = steps.StatusPending
	StatusRunning     = steps.StatusRunning
	StatusDone        = steps.StatusDone
	StatusSkipped     = steps.StatusSkipped
	StatusPaused      = steps.StatusPaused
	StatusFailed      = steps.StatusFailed
	StatusCompensated = steps.StatusCompensated
	StatusNotNeeded   = steps.StatusNotNeeded
)

// Workflow-level states (HybridflowState).
const (
	StateRunning      = "running"
	StatePaused       = "paused"
	StateVerified     = "verified"
	StateUnverified   = "unverified" // finished, but verification was skipped: nothing proved the trust works
	StatePlanned      = "planned"    // dry run finished
	StateCompensating = "compensating"
	StateAborted      = "aborted"
	StateFailed       = "failed"
)

// StepState is one step's progress as the query shows it.
type StepState = steps.StepState

// Pause describes what the workflow is waiting on.
type Pause struct {
	Step      string    `json:"step"`
	Error     string    `json:"error"`
	ErrorType string    `json:"error_type"`
	Since     time.Time `json:"since"`
}

// OperatorAction is an update's argument (optional note for the history).
type OperatorAction struct {
	Reason string `json:"reason,omitempty"`
}

// Error types a setup run ends with (besides a step's own type under
// policy fail).
const (
	ErrAborted            = "Aborted"                   // operator abort or policy compensate; this run's changes were undone
	ErrCompensationFailed = steps.ErrCompensationFailed // an undo (or the legacy-key restore) failed: look at the compensation list
)

// errAborted ends a run after an operator abort or a compensate policy.
var errAborted = errors.New("aborted")

// abortError is errAborted for one step; cause is the step's failure when
// the policy (not an operator) aborted.
type abortError struct {
	step  string
	cause error
}

func (e *abortError) Error() string        { return "aborted at step " + e.step }
func (e *abortError) Is(target error) bool { return target == errAborted }
func (e *abortError) Unwrap() error        { return e.cause }

func (e *abortError) causeOrNil() error {
	if e == nil {
		return nil
	}
	return e.cause
}

// operator is the pause / decision machinery shared by the setup and Lync
// workflows: it registers the three updates, and turns a step failure into
// a pause that waits for a decision.
type operator struct {
	policy string
	paused *Pause
	// last is the most recent pause, kept after its decision: the CLI
	// names a decision after the pause it answers (see the query's
	// last_pause), so that sending it again is the same Update.
	last     *Pause
	decision string
	// onState lets the owner mirror state into search attributes.
	onState func(ctx workflow.Context, state, step string)
	// unskippable names steps an operator may retry or abort but not skip
	// (the setup's discovery: without it there is no plan).
	unskippable []string
	// Steps running at the same time (engine.runGraph): queued counts
	// failed steps waiting for their turn to pause; halted is set once
	// one of them aborted, failed or was cancelled, and ends the others'
	// wait with an abort.
	queued int
	halted bool
	// applied remembers the last decisions by Update ID, so that an
	// Update delivered a second time gets the first delivery's answer
	// instead of a rejection (see validate).
	applied []appliedDecision
}

// appliedDecision is one operator decision taken, by its Update ID.
type appliedDecision struct{ id, step string }

// maxApplied bounds operator.applied: a re-delivery follows the first
// within seconds, and a workflow sees few decisions.
const maxApplied = 8

// idle reports whether no step waits for an operator: only then may
// another step start.
func (o *operator) idle() bool { return o.paused == nil && o.queued == 0 }

func (o *operator) register(ctx workflow.Context) error {
	for _, name := range []string{UpdateRetry, UpdateSkip, UpdateAbort} {
		name := name
		err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(ctx workflow.Context, _ OperatorAction) (string, error) {
				return o.apply(name, updateID(ctx)), nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, _ OperatorAction) error {
				return o.validate(name, updateID(ctx))
			}})
		if err != nil {
			return fmt.Errorf("register update %s: %w", name, err)
		}
	}
	return nil
}

func updateID(ctx workflow.Context) string {
	if info := workflow.GetCurrentUpdateInfo(ctx); info != nil {
		return info.ID
	}
	return ""
}

// validate accepts decision name (Update id) only while a step waits for
// an operator and no decision is being applied, or when id is a decision
// already taken. Temporal deduplicates Updates by ID, and the handlers do
// too: a copy of an applied Update that reaches the workflow again must
// get the first answer, since rejecting it would tell the operator that a
// decision which was applied failed. The chaos suite once saw exactly
// that answer for a retry whose acceptance is in the history.
func (o *operator) validate(name, id string) error {
	if _, ok := o.appliedStep(id); ok {
		return nil
	}
	if o.paused == nil {
		return fmt.Errorf("%s: the workflow is not paused; %s is accepted only while a step waits for an operator", name, name)
	}
	if o.decision != "" {
		return fmt.Errorf("%s: a decision (%s) is already being applied", name, o.decision)
	}
	if name == UpdateSkip && slices.Contains(o.unskippable, o.paused.Step) {
		return fmt.Errorf("skip: step %s cannot be skipped (nothing after it can run without it); retry or abort", o.paused.Step)
	}
	return nil
}

// apply takes decision name for the paused step and returns the step; a
// decision already taken under id returns its step and changes nothing.
func (o *operator) apply(name, id string) string {
	if step, ok := o.appliedStep(id); ok {
		return step
	}
	step := o.paused.Step
	o.decision = name
	if id != "" {
		o.applied = append(o.applied, appliedDecision{id: id, step: step})
		if len(o.applied) > maxApplied {
			o.applied = o.applied[1:]
		}
	}
	return step
}

// appliedStep is the step of the decision taken under Update id, if any.
func (o *operator) appliedStep(id string) (string, bool) {
	if id == "" {
		return "", false
	}
	for _, a := range o.applied {
		if a.id == id {
			return a.step, true
		}
	}
	return "", false
}

// onFailure decides what a failed step does next according to the policy:
// it returns UpdateRetry, UpdateSkip or UpdateAbort.
func (o *operator) onFailure(ctx workflow.Context, st *StepState, err error) (string, error) {
	switch o.policy {
	case PolicyFail:
		return "", err
	case PolicyCompensate:
		return UpdateAbort, nil
	}
	// Another step may be paused: wait for its decision first.
	o.queued++
	werr := workflow.Await(ctx, func() bool { return o.paused == nil || o.halted })
	o.queued--
	if werr != nil {
		return "", werr // cancelled while waiting
	}
	if o.halted {
		return UpdateAbort, nil // another step's abort ends the run
	}
	o.paused = &Pause{Step: st.Step, Error: st.LastError, ErrorType: st.ErrorType, Since: workflow.Now(ctx)}
	o.last = o.paused
	st.Status = StatusPaused
	o.setState(ctx, StatePaused, st.Step)
	workflow.GetLogger(ctx).Warn("step paused for an operator", "step", st.Step, "error", st.LastError, "error_type", st.ErrorType)
	if werr := workflow.Await(ctx, func() bool { return o.decision != "" }); werr != nil {
		o.paused = nil
		return "", werr // cancelled while paused
	}
	d := o.decision
	o.decision, o.paused = "", nil
	workflow.GetLogger(ctx).Info("operator decided", "step", st.Step, "decision", d)
	o.setState(ctx, StateRunning, st.Step)
	return d, nil
}

func (o *operator) setState(ctx workflow.Context, state, step string) {
	if o.onState != nil {
		o.onState(ctx, state, step)
	}
}

// describeError extracts the message and the stable type of an activity
// failure for the query and the pause.
func describeError(err error) (msg, typ string) { return steps.DescribeError(err) }

// runStep runs one step under the pause / retry / skip / abort loop that
// every workflow shares. It returns aborted=true with the step's last error
// when the operator (or the compensate policy) aborts; err is a
// cancellation or an error the policy passes through (fail). The caller
// turns an abort into its own error and compensation.
func (o *operator) runStep(ctx workflow.Context, st *StepState, f func(workflow.Context) error) (aborted bool, cause error, err error) {
	for {
		o.setState(ctx, StateRunning, st.Step)
		st.Status, st.Started = StatusRunning, workflow.Now(ctx)
		st.Outcome, st.Detail = "", ""
		st.Attempts++
		ferr := f(ctx)
		st.Finished = workflow.Now(ctx)
		if ferr == nil {
			if st.Status == StatusRunning {
				st.Status = StatusDone
			}
			return false, nil, nil
		}
		if temporal.IsCanceledError(ferr) || ctx.Err() != nil {
			return false, nil, ferr
		}
		st.Status = StatusFailed
		st.LastError, st.ErrorType = describeError(ferr)
		decision, derr := o.onFailure(ctx, st, ferr)
		if derr != nil {
			return false, nil, derr
		}
		switch decision {
		case UpdateRetry:
			continue
		case UpdateSkip:
			st.Status = StatusSkipped
			return false, nil, nil
		default:
			st.Status = StatusFailed // no longer paused; compensation follows
			return true, ferr, nil
		}
	}
}

// mirrorState records a workflow's state and current step and upserts the
// search attributes that changed, only on change: every upsert is a
// history event. saStep is the step as the attribute shows it.
func mirrorState(ctx workflow.Context, curState, curStep *string, state, step, saStep string) {
	var ups []temporal.SearchAttributeUpdate
	if state != "" && state != *curState {
		*curState = state
		ups = append(ups, SAState.ValueSet(state))
	}
	if step != "" && step != *curStep {
		*curStep = step
		ups = append(ups, SAStep.ValueSet(saStep))
	}
	if len(ups) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
			workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
		}
	}
}

// stepActivityOptions are the options of a step's activities in every
// workflow: exponential retries the operator may shorten (RetryOptions),
// the workflow's own non-retryable error types, a bound on waiting for a
// worker at the site (default 30m) and on one attempt (default
// config.StepStartToClose, which the worker config's shell timeouts are
// checked against).
// waitForCancel makes a cancelled workflow wait for an in-flight write,
// so that it is recorded and compensated instead of left behind.
func stepActivityOptions(queue string, o RetryOptions, scheduleToStart, startToClose time.Duration, waitForCancel bool, nonRetryable ...string) workflow.ActivityOptions {
	r := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5,
		NonRetryableErrorTypes: nonRetryable}
	if o.InitialInterval > 0 {
		r.InitialInterval = o.InitialInterval
	}
	if o.MaximumInterval > 0 {
		r.MaximumInterval = o.MaximumInterval
	}
	if o.MaximumAttempts > 0 {
		r.MaximumAttempts = o.MaximumAttempts
	}
	if scheduleToStart == 0 {
		scheduleToStart = 30 * time.Minute
	}
	if startToClose == 0 {
		startToClose = config.StepStartToClose
	}
	return workflow.ActivityOptions{TaskQueue: queue, StartToCloseTimeout: startToClose, ScheduleToStartTimeout: scheduleToStart,
		RetryPolicy: r, WaitForCancellation: waitForCancel}
}
