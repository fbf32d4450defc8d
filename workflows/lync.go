package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/steps"
)

// The Lync workflow answers the same query (QueryState) and operator
// updates (UpdateRetry, UpdateSkip, UpdateAbort) as Setup.

// LyncWorkflowID is the deterministic ID of a Lync site's integration: a
// site has one Lync deployment, so starting it again attaches to the
// running workflow instead of starting a second one.
func LyncWorkflowID(site string) string { return "hybridflow/lync/" + strings.ToLower(site) }

// LyncPlanWorkflowID keeps Lync dry runs apart from real runs.
func LyncPlanWorkflowID(site string) string { return "hybridflow/lync-plan/" + strings.ToLower(site) }

// LyncInput is one Lync site's integration request. It carries no secret:
// the target's credential is a name the worker resolves.
type LyncInput struct {
	// Site is the Lync site (the hybridflow-lync-<site> task queue).
	Site string `json:"site"`
	// Cloud decides the hosting provider's ProxyFqdn.
	Cloud string `json:"cloud"`
	// Target is the tenant whose Lync deployment this is (the simulator
	// keys deployments by tenant; real workers by Target.LyncSite).
	Target contract.Target `json:"target"`
	// ProxyFqdnOverride replaces the cloud's ProxyFqdn
	// (inventory overrides.lync_proxy_fqdn).
	ProxyFqdnOverride string `json:"proxy_fqdn_override,omitempty"`
	// EdgeFqdns are the site's Edge Servers as Central Management store
	// replicas; the Edge step checks their replication status by name.
	// Empty: it checks every replica, the Edge's among them.
	EdgeFqdns []string    `json:"edge_fqdns,omitempty"`
	Options   LyncOptions `json:"options"`
}

// LyncOptions tune one run.
type LyncOptions struct {
	// FailurePolicy: pause (default), compensate or fail.
	FailurePolicy string `json:"failure_policy,omitempty"`
	// DryRun discovers and plans, then stops: no writes.
	DryRun bool `json:"dry_run,omitempty"`
	// SkipSteps are Lync steps (plan.LyncSteps) not to run.
	SkipSteps []string `json:"skip_steps,omitempty"`
	// ReplicationTimeout bounds the wait for Central Management store
	// replication (default 15m); ReplicationPollInterval is the time
	// between status reads (default 10s).
	ReplicationTimeout      time.Duration `json:"replication_timeout,omitempty"`
	ReplicationPollInterval time.Duration `json:"replication_poll_interval,omitempty"`
	// Retry tunes every step activity's retry policy (tests shorten it).
	Retry RetryOptions `json:"retry,omitempty"`
	// ScheduleToStart bounds how long a step waits for the site's Lync
	// worker (default 30m) before it counts as failed and pauses.
	ScheduleToStart time.Duration `json:"schedule_to_start,omitempty"`
}

// LyncState is what the state query returns, and the workflow's result.
type LyncState struct {
	Site         string                    `json:"site"`
	Cloud        string                    `json:"cloud"`
	TenantID     string                    `json:"tenant_id,omitempty"`
	State        string                    `json:"state"`
	CurrentStep  string                    `json:"current_step,omitempty"`
	Desired      *plan.LyncHostingProvider `json:"desired,omitempty"`
	Observed     *plan.LyncObserved        `json:"observed,omitempty"`
	Plan         []plan.Action             `json:"plan,omitempty"`
	Steps        []*StepState              `json:"steps"`
	Paused       *Pause                    `json:"paused,omitempty"`
	LastPause    *Pause                    `json:"last_pause,omitempty"` // the most recent pause, kept after its decision
	Warnings     []string                  `json:"warnings,omitempty"`
	Replicas     []plan.LyncReplica        `json:"replicas,omitempty"`
	RemoteAccess []string                  `json:"remote_access_policies,omitempty"`
	Undo         int                       `json:"undo_records"`
	Compensation []string                  `json:"compensation,omitempty"`
	Writes       int                       `json:"writes"`
	Error        string                    `json:"error,omitempty"`
}

// LyncResult is the workflow's result.
type LyncResult = LyncState

// The inventory-to-input mapping of a Lync site is the CLI's (starter):
// this workflow needs none of it at run time.

type lync struct {
	in  LyncInput
	st  LyncState
	eng *engine
	out contract.LyncPlan
	// keepWrites: from changeLyncKeepWrites version 1, a write in flight
	// when the run is cancelled finishes and is recorded (see execute).
	keepWrites bool
	// baseline is the replication status the hosting-provider step read
	// before it wrote, for the Edge step.
	baseline []plan.LyncReplica
}

