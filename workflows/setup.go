package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
)

// SetupWorkflowID is the deterministic ID of a tenant's setup: starting the
// same tenant again attaches to the running workflow instead of starting a
// second one.
func SetupWorkflowID(tenantID string) string { return "hybridflow/setup/" + strings.ToLower(tenantID) }

// SetupInput is one tenant's setup request. It carries no secret: the
// credential is a name the worker resolves.
type SetupInput struct {
	Tenant  plan.TenantFacts  `json:"tenant"`
	Target  activities.Target `json:"target"`
	Options SetupOptions      `json:"options"`
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
	TenantID     string             `json:"tenant_id"`
	Cloud        string             `json:"cloud"`
	State        string             `json:"state"`
	CurrentStep  string             `json:"current_step,omitempty"`
	Mode         string             `json:"mode,omitempty"`
	ModeReason   string             `json:"mode_reason,omitempty"`
	Plan         []plan.Action      `json:"plan,omitempty"`
	Steps        []*StepState       `json:"steps"`
	Paused       *Pause             `json:"paused,omitempty"`
	Warnings     []string           `json:"warnings,omitempty"`
	Verification map[string]string  `json:"verification,omitempty"`
	Undo         int                `json:"undo_records"`
	Compensation []string           `json:"compensation,omitempty"`
	Writes       int                `json:"writes"`
	Error        string             `json:"error,omitempty"`
	Desired      *plan.Desired      `json:"desired,omitempty"`
	Result       *activities.Target `json:"-"`
}

// SetupResult is the workflow's result.
type SetupResult = SetupState

// undoEntry is one undo record and the step whose change it reverses, so
// that compensation marks exactly the steps it reversed.
type undoEntry struct {
	step string
	rec  activities.UndoRecord
}

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
	op         operator
	undo       []undoEntry
	steps      map[string]*StepState
	// appID of the dedicated application once known.
	appID string
	out   activities.PlanOutput
	// observed is what discovery saw before the run wrote anything: a
	// step that finds its object there after a lost result claims it only
	// when discovery did not see it (activities.StepBefore).
	observed plan.Observed
	// v1, v2: this run has changeLocalCloudSteps version 1, 2.
	v1, v2 bool
	// publishedStep is the step HybridflowStep shows (v1).
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
// New shape changes bump this change's version rather than adding a
// change ID: every GetVersion marker also upserts TemporalChangeVersion,
// a history event and a visibility write per setup.
const changeLocalCloudSteps = "setup-local-cloud-steps"

