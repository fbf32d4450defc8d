// Package steps holds the setup's documented steps, one file per step
// named after it: its plan decision, when it runs (its run-time gate,
// beyond the plan's decision), the activities it calls, by name, and what
// its undo does. registry.go lists them in the documented
// order. The setup workflow and the bench's baselines run the same steps
// through a Caller: futures, local activities and durable timers in the
// workflow, direct calls in the baselines.
package steps

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Future is an activity's pending result.
type Future interface {
	Get(valuePtr any) error
}

// Clock is a run's time: the workflow's clock and durable timers, or the
// wall clock.
type Clock interface {
	// Sleep waits for d (a durable timer in the workflow).
	Sleep(d time.Duration) error
	// Now is the run's time (the workflow's time).
	Now() time.Time
}

// Caller runs a step's activities, by their registered names.
type Caller interface {
	Clock
	// OnPrem schedules an on-prem activity at the tenant's site.
	OnPrem(activity string, arg any) Future
	// CloudRead runs a read-only Graph or Exchange Online activity.
	CloudRead(activity string, arg any) Future
	// CloudWrite runs a Graph or Exchange Online activity that may write.
	CloudWrite(activity string, arg any) Future
	// Plan runs the pure planning function (a local activity in the
	// workflow, so that its answer is recorded).
	Plan(in contract.PlanInput) Future
	// Undo runs one undo record of step at once, even while the run is
	// being cancelled.
	Undo(step string, rec contract.UndoRecord) error
	// Cancelled reports whether the run is being cancelled.
	Cancelled() bool
}

// Step is one documented setup step.
type Step struct {
	Name plan.Step
	// Summary names the step in the Web UI (each of its activities carries
	// it): as Microsoft's manual procedure numbers it, where it has a number.
	Summary string
	// Decide is the step's plan decision, pure, with its reason: the
	// planning local activity runs it (BuildPlan), so that the plan is in
	// the run's history.
	Decide func(plan.Input) plan.Action
	// Gate, when set, may keep the step from running in this run whatever
	// the plan says: a non-empty status is the one it ends with.
	Gate func(r *Run, a plan.Action) (status, detail string)
	// Check: the step runs even when the plan expects no change.
	Check bool
	// Exec runs the step's activities through r.C and records their
	// results in r.
	Exec func(r *Run, a plan.Action) error
	// After names the earlier steps whose results this one needs (Graph):
	// it starts once those the plan holds have ended. AfterAll: every
	// earlier step (verification and what follows it).
	After    []plan.Step
	AfterAll bool
}

// Run is one setup run as a step sees it: the caller that runs this
// step's activities (each step running at the same time as others has its
// own, With) and the run's shared state.
type Run struct {
	// C runs the activities of the step being run.
	C Caller
	*Shared
}

// Shared is what every step of one run reads and records.
type Shared struct {
	L *Ledger
	// Target is the tenant; Plan the recorded plan, Observed what
	// discovery saw before the run wrote anything.
	Target   contract.Target
	Plan     contract.PlanOutput
	Observed plan.Observed
	// SkipSteps are the steps the operator does not want run.
	SkipSteps []string
	// OneCall: a step's on-prem writes share one activity (both auth
	// servers in one call; the setting override refreshes itself).
	OneCall bool
	// AppID of the dedicated application once known.
	AppID string
	// VerifyDeadline and VerifyInterval tune verification (defaults 30m
	// and 15s).
	VerifyDeadline, VerifyInterval time.Duration
	// Verification holds each direction's last verdict.
	Verification *map[string]string
}

// With is the run as a step sees it when its activities go through c.
func (r *Run) With(c Caller) *Run { return &Run{C: c, Shared: r.Shared} }

