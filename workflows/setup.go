package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/steps"
)

// SetupWorkflowID is the deterministic ID of a tenant's setup: starting the
// same tenant again attaches to the running workflow instead of starting a
// second one.
func SetupWorkflowID(tenantID string) string { return "hybridflow/setup/" + strings.ToLower(tenantID) }

// SetupInput is one tenant's setup request. It carries no secret: the
// credential is a name the worker resolves.
type SetupInput struct {
	Tenant  plan.TenantFacts `json:"tenant"`
	Target  contract.Target  `json:"target"`
	Options SetupOptions     `json:"options"`
}

// SetupOptions tune one run.
type SetupOptions struct {
	// FailurePolicy: pause (default), compensate or fail.
	FailurePolicy string `json:"failure_policy,omitempty"`
	// DryRun discovers and plans, then stops: no writes.
	DryRun bool `json:"dry_run,omitempty"`
	// SkipSteps are plan steps the operator does not want run.
	SkipSteps []string `json:"skip_steps,omitempty"`
	// VerifyDeadline bounds how long verification waits for the
	// configuration to propagate (default 30m); VerifyInterval is the first
	// wait between tries, doubling up to 5m (default 15s).
	VerifyDeadline time.Duration `json:"verify_deadline,omitempty"`
	VerifyInterval time.Duration `json:"verify_interval,omitempty"`
	// Retry tunes every step activity's retry policy (tests shorten it).
	Retry RetryOptions `json:"retry,omitempty"`
	// ScheduleToStart bounds how long a step waits for a worker at the
	// site (default 30m) before it counts as failed and pauses.
	ScheduleToStart time.Duration `json:"schedule_to_start,omitempty"`
	// StartToClose bounds one attempt of a step's activity (default 5m):
	// a worker that dies without reporting is noticed after this long.
	StartToClose time.Duration `json:"start_to_close,omitempty"`
	// ResetFirstPartyKeys makes the legacy-key clean-up remove every key of
	// the Exchange Online first-party service principal, other
	// applications' included (Microsoft's reset), instead of only the
	// Exchange auth certificates. Only an operator's explicit, confirmed
	// request sets it; the plan shows which keys go.
	ResetFirstPartyKeys bool `json:"reset_first_party_keys,omitempty"`
	// LockWait bounds how long the run waits for the tenant's write lock
	// while another workflow holds it (default DefaultLockWait) before it
	// pauses with ErrTenantBusy.
	LockWait time.Duration `json:"lock_wait,omitempty"`
}

// RetryOptions is the part of Temporal's retry policy operators may tune.
type RetryOptions struct {
	InitialInterval time.Duration `json:"initial_interval,omitempty"`
	MaximumInterval time.Duration `json:"maximum_interval,omitempty"`
	MaximumAttempts int32         `json:"maximum_attempts,omitempty"`
}

// SetupState is what the state query returns.
type SetupState struct {
	TenantID     string            `json:"tenant_id"`
	Cloud        string            `json:"cloud"`
	State        string            `json:"state"`
	CurrentStep  string            `json:"current_step,omitempty"`
	Mode         string            `json:"mode,omitempty"`
	ModeReason   string            `json:"mode_reason,omitempty"`
	Plan         []plan.Action     `json:"plan,omitempty"`
	Steps        []*StepState      `json:"steps"`
	Paused       *Pause            `json:"paused,omitempty"`
	LastPause    *Pause            `json:"last_pause,omitempty"` // the most recent pause, kept after its decision
	Warnings     []string          `json:"warnings,omitempty"`
	Verification map[string]string `json:"verification,omitempty"`
	Undo         int               `json:"undo_records"`
	Compensation []string          `json:"compensation,omitempty"`
	Writes       int               `json:"writes"`
	Error        string            `json:"error,omitempty"`
	Desired      *plan.Desired     `json:"desired,omitempty"`
	Result       *contract.Target  `json:"-"`
}

// SetupResult is the workflow's result.
type SetupResult = SetupState

// Step names outside the plan.
const (
	stepDiscover = "discover"
	stepPlan     = "plan"
)