// Setup configures OAuth between one tenant's on-prem Exchange and
// Exchange Online: discover → plan → the documented steps in order →
// verify both directions → (dedicated mode) remove the legacy key →
// verify again. A failing step pauses for an operator by default.
func Setup(ctx workflow.Context, in SetupInput) (SetupResult, error) {
	s := &setup{in: in, steps: map[string]*StepState{}}
	if err := s.setup(ctx); err != nil {
		return s.st, err
	}
	res, err := s.run(ctx)
	s.lock.release(ctx)
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
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown failure policy %q (pause, compensate, fail)", s.in.Options.FailurePolicy), activities.ErrInvalidInput, nil)
	}
	s.st = SetupState{TenantID: s.in.Tenant.ID, Cloud: s.in.Tenant.Cloud, State: StateRunning}
	// Skipping discovery would leave no plan: the run would "finish"
	// having done nothing. Retry or abort only.
	s.op = operator{policy: s.in.Options.FailurePolicy, onState: s.setState, unskippable: []string{stepDiscover}}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (SetupState, error) {
		st := s.st
		st.Paused = s.op.paused
		st.Undo = len(s.undo)
		return st, nil
	}); err != nil {
		return err
	}
	if err := s.op.register(ctx); err != nil {
		return err
	}
	v := workflow.GetVersion(ctx, changeLocalCloudSteps, workflow.DefaultVersion, 2)
	s.v1, s.v2 = v >= 1, v >= 2
	// The tenant's write lock is one change shared with Renewal, so it has
	// its own change ID rather than a version of the shape above.
	s.locking = workflow.GetVersion(ctx, changeTenantLock, workflow.DefaultVersion, 1) >= 1
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
		if state == StatePaused && s.op.paused != nil {
			s.everPaused = true
			notifyParent(ctx, TenantOutcome{TenantID: s.in.Tenant.ID, State: StatePaused, Step: s.op.paused.Step, Error: s.op.paused.Error, ErrorType: s.op.paused.ErrorType})
		} else if s.st.State == StatePaused {
			notifyParent(ctx, TenantOutcome{TenantID: s.in.Tenant.ID, State: state})
		}
	}
	if !s.v1 {
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

func (s *setup) stepState(name string) *StepState { return stepIn(&s.st.Steps, s.steps, name) }

func (s *setup) run(ctx workflow.Context) (SetupResult, error) {
	err := s.runSteps(ctx)
	switch {
	case err == nil:
		return s.st, nil
	case errors.Is(err, errAborted) || temporal.IsCanceledError(err) || ctx.Err() != nil:
		cancelled := ctx.Err() != nil
		var ab *abortError
		if errors.As(err, &ab) && ab.cause != nil {
			// Policy compensate: keep the failure that started it.
			s.st.Error = fmt.Sprintf("step %s failed: %s", ab.step, ab.cause.Error())
		}
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		n, cerr := s.compensate(dctx)
		s.setState(dctx, StateAborted, "")
		undone := fmt.Sprintf("%d change(s) undone", n)
		if cerr != nil {
			// Never claim an undo that did not happen, not even on cancel.
			msg := fmt.Sprintf("setup of %s stopped; compensation failed (%s): %v", s.in.Tenant.ID, undone, cerr)
			s.st.Error = strings.TrimPrefix(s.st.Error+"; "+msg, "; ")
			return s.st, temporal.NewNonRetryableApplicationError(msg, ErrCompensationFailed, cerr)
		}
		if cancelled {
			return s.st, temporal.NewCanceledError("setup cancelled; " + undone)
		}
		msg := fmt.Sprintf("setup of %s aborted; %s", s.in.Tenant.ID, undone)
		if s.st.Error != "" {
			msg += ": " + s.st.Error
		}
		return s.st, temporal.NewNonRetryableApplicationError(msg, ErrAborted, ab.causeOrNil())
	default:
		s.st.Error = err.Error()
		s.setState(ctx, StateFailed, "")
		return s.st, err
	}
}

func (s *setup) runSteps(ctx workflow.Context) error {
	if err := s.do(ctx, stepDiscover, "", s.lockAndDiscover); err != nil {
		return err
	}
	if s.in.Options.DryRun {
		s.setState(ctx, StatePlanned, "")
		return nil
	}
	for _, a := range s.out.Actions {
		if err := s.action(ctx, a); err != nil {
			return err
		}
	}
	if !s.verified() {
		// The operator skipped verification (or asked to): the changes are
		// in place but nothing proved that they work.
		s.setState(ctx, StateUnverified, "")
		return nil
	}
	s.setState(ctx, StateVerified, "")
	return nil
}

// lockAndDiscover takes the tenant's write lock (a run that writes, from
// changeTenantLock on) before discovery reads what the plan and the writes
// build on, and keeps it to the end of the run.
func (s *setup) lockAndDiscover(ctx workflow.Context) error {
	if s.locking && !s.in.Options.DryRun && s.lock == nil {
		l, err := acquireTenantLock(ctx, s.in.Tenant.ID, s.in.Options.LockWait, func() {
			s.stepState(stepDiscover).Detail = "waiting for " + TenantLockWorkflowID(s.in.Tenant.ID) + ": another workflow is writing this tenant"
		})
		if err != nil {
			return err
		}
		s.lock = l
		s.stepState(stepDiscover).Detail = ""
	}
	return s.discoverAndPlan(ctx)
}

// verified reports whether the first verification passed in this run.
func (s *setup) verified() bool {
	st := s.steps[string(plan.StepVerify)]
	return st != nil && st.Status == StatusDone
}

// action runs one plan action according to its change.
func (s *setup) action(ctx workflow.Context, a plan.Action) error {
	name := string(a.Step)
	st := s.stepState(name)
	st.Change, st.Reason = string(a.Change), a.Reason
	if slices.Contains(s.in.Options.SkipSteps, name) {
		st.Status, st.Detail = StatusSkipped, "skipped by request"
		return nil
	}
	if st.Status == StatusDone {
		return nil // done by an earlier combined call (legacy keys + SPNs)
	}
	switch a.Step {
	case plan.StepRemoveLegacyKey:
		// Only a verified dedicated-app trust may lose its legacy key.
		if a.Change.Writes() && !s.verified() {
			st.Status, st.Detail = StatusSkipped, "verification did not pass in this run (it was skipped), so the legacy key stays on the first-party service principal"
			return nil
		}
	case plan.StepVerifyAfterRemoval:
		if rm := s.steps[string(plan.StepRemoveLegacyKey)]; rm != nil && rm.Status == StatusSkipped {
			st.Status, st.Detail = StatusNotNeeded, "the legacy key was not removed"
			return nil
		}
	}
	switch a.Change {
	case plan.ChangeSkip:
		st.Status = StatusNotNeeded
		return nil
	case plan.ChangeNone:
		if a.Step != plan.StepVerify && a.Step != plan.StepVerifyAfterRemoval {
			st.Status, st.Outcome = StatusDone, string(activities.Unchanged)
			return nil
		}
	}
	return s.do(ctx, name, string(a.Change), func(ctx workflow.Context) error { return s.execute(ctx, a) })
}

// do runs one step under the operator's pause / retry / skip / abort loop.
func (s *setup) do(ctx workflow.Context, name, change string, f func(workflow.Context) error) error {
	st := s.stepState(name)
	if change != "" {
		st.Change = change
	}
	aborted, cause, err := s.op.runStep(withSummary(ctx, SetupStepSummary(name)), st, f)
	if err != nil || !aborted {
		return err
	}
	ab := &abortError{step: name}
	if s.op.policy == PolicyCompensate {
		ab.cause = cause
	}
	return ab
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
		activities.ErrInvalidInput, activities.ErrMissingPermission, activities.ErrUnsupportedVersion, activities.ErrConflict)
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
func (s *setup) cloudRead(ctx workflow.Context, fn, arg any) workflow.Future {
	if !s.v1 {
		return workflow.ExecuteActivity(s.cloud(ctx), fn, arg)
	}
	return workflow.ExecuteLocalActivity(s.cloudLocal(ctx), fn, arg)
}

// cloudWrite runs a Graph or Exchange Online activity that may write. As
// a local activity it runs on a disconnected context: cancelling the
// workflow must not abandon a write in flight, whose undo record the
// compensation needs (the task-queue activity waits for cancellation for
// the same reason).
func (s *setup) cloudWrite(ctx workflow.Context, fn, arg any) workflow.Future {
	if !s.v1 {
		return workflow.ExecuteActivity(s.cloud(ctx), fn, arg)
	}
	if ctx.Err() != nil {
		// Cancelled before it started: no new write (as ExecuteActivity).
		f, set := workflow.NewFuture(ctx)
		set.SetError(temporal.NewCanceledError())
		return f
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	return workflow.ExecuteLocalActivity(s.cloudLocal(dctx), fn, arg)
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

var (
	onPremActs *activities.OnPrem
	onlineActs *activities.Online
	entraActs  *activities.Entra
)

// discoverAndPlan reads the three systems (on-prem and Exchange Online in
// parallel, then Entra, which needs the organisation GUID for the
// dedicated application's name) and plans in a local activity.
func (s *setup) discoverAndPlan(ctx workflow.Context) error {
	t := s.in.Target
	fOn := workflow.ExecuteActivity(s.onprem(ctx), onPremActs.DiscoverOnPrem, t)
	fOl := s.cloudRead(ctx, onlineActs.DiscoverOnline, t)
	var onprem, online, entra plan.Observed
	if err := fOn.Get(ctx, &onprem); err != nil {
		return err
	}
	if err := fOl.Get(ctx, &online); err != nil {
		return err
	}
	guid := s.in.Tenant.OrganizationGUID
	if guid == "" {
		guid = onprem.OrganizationGUID
	}
	ein := activities.EntraDiscoverInput{Target: t}
	if guid != "" {
		ein.DedicatedAppName = plan.DedicatedAppPrefix + guid
	}
	if err := s.cloudRead(ctx, entraActs.DiscoverEntra, ein).Get(ctx, &entra); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}, Summary: SetupStepSummary(stepPlan)})
	in := activities.PlanInput{Tenant: s.in.Tenant, Observed: activities.MergeObserved(onprem, online, entra, now), Now: now,
		ResetFirstPartyKeys: s.in.Options.ResetFirstPartyKeys}
	if err := workflow.ExecuteLocalActivity(lctx, activities.PlanSetup, in).Get(ctx, &s.out); err != nil {
		return err
	}
	s.st.Plan, s.st.Warnings = s.out.Actions, s.out.Warnings
	s.st.Mode, s.st.ModeReason = string(s.out.Desired.Mode), s.out.Desired.ModeReason
	d := s.out.Desired
	s.st.Desired = &d
	s.appID = in.Observed.DedicatedApp.AppID
	s.observed = in.Observed
	for _, a := range s.out.Actions {
		st := s.stepState(string(a.Step))
		st.Change, st.Reason = string(a.Change), a.Reason
	}
	return nil
}

