package workflows

// The step engine: one per workflow run. It owns the run's step states
// (steps.Ledger: the ordered StepState list and the undo stack of
// (step, UndoRecord) entries), the operator's pause / retry / skip / abort
// (the Updates and validators of operator.go), compensation in reverse,
// verification rounds on durable timers, and the end of the run.
//
// Using it from a workflow (Setup and LyncIntegration do; Renewal can):
//
//	e, err := newEngine(ctx, engineConfig{...}, engineState{Steps: &st.Steps,
//		Writes: &st.Writes, Compensation: &st.Compensation, Error: &st.Error})
//	// the query handler shows e.op.paused and len(e.Undo)
//	err = e.do(ctx, name, change, func(ctx workflow.Context) error { ... })
//	// or e.runSteps(ctx, []engineStep{...}) for an ordered list
//	return st, e.finish(ctx, err)
//
//   - engineConfig.summary names a step's activities (Web UI summaries);
//     onState mirrors state and step into the workflow's state and search
//     attributes: a workflow that shows steps differently (Renewal's
//     emergency- prefix) does so in its own onState.
//   - engineConfig.undo runs one undo record during compensation, and
//     describe names it in the compensation list. A workflow that never
//     compensates (Renewal: the next run resumes) leaves undo nil and sets
//     noUndoCancelled / noUndoAborted, the texts its cancelled and aborted
//     runs end with; it may still record undo records (e.Push) for the
//     query's count.
//   - e.State(name) is a step's StepState (added on first use, in order);
//     e.Push(step, recs...) records undo records; e.Wrote(outcome) counts a
//     write.
//   - e.verifyRounds(ctx, deadline, interval, try) runs verification
//     rounds with doubling waits (steps.Rounds on durable timers).

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/steps"
)

// engine runs one workflow's steps.
type engine struct {
	*steps.Ledger
	op      operator
	cfg     engineConfig
	errText *string
}

// engineConfig is what a workflow tells the engine about itself.
type engineConfig struct {
	// policy is the failure policy; unskippable names steps an operator
	// may retry or abort but not skip.
	policy      string
	unskippable []string
	// summary is the activity summary of a step's activities.
	summary func(step string) string
	// onState mirrors state and step into the workflow's state.
	onState func(ctx workflow.Context, state, step string)
	// undo runs one undo record; nil: the workflow never compensates.
	undo func(ctx workflow.Context, e steps.Entry) error
	// describe names an undo record in the compensation list.
	describe func(e steps.Entry) string
	// subject names the run in its end ("setup of t1"), cancelled is the
	// start of a cancelled run's error ("setup cancelled").
	subject, cancelled string
	// noUndoCancelled and noUndoAborted end the runs of a workflow that
	// never compensates.
	noUndoCancelled string
	noUndoAborted   func() string
}

// engineState is where the engine keeps what the state query shows.
type engineState struct {
	Steps        *[]*StepState
	Writes       *int
	Compensation *[]string
	Error        *string
}

// newEngine registers the operator's updates.
func newEngine(ctx workflow.Context, cfg engineConfig, st engineState) (*engine, error) {
	e := &engine{Ledger: steps.NewLedger(st.Steps, st.Writes, st.Compensation), cfg: cfg, errText: st.Error}
	e.op = operator{policy: cfg.policy, onState: cfg.onState, unskippable: cfg.unskippable}
	if err := e.op.register(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// engineStep is one entry of a workflow's ordered list of steps: admit
// (when set) decides, and records, whether it runs at all; run is its
// work under the operator loop.
type engineStep struct {
	name, change string
	admit        func() bool
	run          func(workflow.Context) error
}

// runSteps runs the list in order, stopping at the first error.
func (e *engine) runSteps(ctx workflow.Context, list []engineStep) error {
	for _, s := range list {
		if s.admit != nil && !s.admit() {
			continue
		}
		if err := e.do(ctx, s.name, s.change, s.run); err != nil {
			return err
		}
	}
	return nil
}

// runGraph runs the list as a step graph: each step starts once the steps
// it waits for (deps[i], indices into list) have ended, so that
// independent steps' activities go out in one workflow task and their
// completions share the next ones. Each step runs in a workflow coroutine
// under the operator loop; pauses take turns (one at a time, as the
// updates expect), and no step starts while one waits for an operator.
// After an abort, a failure or a cancellation no further step starts, and
// the run ends with the first of them once every started step has ended:
// a write in flight is never abandoned, and its undo record is kept.
func (e *engine) runGraph(ctx workflow.Context, list []engineStep, deps [][]int) error {
	ended := make([]bool, len(list))
	var first error
	for i, s := range list {
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { ended[i] = true }()
			err := workflow.Await(ctx, func() bool {
				return e.op.halted || (e.op.idle() && allEnded(ended, deps[i]))
			})
			if err == nil && !e.op.halted && (s.admit == nil || s.admit()) {
				err = e.do(ctx, s.name, s.change, s.run)
			}
			if err != nil && first == nil {
				first = err
				e.op.halted = true
			}
		})
	}
	// Wait on a disconnected context: a cancelled run still waits for its
	// steps to end before it compensates.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if err := workflow.Await(dctx, func() bool { return !slices.Contains(ended, false) }); err != nil {
		return err
	}
	if first == nil && ctx.Err() != nil {
		// Cancelled while the last steps' writes finished: the run still
		// ends cancelled, and compensates them.
		first = temporal.NewCanceledError()
	}
	return first
}