type setup struct {
	// everPaused: this run waited for an operator, so its parent rollout
	// may have handed it over to its next run and waits for a signal.
	everPaused bool
	in         SetupInput
	st         SetupState
	eng        *engine
	// run is the run as its steps see it: the recorded plan, what
	// discovery saw before the run wrote anything, the dedicated
	// application's appId once known.
	run *steps.Run
	// shape is this run's changeLocalCloudSteps version (shapeLocalCloud …).
	shape workflow.Version
	// publishedStep is the step HybridflowStep shows (shapeLocalCloud).
	publishedStep string
	// locking: this run takes the tenant's write lock (changeTenantLock);
	// lock is the lock while it holds it.
	locking bool
	lock    *tenantLock
}

// changeLocalCloudSteps versions the setup's history shape (replay tests
// hold both). From version 1:
//   - Graph and Exchange Online steps run as local activities on the
//     workflow's own worker (the cloud role serves the workflows and the
//     cloud activities on one queue, docs/design.md "Binaries"): a call is
//     one marker event instead of three, with no trip through the server's
//     task queue, and consecutive cloud steps share one workflow task;
//   - HybridflowStep is published with a state change only (paused,
//     failed, verified …), not on every step: a running tenant's step is
//     in the state query, and each upsert was a history event and a
//     visibility write. Filtering paused tenants by step works as before.
//
// Together they cut the server's work per tenant by about a third (make
// bench). On-prem steps stay task-queue activities: they run at the site.
//
// From version 2, a step's on-prem writes share one activity: both auth
// servers in one EnsureAuthServers, and EnsureSettingOverride refreshes
// VariantConfiguration itself. Each on-prem activity is a trip through
// the site's task queue and a workflow task; a failure after a write
// keeps its undo record in the failure's details (and across attempts in
// heartbeat details), so no undo is lost by the merge.
//
// From version 3, every run that writes takes the tenant's write lock
// without asking changeTenantLock (one GetVersion marker and
// TemporalChangeVersion upsert fewer), and the run's close releases it:
// the lock child's parent close policy terminates it, where before the
// run cancelled it and waited for it to close. A setup's history is 11
// events and 2 workflow tasks shorter, the lock's 4 events and 1 task
// (docs/one-writer-per-tenant.md). The next
// holder may find the lock still running for the moment the server takes
// to terminate it, and waits for it as for any holder (lockPollFirst).
//
// From version 4, the planned steps run as a step graph (steps.Graph):
// each starts once the earlier steps it needs have ended, so that
// independent steps (the auth servers, the partner application, the
// on-prem connector and the availability address space; the dedicated
// application beside them) go out in one workflow task and their
// completions share the next ones (docs/design.md, "The step graph").
//
// New shape changes bump this change's version rather than adding a
// change ID: every GetVersion marker also upserts TemporalChangeVersion,
// a history event and a visibility write per setup.
const changeLocalCloudSteps = "setup-local-cloud-steps"

// The versions of changeLocalCloudSteps, each named after what it added.
const (
	shapeLocalCloud  workflow.Version = 1 // cloud steps as local activities
	shapeOneCall     workflow.Version = 2 // a step's on-prem writes in one activity
	shapeLockByClose workflow.Version = 3 // the lock taken without a marker, released by the close
	shapeGraph       workflow.Version = 4 // the step graph; on-prem writes not cancelled
)

// Setup configures OAuth between one tenant's on-prem Exchange and
// Exchange Online: discover → plan → the documented steps in order →
// verify both directions → (dedicated mode) remove the legacy key →
// verify again. A failing step pauses for an operator by default.
func Setup(ctx workflow.Context, in SetupInput) (SetupResult, error) {
	s := &setup{in: in}
	if err := s.setup(ctx); err != nil {
		return s.st, err
	}
	res, err := s.runAll(ctx)
	if s.shape < shapeLockByClose {
		// From v3 the run's close releases the lock (changeLocalCloudSteps).
		s.lock.release(ctx)
	}
	s.lock = nil
	if s.everPaused {
		// A rollout that continued as new while this setup waited for an
		// operator no longer holds its future: tell it how it ended.
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		if f := notifyParent(dctx, TenantOutcome{TenantID: s.in.Tenant.ID, State: res.State, Step: res.CurrentStep, Error: res.Error}); f != nil {
			// Wait for delivery: completing first could drop the signal,
			// and the rollout counts this tenant only from it.
			_ = f.Get(dctx, nil)
		}
	}
	return res, err
}