// Admit decides whether step s runs for action a in this run: not when the
// operator asked to skip it, an earlier step did it already, its gate
// holds it back or the plan expects no change. Otherwise the step's state
// keeps the status it ends with.
func (s Step) Admit(r *Run, a plan.Action) bool {
	st := r.L.State(string(a.Step))
	st.Change, st.Reason = string(a.Change), a.Reason
	if r.Skipped(a.Step) {
		st.Status, st.Detail = StatusSkipped, "skipped by request"
		return false
	}
	if st.Status == StatusDone {
		return false // done by an earlier combined call
	}
	if s.Gate != nil {
		if status, detail := s.Gate(r, a); status != "" {
			st.Status, st.Detail = status, detail
			return false
		}
	}
	switch a.Change {
	case plan.ChangeSkip:
		st.Status = StatusNotNeeded
		return false
	case plan.ChangeNone:
		if !s.Check {
			st.Status, st.Outcome = StatusDone, string(contract.Unchanged)
			return false
		}
	}
	return true
}

// Execute runs the step's activities; a step without any is refused.
func (s Step) Execute(r *Run, a plan.Action) error {
	if s.Exec == nil {
		return temporal.NewNonRetryableApplicationError("no activity for step "+string(a.Step), contract.ErrInvalidInput, nil)
	}
	return s.Exec(r, a)
}

// Skipped reports whether the operator asked not to run step.
func (r *Run) Skipped(step plan.Step) bool { return slices.Contains(r.SkipSteps, string(step)) }

// Planned is the recorded plan's action for step (zero when absent).
func (r *Run) Planned(step plan.Step) plan.Action {
	for _, a := range r.Plan.Actions {
		if a.Step == step {
			return a
		}
	}
	return plan.Action{}
}

// PlannedBefore reports whether the recorded plan runs step a before step
// b. Setups planned before the setting override moved after the connectors
// keep their recorded order.
func (r *Run) PlannedBefore(a, b plan.Step) bool {
	for _, x := range r.Plan.Actions {
		switch x.Step {
		case a:
			return true
		case b:
			return false
		}
	}
	return false
}

// Before is what a step may take as there before this run (its objects as
// discovery saw them, and those the run holds undo records for): a step
// that finds its object after a lost result claims it, with an undo
// record, only when it is not among them.
func (r *Run) Before(step plan.Step) *contract.Before {
	return contract.StepBefore(r.Observed, step, r.Plan.Desired.Mode, r.L.Held())
}

// Record keeps a step's outcome and undo records; a step of several
// activities (the dedicated application) accumulates them.
func (r *Run) Record(step plan.Step, res contract.StepResult) {
	st := r.L.State(string(step))
	acc := contract.StepResult{Outcome: contract.Outcome(st.Outcome), Detail: st.Detail}
	if st.Status != StatusRunning || st.Outcome == "" {
		acc = contract.StepResult{}
	}
	acc.Merge(contract.StepResult{Outcome: res.Outcome, Detail: res.Detail})
	st.Outcome, st.Detail = string(acc.Outcome), acc.Detail
	r.L.Wrote(res.Outcome)
	for _, u := range res.Undo {
		r.L.Push(string(step), u)
	}
	if res.AppID != "" {
		r.AppID = res.AppID
	}
}

// Await waits for a write activity's result and records it; when it
// failed after writing, what it wrote is recorded too, so that
// compensation knows.
func (r *Run) Await(step plan.Step, f Future) error {
	var res contract.StepResult
	if err := f.Get(&res); err != nil {
		if done, ok := contract.FailedProgress(err); ok {
			r.Record(step, done)
		}
		return err
	}
	r.Record(step, res)
	return nil
}

// OnPrem runs an on-prem write activity for step and records its result.
func (r *Run) OnPrem(step plan.Step, activity string, arg any) error {
	return r.Await(step, r.C.OnPrem(activity, arg))
}

// Cloud runs a Graph or Exchange Online write activity for step and
// records its result.
func (r *Run) Cloud(step plan.Step, activity string, arg any) error {
	return r.Await(step, r.C.CloudWrite(activity, arg))
}

// NeedAppID refuses to write an empty application identifier (the
// dedicated-app step was skipped and the application does not exist).
func (r *Run) NeedAppID() error {
	if r.AppID != "" {
		return nil
	}
	return temporal.NewNonRetryableApplicationError("the dedicated application's appId is unknown: the "+string(plan.StepDedicatedApp)+" step did not create it (skipped?); retry after it exists, or abort",
		contract.ErrInvalidInput, nil)
}

// Verified reports whether the first verification passed in this run.
func (r *Run) Verified() bool { return r.L.Status(string(plan.StepVerify)) == StatusDone }