// allEnded reports whether the steps idx names have ended.
func allEnded(ended []bool, idx []int) bool {
	for _, j := range idx {
		if !ended[j] {
			return false
		}
	}
	return true
}

// do runs one step under the operator's pause / retry / skip / abort loop.
// An abort comes back as an *abortError (errAborted).
func (e *engine) do(ctx workflow.Context, name, change string, f func(workflow.Context) error) error {
	st := e.State(name)
	if change != "" {
		st.Change = change
	}
	aborted, cause, err := e.op.runStep(withSummary(ctx, e.cfg.summary(name)), st, f)
	if err != nil || !aborted {
		return err
	}
	ab := &abortError{step: name}
	if e.op.policy == PolicyCompensate {
		ab.cause = cause
	}
	return ab
}

// finish ends the run: the steps' error becomes the workflow's, after
// compensation when the run was aborted or cancelled.
func (e *engine) finish(ctx workflow.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errAborted) || temporal.IsCanceledError(err) || ctx.Err() != nil:
		if e.cfg.undo == nil {
			return e.stop(ctx, err)
		}
		return e.abort(ctx, err)
	}
	*e.errText = err.Error()
	e.cfg.onState(ctx, StateFailed, "")
	return err
}

// abort undoes the run's changes (on a disconnected context, so that a
// cancelled workflow still undoes them) and says how it ended.
func (e *engine) abort(ctx workflow.Context, err error) error {
	cancelled := ctx.Err() != nil
	var ab *abortError
	if errors.As(err, &ab) && ab.cause != nil {
		// Policy compensate: keep the failure that started it.
		*e.errText = fmt.Sprintf("step %s failed: %s", ab.step, ab.cause.Error())
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	n, cerr := e.compensate(dctx)
	e.cfg.onState(dctx, StateAborted, "")
	undone := fmt.Sprintf("%d change(s) undone", n)
	if cerr != nil {
		// Never claim an undo that did not happen, not even on cancel.
		msg := fmt.Sprintf("%s stopped; compensation failed (%s): %v", e.cfg.subject, undone, cerr)
		*e.errText = strings.TrimPrefix(*e.errText+"; "+msg, "; ")
		return temporal.NewNonRetryableApplicationError(msg, ErrCompensationFailed, cerr)
	}
	if cancelled {
		return temporal.NewCanceledError(e.cfg.cancelled + "; " + undone)
	}
	msg := fmt.Sprintf("%s aborted; %s", e.cfg.subject, undone)
	if *e.errText != "" {
		msg += ": " + *e.errText
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrAborted, ab.causeOrNil())
}

// stop ends an aborted or cancelled run of a workflow that never
// compensates.
func (e *engine) stop(ctx workflow.Context, err error) error {
	if temporal.IsCanceledError(err) || ctx.Err() != nil {
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		e.cfg.onState(dctx, StateAborted, "")
		return temporal.NewCanceledError(e.cfg.noUndoCancelled)
	}
	e.cfg.onState(ctx, StateAborted, "")
	return temporal.NewNonRetryableApplicationError(e.cfg.noUndoAborted(), ErrAborted, nil)
}

// compensate runs the undo records in reverse and returns how many
// succeeded; the steps whose records all succeeded become compensated.
func (e *engine) compensate(ctx workflow.Context) (int, error) {
	e.cfg.onState(ctx, StateCompensating, "")
	var errs []error
	undone := 0
	failed := map[string]bool{}
	for i := len(e.Undo) - 1; i >= 0; i-- {
		u := e.Undo[i]
		what := e.cfg.describe(u)
		if err := e.cfg.undo(withSummary(ctx, undoSummary(e.cfg.summary(u.Step))), u); err != nil {
			errs = append(errs, err)
			failed[u.Step] = true
			e.Note(fmt.Sprintf("FAILED %s: %v", what, err))
			continue
		}
		e.Note(what)
		undone++
	}
	for _, u := range e.Undo {
		if st := e.Lookup(u.Step); st != nil && !failed[u.Step] {
			st.Status = StatusCompensated
		}
	}
	e.Undo = nil
	return undone, errors.Join(errs...)
}

// verifyRounds runs try until it reports done, on durable timers with
// doubling waits (steps.Rounds).
func (e *engine) verifyRounds(ctx workflow.Context, deadline, interval time.Duration, try func(round int) (bool, error)) (int, bool, error) {
	return steps.Rounds(workflowClock{ctx}, deadline, interval, try)
}

// workflowClock is the workflow's time and durable timers.
type workflowClock struct{ ctx workflow.Context }

func (c workflowClock) Sleep(d time.Duration) error { return workflow.Sleep(c.ctx, d) }
func (c workflowClock) Now() time.Time              { return workflow.Now(c.ctx) }

// workflowFuture adapts a workflow future to steps.Future.
type workflowFuture struct {
	ctx workflow.Context
	f   workflow.Future
}

func (f workflowFuture) Get(v any) error { return f.f.Get(f.ctx, v) }