// LyncIntegration configures a Lync Server 2013 / Skype for Business
// deployment for Exchange Online as Microsoft documents it: discover →
// plan → AllowFederatedUsers → the "Exchange Online" hosting provider →
// wait for Central Management store replication → confirm that the Edge
// Server's replica has applied the change → report external access. A
// failing step pauses for an operator by default (retry / skip / abort,
// as in Setup); abort undoes this run's changes in reverse.
func LyncIntegration(ctx workflow.Context, in LyncInput) (LyncResult, error) {
	l := &lync{in: in}
	if err := l.setup(ctx); err != nil {
		return l.st, err
	}
	err := l.eng.finish(ctx, l.runSteps(ctx))
	return l.st, err
}

func (l *lync) setup(ctx workflow.Context) error {
	if err := l.validate(); err != nil {
		return err
	}
	var err error
	l.eng, err = newEngine(ctx, engineConfig{policy: l.in.Options.FailurePolicy, summary: LyncStepSummary, onState: l.setState,
		undo: l.undo, describe: describeLyncUndo, subject: "Lync integration of site " + l.in.Site, cancelled: "Lync integration cancelled"},
		engineState{Steps: &l.st.Steps, Writes: &l.st.Writes, Compensation: &l.st.Compensation, Error: &l.st.Error})
	if err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (LyncState, error) {
		st := l.st
		st.Paused, st.LastPause = l.eng.op.paused, l.eng.op.last
		st.Undo = len(l.eng.Undo)
		return st, nil
	}); err != nil {
		return err
	}
	sas := []temporal.SearchAttributeUpdate{SACloud.ValueSet(l.in.Cloud), SAState.ValueSet(StateRunning), SAStep.ValueSet(stepDiscover)}
	if l.in.Target.TenantID != "" {
		sas = append(sas, SATenant.ValueSet(l.in.Target.TenantID))
	}
	return workflow.UpsertTypedSearchAttributes(ctx, sas...)
}

// validate fills the input's defaults and refuses bad input, naming the
// field, before anything runs.
func (l *lync) validate() error {
	invalid := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), contract.ErrInvalidInput, nil)
	}
	o := &l.in.Options
	if o.FailurePolicy == "" {
		o.FailurePolicy = PolicyPause
	}
	switch o.FailurePolicy {
	case PolicyPause, PolicyCompensate, PolicyFail:
	default:
		return invalid("unknown failure policy %q (pause, compensate, fail)", o.FailurePolicy)
	}
	if l.in.Site == "" {
		l.in.Site = l.in.Target.LyncSite
	}
	if l.in.Target.LyncSite == "" {
		l.in.Target.LyncSite = l.in.Site
	}
	if l.in.Cloud == "" {
		l.in.Cloud = l.in.Target.Cloud
	}
	l.st = LyncState{Site: l.in.Site, Cloud: l.in.Cloud, TenantID: l.in.Target.TenantID, State: StateRunning}
	switch {
	case l.in.Site == "":
		return invalid("no Lync site: set LyncInput.Site")
	case !strings.EqualFold(l.in.Site, l.in.Target.LyncSite):
		return invalid("LyncInput.Site %q and Target.LyncSite %q differ", l.in.Site, l.in.Target.LyncSite)
	case l.in.Cloud == "":
		return invalid("no cloud for Lync site %s", l.in.Site)
	}
	if _, _, err := plan.DesiredLyncProvider(l.in.Cloud, l.in.ProxyFqdnOverride); err != nil {
		return invalid("Lync site %s: %v", l.in.Site, err)
	}
	if _, err := contract.LyncEdgeFqdns(l.in.EdgeFqdns); err != nil {
		return invalid("Lync site %s: %v", l.in.Site, err)
	}
	for _, s := range o.SkipSteps {
		if !slices.Contains(plan.LyncSteps, plan.Step(s)) {
			return invalid("unknown Lync step %q to skip (steps: %s)", s, lyncStepList())
		}
	}
	return nil
}