func (s *setup) setup(ctx workflow.Context) error {
	if s.in.Options.FailurePolicy == "" {
		s.in.Options.FailurePolicy = PolicyPause
	}
	switch s.in.Options.FailurePolicy {
	case PolicyPause, PolicyCompensate, PolicyFail:
	default:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown failure policy %q (pause, compensate, fail)", s.in.Options.FailurePolicy), contract.ErrInvalidInput, nil)
	}
	s.st = SetupState{TenantID: s.in.Tenant.ID, Cloud: s.in.Tenant.Cloud, State: StateRunning}
	var err error
	// Skipping discovery would leave no plan: the run would "finish"
	// having done nothing. Retry or abort only.
	s.eng, err = newEngine(ctx, engineConfig{policy: s.in.Options.FailurePolicy, unskippable: []string{stepDiscover},
		summary: SetupStepSummary, onState: s.setState, undo: s.undo, describe: describeSetupUndo,
		subject: "setup of " + s.in.Tenant.ID, cancelled: "setup cancelled"},
		engineState{Steps: &s.st.Steps, Writes: &s.st.Writes, Compensation: &s.st.Compensation, Error: &s.st.Error})
	if err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (SetupState, error) {
		st := s.st
		st.Paused, st.LastPause = s.eng.op.paused, s.eng.op.last
		st.Undo = len(s.eng.Undo)
		return st, nil
	}); err != nil {
		return err
	}
	o := s.in.Options
	s.run = &steps.Run{Shared: &steps.Shared{L: s.eng.Ledger, Target: s.in.Target, SkipSteps: o.SkipSteps,
		VerifyDeadline: o.VerifyDeadline, VerifyInterval: o.VerifyInterval, Verification: &s.st.Verification}}
	s.shape = workflow.GetVersion(ctx, changeLocalCloudSteps, workflow.DefaultVersion, shapeGraph)
	s.run.OneCall = s.shape >= shapeOneCall
	// The tenant's write lock came as a change of its own, shared with
	// Renewal; from v3 every setup takes it, and the older runs replay
	// asking that change as they did.
	s.locking = s.shape >= shapeLockByClose || workflow.GetVersion(ctx, changeTenantLock, workflow.DefaultVersion, 1) >= 1
	s.publishedStep = stepDiscover
	if startedWith(workflow.GetTypedSearchAttributes(ctx), s.in) {
		// The starter set them (SetupStartAttributes): an upsert would
		// repeat them as another history event and visibility write. The
		// start event holds them, so replay decides the same way.
		return nil
	}
	return workflow.UpsertTypedSearchAttributes(ctx, setupStartUpdates(s.in)...)
}

// setupStartUpdates are the search attributes of a setup that has just
// started.
func setupStartUpdates(in SetupInput) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{SATenant.ValueSet(in.Tenant.ID), SACloud.ValueSet(in.Tenant.Cloud),
		SAState.ValueSet(StateRunning), SAStep.ValueSet(stepDiscover)}
}

// SetupStartAttributes are the search attributes to start a setup with
// (client.StartWorkflowOptions / ChildWorkflowOptions TypedSearchAttributes):
// the workflow then need not upsert them in its first task.
func SetupStartAttributes(in SetupInput) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(setupStartUpdates(in)...)
}

// startedWith reports whether a run's start attributes are exactly
// SetupStartAttributes(in).
func startedWith(sa temporal.SearchAttributes, in SetupInput) bool {
	for _, kv := range []struct {
		key  temporal.SearchAttributeKeyKeyword
		want string
	}{{SATenant, in.Tenant.ID}, {SACloud, in.Tenant.Cloud}, {SAState, StateRunning}, {SAStep, stepDiscover}} {
		if got, ok := sa.GetKeyword(kv.key); !ok || got != kv.want {
			return false
		}
	}
	return true
}