// record keeps a step's outcome and undo records; a step of several
// activities (the dedicated application) accumulates them.
func (s *setup) record(name string, r activities.StepResult) {
	st := s.stepState(name)
	acc := activities.StepResult{Outcome: activities.Outcome(st.Outcome), Detail: st.Detail}
	if st.Status != StatusRunning || st.Outcome == "" {
		acc = activities.StepResult{}
	}
	acc.Merge(activities.StepResult{Outcome: r.Outcome, Detail: r.Detail})
	st.Outcome, st.Detail = string(acc.Outcome), acc.Detail
	if r.Outcome != activities.Unchanged && r.Outcome != "" {
		s.st.Writes++
	}
	for _, u := range r.Undo {
		s.undo = append(s.undo, undoEntry{step: name, rec: u})
	}
	if r.AppID != "" {
		s.appID = r.AppID
	}
}

// execute maps a plan action to its activities.
func (s *setup) execute(ctx workflow.Context, a plan.Action) error {
	d, t := s.out.Desired, s.in.Target
	name := string(a.Step)
	record := func(f workflow.Future) error {
		var r activities.StepResult
		if err := f.Get(ctx, &r); err != nil {
			if done, ok := activities.FailedProgress(err); ok {
				// Written before the failure: compensation must know.
				s.record(name, done)
			}
			return err
		}
		s.record(name, r)
		return nil
	}
	onprem := func(fn, arg any) error { return record(workflow.ExecuteActivity(s.onprem(ctx), fn, arg)) }
	cloud := func(fn, arg any) error { return record(s.cloudWrite(ctx, fn, arg)) }
	before := s.before(a.Step)
	switch a.Step {
	case plan.StepAuthServers:
		if s.v2 {
			return onprem(onPremActs.EnsureAuthServers, activities.AuthServersInput{Target: t, Servers: []plan.AuthServerSpec{d.ACS, d.EvoSTS}, Before: before})
		}
		for _, spec := range []plan.AuthServerSpec{d.ACS, d.EvoSTS} {
			if err := onprem(onPremActs.EnsureAuthServers, activities.AuthServersInput{Target: t, Servers: []plan.AuthServerSpec{spec}, Before: s.before(a.Step)}); err != nil {
				return err
			}
		}
		return nil
	case plan.StepPartnerApp:
		return onprem(onPremActs.EnablePartnerApplication, t)
	case plan.StepExportCert:
		// Discovery exported the public DER of the certificates Get-AuthConfig
		// names (step 3 is read-only); record which ones will be uploaded.
		var tps []string
		for _, k := range d.Keys {
			tps = append(tps, k.Thumbprint)
		}
		s.record(name, activities.StepResult{Outcome: activities.Unchanged, Detail: "exported " + strings.Join(tps, ", ")})
		return nil
	case plan.StepDedicatedApp:
		// Three activities, one write each (application, its service
		// principal, consent); a retry of the step re-runs all three and
		// finds the earlier ones unchanged, their undo already recorded.
		if err := cloud(entraActs.EnsureDedicatedApplication, activities.DedicatedAppInput{Target: t, Name: d.DedicatedAppName}); err != nil {
			return err
		}
		if err := cloud(entraActs.EnsureDedicatedServicePrincipal, activities.AppIDInput{Target: t, AppID: s.appID}); err != nil {
			return err
		}
		return cloud(entraActs.GrantDedicatedConsent, activities.AppIDInput{Target: t, AppID: s.appID, Before: before})
	case plan.StepKeys:
		if d.Mode == plan.ModeDedicatedApp {
			if err := s.needAppID(); err != nil {
				return err
			}
			return cloud(entraActs.EnsureApplicationKeys, activities.AppKeysInput{Target: t, AppID: s.appID, Name: d.DedicatedAppName, Keys: d.Keys, Before: before})
		}
		// Legacy: keys and SPNs go to the same principal in one PATCH.
		in := activities.FirstPartyInput{Target: t, Keys: d.Keys, Before: before}
		if spn := s.planned(plan.StepSPNs); spn.Change.Writes() && !slices.Contains(s.in.Options.SkipSteps, string(plan.StepSPNs)) {
			in.SPNs = d.SPNs
		}
		n := len(s.undo)
		if err := cloud(entraActs.EnsureFirstPartyServicePrincipal, in); err != nil {
			return err
		}
		for i := n; i < len(s.undo); i++ {
			if s.undo[i].rec.Kind == activities.UndoRemoveSPNs {
				s.undo[i].step = string(plan.StepSPNs) // compensation marks the step it reverses
			}
		}
		if len(in.SPNs) > 0 {
			sp := s.stepState(string(plan.StepSPNs))
			sp.Status, sp.Outcome, sp.Detail = StatusDone, s.stepState(name).Outcome, "written with the keys in one PATCH"
		}
		return nil
	case plan.StepSPNs:
		return cloud(entraActs.EnsureFirstPartyServicePrincipal, activities.FirstPartyInput{Target: t, SPNs: d.SPNs, Before: before})
	case plan.StepOnPremAuthServerApp:
		if err := s.needAppID(); err != nil {
			return err
		}
		return onprem(onPremActs.SetAuthServerApplication, activities.AuthServerAppInput{Target: t, EvoSTS: d.EvoSTS, AppID: s.appID, Domains: d.AuthServerDomains})
	case plan.StepSettingOverride:
		// EnsureSettingOverride refreshes on every attempt, so an operator
		// retry after a failed refresh still loads an override created by
		// the first attempt.
		in := activities.SettingOverrideInput{Target: t, ConsentGranted: s.consentGranted(), ConnectorsFirst: s.plannedBefore(plan.StepIOCOnPrem, plan.StepSettingOverride), Before: before}
		if s.v2 {
			return onprem(onPremActs.EnsureSettingOverride, in)
		}
		// Version 1 (replay) schedules its own refresh as well: a second,
		// harmless one on a worker whose EnsureSettingOverride refreshes.
		if err := onprem(onPremActs.EnsureSettingOverride, in); err != nil {
			return err
		}
		return onprem(onPremActs.RefreshVariantConfiguration, t)
	case plan.StepIOCOnPrem:
		return onprem(onPremActs.EnsureOnPremConnector, activities.IOCInput{Target: t, Spec: d.OnPremIOC, Before: before})
	case plan.StepIOCOnline:
		return cloud(onlineActs.EnsureOnlineConnector, activities.IOCInput{Target: t, Spec: d.OnlineIOC, Before: before})
	case plan.StepAvailability:
		return onprem(onPremActs.EnsureAvailabilityAddressSpace, activities.AvailabilityInput{Target: t, Spec: d.Availability, Before: before})
	case plan.StepVerify, plan.StepVerifyAfterRemoval:
		return s.verify(ctx, name)
	case plan.StepRemoveLegacyKey:
		return s.removeLegacyKey(ctx, name)
	}
	return temporal.NewNonRetryableApplicationError("no activity for step "+name, activities.ErrInvalidInput, nil)
}