func lyncStepList() string {
	var s []string
	for _, st := range plan.LyncSteps {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

// setState mirrors state and step into search attributes, only on change.
func (l *lync) setState(ctx workflow.Context, state, step string) {
	mirrorState(ctx, &l.st.State, &l.st.CurrentStep, state, step, step)
}

func (l *lync) warn(ws ...string) {
	for _, w := range ws {
		if !slices.Contains(l.st.Warnings, w) {
			l.st.Warnings = append(l.st.Warnings, w)
		}
	}
}

// changeLyncKeepWrites: the federation and hosting-provider writes run on
// a disconnected context (version 1).
const changeLyncKeepWrites = "lync-keep-writes-on-cancel"

// lyncWrites are the steps whose activity changes the deployment.
var lyncWrites = []plan.Step{plan.LyncStepFederation, plan.LyncStepHostingProvider}

func (l *lync) runSteps(ctx workflow.Context) error {
	l.keepWrites = workflow.GetVersion(ctx, changeLyncKeepWrites, workflow.DefaultVersion, 1) >= 1
	if err := l.eng.do(ctx, stepDiscover, "", l.discover); err != nil {
		return err
	}
	if err := l.plan(ctx); err != nil {
		return err
	}
	if l.in.Options.DryRun {
		l.setState(ctx, StatePlanned, "")
		return nil
	}
	if err := l.eng.runSteps(ctx, l.planned()); err != nil {
		return err
	}
	if st := l.eng.Lookup(string(plan.LyncStepEdgeStore)); st == nil || st.Status != StatusDone {
		// The changes are in place, but nothing confirmed the Edge has them
		// (the Edge step was skipped).
		l.setState(ctx, StateUnverified, "")
		return nil
	}
	l.setState(ctx, StateVerified, "")
	return nil
}

// planned is the plan's actions as the engine's list.
func (l *lync) planned() []engineStep {
	var list []engineStep
	for _, a := range l.out.Actions {
		list = append(list, engineStep{name: string(a.Step), change: string(a.Change),
			admit: func() bool { return l.admit(a) },
			run:   func(ctx workflow.Context) error { return l.execute(ctx, a) }})
	}
	return list
}

// admit decides whether a plan action runs: not when skipped by request or
// when the plan expects no change.
func (l *lync) admit(a plan.Action) bool {
	st := l.eng.State(string(a.Step))
	st.Change, st.Reason = string(a.Change), a.Reason
	if slices.Contains(l.in.Options.SkipSteps, string(a.Step)) {
		st.Status, st.Detail = StatusSkipped, "skipped by request"
		return false
	}
	switch a.Change {
	case plan.ChangeSkip:
		st.Status = StatusNotNeeded
		return false
	case plan.ChangeNone:
		st.Status, st.Outcome, st.Detail = StatusDone, string(contract.Unchanged), a.Reason
		return false
	}
	return true
}

func (l *lync) activityOptions() workflow.ActivityOptions {
	o := l.in.Options
	return stepActivityOptions(temporalx.LyncQueue(l.in.Site), o.Retry, o.ScheduleToStart, 0, true,
		contract.ErrInvalidInput, contract.ErrMissingPermission, contract.ErrConflict, contract.ErrReplicationLagging)
}

func (l *lync) site(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, summarized(ctx, l.activityOptions()))
}

// replicationWait bounds the replication activity: its own deadline plus
// room for the last read, heartbeats a few poll intervals apart.
func (l *lync) replicationWait(ctx workflow.Context) (workflow.Context, contract.LyncReplicationInput) {
	in := contract.LyncReplicationInput{Target: l.in.Target, Timeout: l.in.Options.ReplicationTimeout, PollInterval: l.in.Options.ReplicationPollInterval}
	if in.Timeout <= 0 {
		in.Timeout = contract.DefaultLyncReplicationTimeout
	}
	if in.PollInterval <= 0 {
		in.PollInterval = contract.DefaultLyncReplicationPoll
	}
	o := l.activityOptions()
	o.StartToCloseTimeout = in.Timeout + 2*time.Minute
	o.HeartbeatTimeout = max(3*in.PollInterval, 30*time.Second)
	return workflow.WithActivityOptions(ctx, summarized(ctx, o)), in
}

// discover reads the deployment. An operator may skip it (say, the Edge's
// store cannot be read from the site's shell): the plan then assumes
// nothing is configured, and the steps, which read before they write,
// still change only what differs.
func (l *lync) discover(ctx workflow.Context) error {
	var obs plan.LyncObserved
	if err := workflow.ExecuteActivity(l.site(ctx), contract.ActDiscoverLync, l.in.Target).Get(ctx, &obs); err != nil {
		return err
	}
	l.st.Observed = &obs
	l.warn(obs.Notes...)
	return nil
}

// plan runs in a local activity so that its answer is recorded in history.
func (l *lync) plan(ctx workflow.Context) error {
	in := contract.LyncPlanInput{Cloud: l.in.Cloud, ProxyFqdnOverride: l.in.ProxyFqdnOverride, EdgeFqdns: l.in.EdgeFqdns}
	if l.st.Observed != nil {
		in.Observed = *l.st.Observed
	} else {
		l.warn("discovery was skipped: the plan assumes nothing is configured; each step still reads before it writes")
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}, Summary: LyncStepSummary(stepPlan)})
	if err := workflow.ExecuteLocalActivity(lctx, contract.PlanLync, in).Get(ctx, &l.out); err != nil {
		return err
	}
	d := l.out.Desired
	l.st.Desired, l.st.Plan = &d, l.out.Actions
	l.warn(l.out.Warnings...)
	for _, a := range l.out.Actions {
		st := l.eng.State(string(a.Step))
		st.Change, st.Reason = string(a.Change), a.Reason
	}
	return nil
}