// setState mirrors state and step into search attributes, only on change
// (every upsert is a history event).
func (s *setup) setState(ctx workflow.Context, state, step string) {
	if state != "" && state != s.st.State {
		if p := s.eng.op.paused; state == StatePaused && p != nil {
			s.everPaused = true
			notifyParent(ctx, TenantOutcome{TenantID: s.in.Tenant.ID, State: StatePaused, Step: p.Step, Error: p.Error, ErrorType: p.ErrorType})
		} else if s.st.State == StatePaused {
			notifyParent(ctx, TenantOutcome{TenantID: s.in.Tenant.ID, State: state})
		}
	}
	if s.shape < shapeLocalCloud {
		mirrorState(ctx, &s.st.State, &s.st.CurrentStep, state, step, step)
		return
	}
	if step != "" {
		s.st.CurrentStep = step
	}
	if state == "" || state == s.st.State {
		return
	}
	s.st.State = state
	ups := []temporal.SearchAttributeUpdate{SAState.ValueSet(state)}
	if s.st.CurrentStep != s.publishedStep {
		s.publishedStep = s.st.CurrentStep
		ups = append(ups, SAStep.ValueSet(s.st.CurrentStep))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
}

func (s *setup) runAll(ctx workflow.Context) (SetupResult, error) {
	err := s.eng.finish(ctx, s.runSteps(ctx))
	return s.st, err
}

func (s *setup) runSteps(ctx workflow.Context) error {
	if err := s.eng.do(ctx, stepDiscover, "", s.lockAndDiscover); err != nil {
		return err
	}
	if s.in.Options.DryRun {
		s.setState(ctx, StatePlanned, "")
		return nil
	}
	if err := s.runPlanned(ctx); err != nil {
		return err
	}
	if !s.run.Verified() {
		// The operator skipped verification (or asked to): the changes are
		// in place but nothing proved that they work.
		s.setState(ctx, StateUnverified, "")
		return nil
	}
	s.setState(ctx, StateVerified, "")
	return nil
}

// runPlanned runs the recorded plan's steps: as a step graph from
// changeLocalCloudSteps version 4, in the plan's order before.
func (s *setup) runPlanned(ctx workflow.Context) error {
	if s.shape >= shapeGraph {
		return s.eng.runGraph(ctx, s.planned(), s.run.Graph())
	}
	return s.eng.runSteps(ctx, s.planned())
}

// planned is the recorded plan's actions as the engine's list, each run by
// its step in the registry.
func (s *setup) planned() []engineStep {
	var list []engineStep
	for _, a := range s.run.Plan.Actions {
		step := steps.Lookup(a.Step)
		list = append(list, engineStep{name: string(a.Step), change: string(a.Change),
			admit: func() bool { return step.Admit(s.run, a) },
			run: func(ctx workflow.Context) error {
				return step.Execute(s.run.With(setupCaller{s: s, ctx: ctx}), a)
			}})
	}
	return list
}

// lockAndDiscover takes the tenant's write lock (a run that writes, from
// changeTenantLock on) before discovery reads what the plan and the writes
// build on, and keeps it to the end of the run.
func (s *setup) lockAndDiscover(ctx workflow.Context) error {
	if s.locking && !s.in.Options.DryRun && s.lock == nil {
		l, err := acquireTenantLock(ctx, s.in.Tenant.ID, s.in.Options.LockWait, func() {
			s.eng.State(stepDiscover).Detail = "waiting for " + TenantLockWorkflowID(s.in.Tenant.ID) + ": another workflow is writing this tenant"
		})
		if err != nil {
			return err
		}
		s.lock = l
		s.eng.State(stepDiscover).Detail = ""
	}
	return s.discoverAndPlan(ctx)
}

// discoverAndPlan reads the three systems and plans in a local activity
// (steps.Discover), then shows the plan.
func (s *setup) discoverAndPlan(ctx workflow.Context) error {
	found, err := steps.Discover(setupCaller{s: s, ctx: ctx}, s.in.Tenant, s.in.Target, s.in.Options.ResetFirstPartyKeys)
	if err != nil {
		return err
	}
	out := found.Plan
	s.run.Plan, s.run.Observed, s.run.AppID = out, found.Observed, found.AppID
	s.st.Plan, s.st.Warnings = out.Actions, out.Warnings
	s.st.Mode, s.st.ModeReason = string(out.Desired.Mode), out.Desired.ModeReason
	d := out.Desired
	s.st.Desired = &d
	for _, a := range out.Actions {
		st := s.eng.State(string(a.Step))
		st.Change, st.Reason = string(a.Change), a.Reason
	}
	return nil
}

// OnPremHeartbeatTimeout is how long an on-prem step may go without a
// heartbeat. The on-prem activities heartbeat while they run (a host start
// and a cmdlet may take minutes between them), so a site worker that died
// is noticed after this long rather than after the whole start-to-close
// timeout, and the step is retried.
const OnPremHeartbeatTimeout = time.Minute

func (s *setup) activityOptions(queue string) workflow.ActivityOptions {
	o := s.in.Options
	ao := stepActivityOptions(queue, o.Retry, o.ScheduleToStart, o.StartToClose, true,
		contract.ErrInvalidInput, contract.ErrMissingPermission, contract.ErrUnsupportedVersion, contract.ErrConflict)
	if queue != temporalx.CloudQueue {
		ao.HeartbeatTimeout = OnPremHeartbeatTimeout
	}
	return ao
}

func (s *setup) onprem(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, summarized(ctx, s.activityOptions(temporalx.OnPremQueue(s.in.Target.Site))))
}