// before is what a step may take as there before this run (its objects as
// discovery saw them, and those the run holds undo records for): a step
// that finds its object after a lost result claims it, with an undo
// record, only when it is not among them.
func (s *setup) before(step plan.Step) *activities.Before {
	held := make([]activities.UndoRecord, len(s.undo))
	for i, e := range s.undo {
		held[i] = e.rec
	}
	return activities.StepBefore(s.observed, step, s.out.Desired.Mode, held)
}

// needAppID refuses to write an empty application identifier (the
// dedicated-app step was skipped and the application does not exist).
func (s *setup) needAppID() error {
	if s.appID != "" {
		return nil
	}
	return temporal.NewNonRetryableApplicationError("the dedicated application's appId is unknown: the "+string(plan.StepDedicatedApp)+" step did not create it (skipped?); retry after it exists, or abort",
		activities.ErrInvalidInput, nil)
}

// consentGranted says whether the dedicated application has admin
// consent by now: discovery found it (the plan left the step alone) or
// this run's dedicated-app step completed, consent included. The setting
// override's activity cannot ask Entra, so the workflow tells it.
func (s *setup) consentGranted() *bool {
	st := s.steps[string(plan.StepDedicatedApp)]
	ok := s.planned(plan.StepDedicatedApp).Change == plan.ChangeNone || (st != nil && st.Status == StatusDone)
	return &ok
}