// record keeps a step's outcome, undo records and what it observed.
func (l *lync) record(name string, r contract.LyncStepResult) {
	st := l.eng.State(name)
	st.Outcome, st.Detail = string(r.Outcome), r.Detail
	l.eng.Wrote(r.Outcome)
	l.eng.Push(name, r.Undo...)
	l.warn(r.Warnings...)
	if r.Replicas != nil {
		l.st.Replicas = r.Replicas
	}
	if r.Policies != nil {
		l.st.RemoteAccess = r.Allowing
	}
	if len(r.Baseline) > 0 {
		l.baseline = r.Baseline
	}
}

// recordFailedUndo keeps the undo record a failed step attached to its
// error (a provider removed and not put back), once.
func (l *lync) recordFailedUndo(name string, err error) {
	rec, ok := contract.LyncUndoFromError(err)
	if !ok {
		return
	}
	for _, u := range l.eng.Undo {
		if u.Step == name && u.Rec.Kind == rec.Kind && u.Rec.Name == rec.Name && (u.Rec.Provider == nil) == (rec.Provider == nil) &&
			(rec.Provider == nil || *u.Rec.Provider == *rec.Provider) {
			return
		}
	}
	l.eng.Push(name, rec)
}

// lyncActivities are the activity types of the Lync steps.
var lyncActivities = map[plan.Step]string{
	plan.LyncStepFederation:      contract.ActEnsureLyncEdgeFederation,
	plan.LyncStepHostingProvider: contract.ActEnsureLyncHostingProvider,
	plan.LyncStepReplication:     contract.ActWaitLyncReplication,
	plan.LyncStepEdgeStore:       contract.ActConfirmLyncEdgeProvider,
	plan.LyncStepExternalAccess:  contract.ActCheckLyncExternalAccess,
}

// execute runs a plan action's activity.
func (l *lync) execute(ctx workflow.Context, a plan.Action) error {
	name, act := string(a.Step), lyncActivities[a.Step]
	if act == "" {
		return temporal.NewNonRetryableApplicationError("no activity for Lync step "+name, contract.ErrInvalidInput, nil)
	}
	actx, arg := l.site(ctx), l.argument(a.Step)
	if a.Step == plan.LyncStepReplication {
		actx, arg = l.replicationWait(ctx)
	}
	if l.keepWrites && slices.Contains(lyncWrites, a.Step) {
		// Cancelling the run must not cancel a write in flight: a
		// cancelled activity's reply carries no result, and the undo
		// record of what it changed would be lost to the compensation.
		dctx, cancelled := writeContext(ctx)
		if cancelled != nil {
			return cancelled.Get(ctx, nil)
		}
		actx = l.site(dctx)
	}
	var r contract.LyncStepResult
	if err := workflow.ExecuteActivity(actx, act, arg).Get(ctx, &r); err != nil {
		l.recordFailedUndo(name, err)
		return err
	}
	l.record(name, r)
	return nil
}

// argument is a Lync step activity's input.
func (l *lync) argument(step plan.Step) any {
	provider := contract.LyncProviderInput{Target: l.in.Target, Desired: l.out.Desired}
	switch step {
	case plan.LyncStepHostingProvider:
		return provider
	case plan.LyncStepEdgeStore:
		provider.Baseline, provider.EdgeFqdns = l.baseline, l.in.EdgeFqdns
		return provider
	}
	return l.in.Target
}

// undo is the engine's compensation of one Lync record.
func (l *lync) undo(ctx workflow.Context, e steps.Entry) error {
	o := l.activityOptions()
	o.RetryPolicy.MaximumAttempts = 10
	uctx := workflow.WithActivityOptions(ctx, summarized(ctx, o))
	return workflow.ExecuteActivity(uctx, contract.ActUndoLync, contract.LyncUndoInput{Target: l.in.Target, Record: e.Rec}).Get(ctx, nil)
}

// describeLyncUndo names a Lync undo record for the compensation list.
func describeLyncUndo(e steps.Entry) string {
	what := fmt.Sprintf("%s: %s %s", e.Step, e.Rec.Kind, e.Rec.Name)
	if e.Rec.Provider != nil {
		what += " (ProxyFqdn " + e.Rec.Provider.ProxyFqdn + ", VerificationLevel " + e.Rec.Provider.VerificationLevel + ")"
	}
	return what
}