func (s *setup) cloud(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, summarized(ctx, s.activityOptions(temporalx.CloudQueue)))
}

// cloudRead runs a read-only Graph or Exchange Online activity.
func (s *setup) cloudRead(ctx workflow.Context, name string, arg any) workflow.Future {
	if s.shape < shapeLocalCloud {
		return workflow.ExecuteActivity(s.cloud(ctx), name, arg)
	}
	return workflow.ExecuteLocalActivity(s.cloudLocal(ctx), name, arg)
}

// cloudWrite runs a Graph or Exchange Online activity that may write. As
// a local activity it runs on a disconnected context: cancelling the
// workflow must not abandon a write in flight, whose undo record the
// compensation needs (the task-queue activity waits for cancellation for
// the same reason).
func (s *setup) cloudWrite(ctx workflow.Context, name string, arg any) workflow.Future {
	if s.shape < shapeLocalCloud {
		return workflow.ExecuteActivity(s.cloud(ctx), name, arg)
	}
	dctx, cancelled := writeContext(ctx)
	if cancelled != nil {
		return cancelled
	}
	return workflow.ExecuteLocalActivity(s.cloudLocal(dctx), name, arg)
}

// writeContext is the context to start a write on: disconnected from
// ctx's cancellation, so that cancelling the workflow does not abandon the
// write in flight (whose undo record the compensation needs). When ctx is
// already cancelled no write starts: cancelled is a future that fails with
// a cancellation, as ExecuteActivity's would.
func writeContext(ctx workflow.Context) (dctx workflow.Context, cancelled workflow.Future) {
	if ctx.Err() != nil {
		f, set := workflow.NewFuture(ctx)
		set.SetError(temporal.NewCanceledError())
		return nil, f
	}
	dctx, _ = workflow.NewDisconnectedContext(ctx)
	return dctx, nil
}

// cloudLocal gives a local activity the task-queue activity's per-attempt
// timeout and retry policy (Retry-After hints arrive as NextRetryDelay,
// which local retries honour too). Attempts bound the retries; the
// schedule-to-close bound is only a backstop, as long as the longest
// Retry-After the clients accept.
func (s *setup) cloudLocal(ctx workflow.Context) workflow.Context {
	o := s.activityOptions(temporalx.CloudQueue)
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: o.StartToCloseTimeout, ScheduleToCloseTimeout: 24 * time.Hour, RetryPolicy: o.RetryPolicy, Summary: summaryIn(ctx)})
}