// plannedBefore reports whether this run's plan (as recorded) runs step a
// before step b. Setups planned before the setting override moved after
// the connectors keep their recorded order.
func (s *setup) plannedBefore(a, b plan.Step) bool {
	for _, x := range s.out.Actions {
		switch x.Step {
		case a:
			return true
		case b:
			return false
		}
	}
	return false
}

func (s *setup) planned(step plan.Step) plan.Action {
	for _, a := range s.out.Actions {
		if a.Step == step {
			return a
		}
	}
	return plan.Action{}
}

// verify tests both directions until both succeed or the deadline passes,
// waiting on durable timers with doubling intervals while the
// configuration propagates.
func (s *setup) verify(ctx workflow.Context, name string) error {
	d, t := s.out.Desired, s.in.Target
	deadline := s.in.Options.VerifyDeadline
	if deadline == 0 {
		deadline = 30 * time.Minute
	}
	wait := s.in.Options.VerifyInterval
	if wait == 0 {
		wait = 15 * time.Second
	}
	end := workflow.Now(ctx).Add(deadline)
	if s.st.Verification == nil {
		s.st.Verification = map[string]string{}
	}
	for round := 1; ; round++ {
		fOn := workflow.ExecuteActivity(s.onprem(ctx), onPremActs.VerifyFromOnPrem, activities.VerifyInput{Target: t, TargetURI: d.VerifyCloudTarget, Mailbox: d.OnPremMailbox})
		fCl := s.cloudRead(ctx, onlineActs.VerifyFromOnline, activities.VerifyInput{Target: t, TargetURI: d.VerifyOnPremTarget, Mailbox: d.CloudMailbox})
		var on, cl activities.VerifyResult
		if err := fOn.Get(ctx, &on); err != nil {
			return err
		}
		if err := fCl.Get(ctx, &cl); err != nil {
			return err
		}
		s.st.Verification["onprem-to-online"] = verdict(on)
		s.st.Verification["online-to-onprem"] = verdict(cl)
		if on.Success && cl.Success {
			s.stepState(name).Outcome = "verified"
			s.stepState(name).Detail = fmt.Sprintf("Test-OAuthConnectivity succeeded in both directions (round %d)", round)
			return nil
		}
		if !workflow.Now(ctx).Add(wait).Before(end) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("verification did not succeed within %s (%d rounds): on-prem → Exchange Online: %s; Exchange Online → on-prem: %s",
				deadline, round, verdict(on), verdict(cl)), activities.ErrVerification, nil)
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, 5*time.Minute)
	}
}

func verdict(r activities.VerifyResult) string {
	if r.Success {
		return "Success"
	}
	return "Error: " + r.Detail
}

// removeLegacyKey takes the on-prem auth certificates off the first-party
// service principal (every key, when the recorded plan is the operator's
// reset), then verifies again; if that verification fails the removed
// keys are put back before the failure is reported.
func (s *setup) removeLegacyKey(ctx workflow.Context, name string) error {
	var r activities.StepResult
	// ResetAll comes from the recorded plan, so the activity does what the
	// plan showed; a plan recorded without the field is the ordinary clean-up.
	in := activities.RemoveLegacyKeysInput{Target: s.in.Target, Thumbprints: s.out.Desired.LegacyThumbprints, ResetAll: s.out.Desired.ResetFirstPartyKeys}
	if err := s.cloudWrite(ctx, entraActs.RemoveLegacyKeys, in).Get(ctx, &r); err != nil {
		return err
	}
	s.record(name, r)
	if r.Outcome == activities.Unchanged {
		return nil // verify-after-removal runs as its own step
	}
	vst := s.stepState(string(plan.StepVerifyAfterRemoval))
	vst.Status, vst.Started, vst.LastError, vst.ErrorType = StatusRunning, workflow.Now(ctx), "", ""
	vst.Attempts++
	verr := s.verify(ctx, vst.Step)
	vst.Finished = workflow.Now(ctx)
	if verr == nil {
		vst.Status = StatusDone
		return nil
	}
	vst.Status = StatusFailed
	vst.LastError, vst.ErrorType = describeError(verr)
	if ctx.Err() != nil {
		return verr // compensation restores the key with the other records
	}
	// Put the legacy key back at once: the trust worked with it. Restores
	// are idempotent, so on failure every record stays for compensation.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	for i := len(r.Undo) - 1; i >= 0; i-- {
		if err := s.runUndo(withSummary(dctx, undoSummary(SetupStepSummary(name))), r.Undo[i]); err != nil {
			s.st.Compensation = append(s.st.Compensation, fmt.Sprintf("FAILED to restore the legacy key after verification failed: %v", err))
			return temporal.NewNonRetryableApplicationError("verification failed after removing the legacy key, and restoring it failed too: "+err.Error(), ErrCompensationFailed, err)
		}
	}
	// record() appended this call's records last; they are spent now.
	s.undo = s.undo[:len(s.undo)-len(r.Undo)]
	s.st.Compensation = append(s.st.Compensation, "restored the removed first-party keys after verification failed")
	return temporal.NewNonRetryableApplicationError("verification failed after removing keys from the first-party service principal; every removed key was restored: "+vst.LastError, activities.ErrVerification, verr)
}