func verdict(r contract.VerifyResult) string { return steps.Verdict(r) }

// setupCaller runs the setup's steps' activities in the workflow: on-prem
// ones on the site's task queue, cloud ones as local activities (task-queue
// activities before changeLocalCloudSteps version 1), the plan as a local
// activity, waits on durable timers.
type setupCaller struct {
	s   *setup
	ctx workflow.Context
}

// OnPrem schedules an on-prem activity. From changeLocalCloudSteps
// version 4, where several on-prem steps are in flight at once, it runs on
// a disconnected context, as cloudWrite does: cancelling the workflow does
// not cancel a write in flight (a cancelled activity's reply carries no
// result, so the undo record of a write it made would be lost); the step
// records its result, and no new activity starts once the run is
// cancelled.
func (c setupCaller) OnPrem(name string, arg any) steps.Future {
	if c.s.shape < shapeGraph {
		return workflowFuture{c.ctx, workflow.ExecuteActivity(c.s.onprem(c.ctx), name, arg)}
	}
	dctx, cancelled := writeContext(c.ctx)
	if cancelled != nil {
		return workflowFuture{c.ctx, cancelled}
	}
	return workflowFuture{c.ctx, workflow.ExecuteActivity(c.s.onprem(dctx), name, arg)}
}

func (c setupCaller) CloudRead(name string, arg any) steps.Future {
	return workflowFuture{c.ctx, c.s.cloudRead(c.ctx, name, arg)}
}

func (c setupCaller) CloudWrite(name string, arg any) steps.Future {
	return workflowFuture{c.ctx, c.s.cloudWrite(c.ctx, name, arg)}
}

func (c setupCaller) Plan(in contract.PlanInput) steps.Future {
	lctx := workflow.WithLocalActivityOptions(c.ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}, Summary: SetupStepSummary(stepPlan)})
	return workflowFuture{c.ctx, workflow.ExecuteLocalActivity(lctx, contract.ActPlanSetup, in)}
}

// Undo runs on a disconnected context: the restore must happen even when
// the workflow is being cancelled.
func (c setupCaller) Undo(step string, rec contract.UndoRecord) error {
	dctx, cancel := workflow.NewDisconnectedContext(c.ctx)
	defer cancel()
	return c.s.runUndo(withSummary(dctx, undoSummary(SetupStepSummary(step))), rec)
}

func (c setupCaller) Sleep(d time.Duration) error { return workflow.Sleep(c.ctx, d) }
func (c setupCaller) Now() time.Time              { return workflow.Now(c.ctx) }
func (c setupCaller) Cancelled() bool             { return c.ctx.Err() != nil }

// undo is the engine's compensation of one record.
func (s *setup) undo(ctx workflow.Context, e steps.Entry) error {
	return s.runUndo(ctx, e.Rec)
}

// describeSetupUndo names an undo record for the compensation list.
func describeSetupUndo(e steps.Entry) string {
	return e.Step + ": " + steps.DescribeRecord(e.Rec)
}

// runUndo runs one undo record on the activity struct of its system.
func (s *setup) runUndo(ctx workflow.Context, u contract.UndoRecord) error {
	in := contract.UndoInput{Target: s.in.Target, Record: u}
	o := s.activityOptions(temporalx.CloudQueue)
	o.RetryPolicy.MaximumAttempts = 10
	var name string
	switch u.System {
	case contract.SystemOnPrem:
		o.TaskQueue = temporalx.OnPremQueue(s.in.Target.Site)
		o.HeartbeatTimeout = OnPremHeartbeatTimeout
		name = contract.ActUndoOnPrem
	case contract.SystemOnline:
		name = contract.ActUndoOnline
	case contract.SystemEntra:
		name = contract.ActUndoEntra
	default:
		return fmt.Errorf("undo record for unknown system %q", u.System)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, summarized(ctx, o)), name, in).Get(ctx, nil)
}