// compensate runs this run's undo records in reverse and returns how many
// succeeded. Callers pass a disconnected context so that a cancelled
// workflow still undoes its changes.
func (s *setup) compensate(ctx workflow.Context) (int, error) {
	s.setState(ctx, StateCompensating, "")
	var errs []error
	undone := 0
	failed := map[string]bool{}
	for i := len(s.undo) - 1; i >= 0; i-- {
		e := s.undo[i]
		u := e.rec
		if err := s.runUndo(withSummary(ctx, undoSummary(SetupStepSummary(e.step))), u); err != nil {
			errs = append(errs, err)
			failed[e.step] = true
			s.st.Compensation = append(s.st.Compensation, fmt.Sprintf("FAILED %s: %s: %v", e.step, describeUndo(u), err))
			continue
		}
		s.st.Compensation = append(s.st.Compensation, fmt.Sprintf("%s: %s", e.step, describeUndo(u)))
		undone++
	}
	for _, e := range s.undo {
		if st := s.steps[e.step]; st != nil && !failed[e.step] {
			st.Status = StatusCompensated
		}
	}
	s.undo = nil
	return undone, errors.Join(errs...)
}

// describeUndo names an undo record for the compensation list.
func describeUndo(u activities.UndoRecord) string {
	parts := []string{u.Kind}
	if u.Name != "" {
		parts = append(parts, u.Name)
	}
	if u.ObjectID != "" {
		parts = append(parts, u.ObjectKind+" "+u.ObjectID)
	}
	return strings.Join(parts, " ")
}

func (s *setup) runUndo(ctx workflow.Context, u activities.UndoRecord) error {
	in := activities.UndoInput{Target: s.in.Target, Record: u}
	o := s.activityOptions(temporalx.CloudQueue)
	o.RetryPolicy.MaximumAttempts = 10
	var fn any
	switch u.System {
	case activities.SystemOnPrem:
		o.TaskQueue = temporalx.OnPremQueue(s.in.Target.Site)
		o.HeartbeatTimeout = OnPremHeartbeatTimeout
		fn = onPremActs.UndoOnPrem
	case activities.SystemOnline:
		fn = onlineActs.UndoOnline
	case activities.SystemEntra:
		fn = entraActs.UndoEntra
	default:
		return fmt.Errorf("undo record for unknown system %q", u.System)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, summarized(ctx, o)), fn, in).Get(ctx, nil)
}
