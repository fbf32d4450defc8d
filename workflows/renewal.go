package workflows

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
)

// RenewalWorkflowID is the ID of a tenant's renewal. A schedule uses it as
// its action's workflow ID, to which Temporal appends the scheduled time.
func RenewalWorkflowID(tenantID string) string {
	return "hybridflow/renewal/" + strings.ToLower(tenantID)
}

// RenewalScheduleID is the ID of a tenant's renewal schedule.
func RenewalScheduleID(tenantID string) string {
	return "hybridflow/renewal/" + strings.ToLower(tenantID)
}

// RenewalScheduleIDPrefix starts every renewal schedule's ID.
const RenewalScheduleIDPrefix = "hybridflow/renewal/"

// RenewalReportWorkflowID keeps the read-only runs of `renew report` apart
// from real renewals.
func RenewalReportWorkflowID(tenantID string) string {
	return "hybridflow/renewal-report/" + strings.ToLower(tenantID)
}

// RenewalModeDetect (the default) renews where the organisation is
// configured: the dedicated application when its evoSTS auth server names
// one; otherwise the first-party service principal where Exchange Online
// still accepts it, and where it does not, what setup would choose
// (plan.RenewalMode). The other modes are plan.ModeDedicatedApp and
// plan.ModeLegacyFirstParty.
const RenewalModeDetect = "detect"

// Renewal defaults (plan.DefaultRenewalWindow and the others).
const (
	DefaultRenewalWindow      = plan.DefaultRenewalWindow
	DefaultRenewalLeadTime    = plan.DefaultRenewalLeadTime
	DefaultEmergencyThreshold = plan.DefaultEmergencyThreshold
)

// What a renewal run decided (RenewalState.Action): plan.DecideRenewal's
// actions, and report for a read-only run.
const (
	RenewalActionNone      = plan.RenewalActionNone
	RenewalActionRenew     = plan.RenewalActionRenew
	RenewalActionResume    = plan.RenewalActionResume
	RenewalActionFinish    = plan.RenewalActionFinish
	RenewalActionEmergency = plan.RenewalActionEmergency
	RenewalActionReport    = "report" // read-only (renew report)
)

// Renewal states (HybridflowState), besides running / paused / failed /
// aborted.
const (
	StateRenewalNotDue    = "not-due"
	StateRenewalWaiting   = "waiting-effective-date"
	StateRenewalEmergency = "emergency-renewal"
	StateRenewalStaged    = "staged" // staged for a date beyond the window; a later run publishes
	StateRenewalReported  = "reported"
	StateRenewed          = "renewed"
)

// Renewal steps, in order. In the emergency path the HybridflowStep search
// attribute carries them with RenewalEmergencyStepPrefix.
const (
	RenewStepRead   = "read"
	RenewStepCreate = "create-certificate"
	RenewStepStage  = "stage-certificate"
	RenewStepUpload = "upload-key"
	RenewStepWait   = "wait-effective-date"
	// RenewStepCheckKey runs before publishing (from changeTenantLock on):
	// it takes the tenant's write lock again after the wait and re-reads the
	// Entra object: the staged certificate's key must still be there.
	RenewStepCheckKey = "check-staged-key"
	// RenewStepCheckServers runs before publishing: every Mailbox and
	// Client Access server must hold the new certificate.
	RenewStepCheckServers = "check-servers"
	RenewStepPublish      = "publish-certificate"
	RenewStepVerify       = "verify"
	RenewStepClear        = "clear-previous"
	RenewStepRemoveKey    = "remove-retired-key"
	RenewStepVerifyFinal  = "verify-final"

	RenewalEmergencyStepPrefix = "emergency-"
)

// RenewalInput is one tenant's renewal request. It carries no secret.
type RenewalInput struct {
	Tenant plan.TenantFacts `json:"tenant"`
	Target contract.Target  `json:"target"`
	// Mode: detect (default), dedicated-app or legacy-first-party.
	Mode    string         `json:"mode,omitempty"`
	Options RenewalOptions `json:"options"`
}

// RenewalOptions tune a renewal; zero values take the defaults.
type RenewalOptions struct {
	// Window: a current certificate expiring within it is renewed (60 days).
	Window time.Duration `json:"window,omitempty"`
	// LeadTime: how far ahead the new certificate's effective date is set
	// (30 days), never later than EmergencyThreshold before the current
	// certificate expires.
	LeadTime time.Duration `json:"lead_time,omitempty"`
	// EmergencyThreshold: a current certificate expired or expiring within
	// it takes the emergency path (1 day).
	EmergencyThreshold time.Duration `json:"emergency_threshold,omitempty"`
	// VerifyDeadline bounds how long verification waits for propagation
	// (30m); VerifyInterval is the first wait between tries (15s, doubling
	// up to 5m).
	VerifyDeadline time.Duration `json:"verify_deadline,omitempty"`
	VerifyInterval time.Duration `json:"verify_interval,omitempty"`
	// FailurePolicy: pause (default) or fail. There is no compensate: each
	// step is resumable and undoing a published certificate would break the
	// trust, so an abort stops the renewal where it is.
	FailurePolicy string `json:"failure_policy,omitempty"`
	// ReportOnly reads the certificates and keys and stops (renew report).
	ReportOnly bool `json:"report_only,omitempty"`
	// Retry tunes every activity's retry policy (tests shorten it).
	Retry RetryOptions `json:"retry,omitempty"`
	// ScheduleToStart bounds how long a step waits for a worker (30m).
	ScheduleToStart time.Duration `json:"schedule_to_start,omitempty"`
	// LockWait bounds how long the run waits for the tenant's write lock
	// while another workflow holds it (DefaultLockWait) before it pauses
	// with ErrTenantBusy.
	LockWait time.Duration `json:"lock_wait,omitempty"`
}

// RenewalInputFromTenant turns an inventory entry into a renewal request.
func RenewalInputFromTenant(t config.Tenant, mode string, o RenewalOptions) RenewalInput {
	s := InputFromTenant(t, SetupOptions{})
	return RenewalInput{Tenant: s.Tenant, Target: s.Target, Mode: mode, Options: o}
}

// RenewalCertificate is one auth certificate as the state shows it.
type RenewalCertificate struct {
	Thumbprint string    `json:"thumbprint"`
	NotBefore  time.Time `json:"not_before,omitempty"`
	NotAfter   time.Time `json:"not_after,omitempty"`
	// DaysLeft until NotAfter, rounded down (negative once expired).
	DaysLeft int `json:"days_left"`
	// Effective is the staged certificate's effective date.
	Effective *time.Time `json:"effective,omitempty"`
	// InEntra: a key for it is on the object the mode uses.
	InEntra bool `json:"in_entra"`
	// InStore: Get-ExchangeCertificate shows it.
	InStore bool `json:"in_store"`
}

// RenewalState is what the state query returns and the workflow's result.
type RenewalState struct {
	TenantID    string `json:"tenant_id"`
	Cloud       string `json:"cloud"`
	State       string `json:"state"`
	CurrentStep string `json:"current_step,omitempty"`
	Mode        string `json:"mode,omitempty"`
	ModeReason  string `json:"mode_reason,omitempty"`
	// EntraObject is where the keys live ("application ExchangeServerApp-…").
	EntraObject string `json:"entra_object,omitempty"`
	Action      string `json:"action,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Emergency marks the emergency path (also in HybridflowState while it
	// runs, and in HybridflowStep as emergency-<step>).
	Emergency bool      `json:"emergency"`
	AsOf      time.Time `json:"as_of,omitempty"`
	// DaysLeft of the current certificate at AsOf.
	DaysLeft     int                 `json:"days_left"`
	Current      *RenewalCertificate `json:"current,omitempty"`
	Next         *RenewalCertificate `json:"next,omitempty"`
	Previous     *RenewalCertificate `json:"previous,omitempty"`
	EntraKeys    []string            `json:"entra_keys,omitempty"`
	Retired      []string            `json:"retired,omitempty"`
	Steps        []*StepState        `json:"steps"`
	Paused       *Pause              `json:"paused,omitempty"`
	LastPause    *Pause              `json:"last_pause,omitempty"` // the most recent pause, kept after its decision
	Verification map[string]string   `json:"verification,omitempty"`
	Warnings     []string            `json:"warnings,omitempty"`
	Writes       int                 `json:"writes"`
	Undo         int                 `json:"undo_records"`
	Error        string              `json:"error,omitempty"`
}

// RenewalResult is the workflow's result.
type RenewalResult = RenewalState

type renewal struct {
	in  RenewalInput
	st  RenewalState
	eng *engine
	// notes is the engine's compensation list, which stays empty: a
	// renewal never compensates.
	notes []string

	read    contract.AuthCertificateState
	keys    contract.AuthKeysState
	mode    plan.Mode
	appName string
	// newCert is the certificate being carried to current.
	newCert *contract.AuthCertificate
	// verification targets, resolved before the first verification.
	verifyIn *renewalVerify
	// v1: the run takes version 1 of renewalModeChange (mode decided by
	// plan.RenewalMode in a local activity; servers checked before
	// publishing; an organisation not set up for the dedicated application
	// gets its on-prem certificate renewed only).
	v1 bool
	// certOnly: the dedicated application does not exist and no evoSTS
	// auth server names one, so there is no trust to carry the keys or to
	// verify; setup does both.
	certOnly bool
	// locking: the run takes the tenant's write lock and checks the staged
	// key before publishing (changeTenantLock); lock is held while not nil.
	locking bool
	lock    *tenantLock
	// keyGoneReported: check-staged-key stopped because the staged key was
	// gone; the operator's retry after that uploads it again.
	keyGoneReported bool
}

// renewalModeChange versions the renewal's mode rule and server check.
// Version 0 (DefaultVersion) detected the mode inline (legacy unless the
// evoSTS auth server named an application) and published without asking
// the other servers.
const renewalModeChange = "renewal-mode-rule-and-server-check"

type renewalVerify struct {
	cloudTarget, onPremTarget, onPremMailbox, cloudMailbox string
}

// Renewal keeps one tenant's auth certificate current. Far from
// expiry it does nothing; within the window it creates a certificate,
// stages it for the effective date, uploads its key next to the current
// one, waits on a durable timer, publishes it, verifies both directions,
// clears the previous certificate, and only then takes the retired key out
// of Entra and verifies again. A current certificate expired (or expiring
// within the emergency threshold) takes the emergency path: effective now,
// upload, publish, clear, remove, verify. Every step re-reads and does
// only what is missing, so a run interrupted anywhere is finished by the
// next one.
func Renewal(ctx workflow.Context, in RenewalInput) (RenewalResult, error) {
	r := &renewal{in: in}
	if err := r.setup(ctx); err != nil {
		return r.st, err
	}
	res, err := r.run(ctx)
	r.lock.release(ctx)
	r.lock = nil
	return res, err
}

func (r *renewal) setup(ctx workflow.Context) error {
	o := &r.in.Options
	if o.Window <= 0 {
		o.Window = DefaultRenewalWindow
	}
	if o.LeadTime <= 0 {
		o.LeadTime = DefaultRenewalLeadTime
	}
	if o.EmergencyThreshold <= 0 {
		o.EmergencyThreshold = DefaultEmergencyThreshold
	}
	if o.FailurePolicy == "" {
		o.FailurePolicy = PolicyPause
	}
	r.st = RenewalState{TenantID: r.in.Target.TenantID, Cloud: r.in.Target.Cloud, State: StateRunning, CurrentStep: RenewStepRead}
	if r.st.TenantID == "" {
		r.st.TenantID = r.in.Tenant.ID
	}
	if o.FailurePolicy != PolicyPause && o.FailurePolicy != PolicyFail {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("renewal failure policy %q: use pause or fail (a renewal is resumed, never compensated)", o.FailurePolicy), contract.ErrInvalidInput, nil)
	}
	switch r.in.Mode {
	case "", RenewalModeDetect, string(plan.ModeDedicatedApp), string(plan.ModeLegacyFirstParty):
	default:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("renewal mode %q: use %s, %s or %s", r.in.Mode, RenewalModeDetect, plan.ModeDedicatedApp, plan.ModeLegacyFirstParty), contract.ErrInvalidInput, nil)
	}
	eng, err := newEngine(ctx, r.engineConfig(), engineState{Steps: &r.st.Steps, Writes: &r.st.Writes, Compensation: &r.notes, Error: &r.st.Error})
	if err != nil {
		return err
	}
	r.eng = eng
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (RenewalState, error) {
		st := r.st
		st.Paused, st.LastPause = r.eng.op.paused, r.eng.op.last
		st.Undo = len(r.eng.Undo)
		return st, nil
	}); err != nil {
		return err
	}
	return workflow.UpsertTypedSearchAttributes(ctx,
		SATenant.ValueSet(r.st.TenantID), SACloud.ValueSet(r.st.Cloud),
		SAState.ValueSet(StateRunning), SAStep.ValueSet(RenewStepRead))
}

// setState mirrors state and step into search attributes on change. In
// the emergency path "running" shows as emergency-renewal and steps carry
// the emergency- prefix, so `HybridflowStep STARTS_WITH "emergency-"`
// finds every emergency renewal, finished or not.
func (r *renewal) setState(ctx workflow.Context, state, step string) {
	if r.st.Emergency && state == StateRunning {
		state = StateRenewalEmergency
	}
	sa := step
	if r.st.Emergency && step != "" {
		sa = RenewalEmergencyStepPrefix + step
	}
	mirrorState(ctx, &r.st.State, &r.st.CurrentStep, state, step, sa)
}

// engineConfig: a renewal never compensates (undoing a published
// certificate would break the trust); an abort or a cancel stops it where
// it is, and the next renewal resumes from there.
func (r *renewal) engineConfig() engineConfig {
	return engineConfig{policy: r.in.Options.FailurePolicy, summary: RenewalStepSummary, onState: r.setState,
		noUndoCancelled: "renewal cancelled; nothing was undone: the next renewal resumes where this one stopped",
		noUndoAborted: func() string {
			return fmt.Sprintf("renewal of %s stopped by an operator at %s; nothing was undone: the next renewal resumes where this one stopped",
				r.st.TenantID, r.st.CurrentStep)
		}}
}

func (r *renewal) stepState(name string) *StepState { return r.eng.State(name) }

// notNeededIf admits a step unless skip holds; then the step is recorded
// as not needed, with why.
func (r *renewal) notNeededIf(name, why string, skip func() bool) func() bool {
	return func() bool {
		if skip() {
			r.notNeeded(name, why)
			return false
		}
		return true
	}
}

func (r *renewal) notNeeded(name, why string) {
	st := r.stepState(name)
	st.Status, st.Detail = StatusNotNeeded, why
}

// run runs the steps; the engine ends the run (failed, or stopped by an
// operator or a cancel with nothing undone).
func (r *renewal) run(ctx workflow.Context) (RenewalResult, error) {
	err := r.eng.finish(ctx, r.runSteps(ctx))
	return r.st, err
}

// do runs one step under the operator's pause / retry / skip / abort loop.
func (r *renewal) do(ctx workflow.Context, name string, f func(workflow.Context) error) error {
	return r.eng.do(ctx, name, "", f)
}

func (r *renewal) activityOptions(queue string) workflow.ActivityOptions {
	o := r.in.Options
	return stepActivityOptions(queue, o.Retry, o.ScheduleToStart, 0, false,
		contract.ErrInvalidInput, contract.ErrMissingPermission, contract.ErrConflict, contract.ErrWrongQueue, contract.ErrNotSetUp,
		contract.ErrCertificateMissingOnServers, contract.ErrLegacyPathBlocked)
}

// onprem routes the PowerShell methods to the tenant's site queue.
func (r *renewal) onprem(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, summarized(ctx, r.activityOptions(temporalx.OnPremQueue(r.in.Target.Site))))
}

// cloud routes the Graph and Exchange Online methods to hybridflow-cloud.
func (r *renewal) cloud(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, summarized(ctx, r.activityOptions(temporalx.CloudQueue)))
}

// record keeps a step's outcome, counts its write and keeps its undo
// records (the query counts them; nothing undoes them).
func (r *renewal) record(name string, res contract.StepResult) {
	st := r.stepState(name)
	st.Outcome, st.Detail = string(res.Outcome), res.Detail
	r.eng.Wrote(res.Outcome)
	r.eng.Push(name, res.Undo...)
}

func (r *renewal) warn(ctx workflow.Context, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.st.Warnings = append(r.st.Warnings, msg)
	workflow.GetLogger(ctx).Warn(msg, "tenant", r.st.TenantID)
}

// renewalDecisionChange versions where the run's decision is made.
// Version 0 (DefaultVersion) decided in workflow code; version 1 evaluates
// plan.DecideRenewal in a local activity, so that the decision is in the
// history and a release with other thresholds or policies never changes,
// on replay, what a sleeping renewal already decided. Runs at version 0
// still decide inline, with plan.DecideRenewal (the same rule they
// started with): a release that changes the policy chain while such a run
// may still be waiting for its effective date (at most the lead time
// after this change was deployed) must keep a copy of the old chain for
// them.
const renewalDecisionChange = "renewal-decision-in-local-activity"

// runSteps reads, decides, and carries the decision out: a successor is
// created and staged (or a staged one carried through), its key uploaded,
// published on its effective date, and only then is the previous
// certificate cleared and its key taken out of Entra.
func (r *renewal) runSteps(ctx workflow.Context) error {
	r.v1 = workflow.GetVersion(ctx, renewalModeChange, workflow.DefaultVersion, 1) >= 1
	r.locking = workflow.GetVersion(ctx, changeTenantLock, workflow.DefaultVersion, 1) >= 1
	if err := r.do(ctx, RenewStepRead, r.readStep); err != nil {
		return err
	}
	if r.in.Options.ReportOnly {
		r.st.Action, r.st.Reason = RenewalActionReport, "read only"
		r.setState(ctx, StateRenewalReported, "")
		return nil
	}
	p, err := r.decide(ctx)
	if err != nil {
		return err
	}
	if due := r.begin(ctx, p); !due {
		return nil
	}
	if err := r.createOrCarry(ctx, &p); err != nil {
		return err
	}
	if err := r.uploadStep(ctx); err != nil {
		return err
	}
	if p.StagedLater {
		r.notNeeded(RenewStepWait, "the effective date is beyond the renewal window; a later run publishes")
		r.setState(ctx, StateRenewalStaged, "")
		return nil
	}
	if err := r.publishNew(ctx, p); err != nil {
		return err
	}
	if err := r.retireOld(ctx, p); err != nil {
		return err
	}
	r.setState(ctx, StateRenewed, "")
	return nil
}

// readStep takes the tenant's write lock and reads everything the
// decision needs.
func (r *renewal) readStep(ctx workflow.Context) error {
	if err := r.takeLock(ctx, RenewStepRead); err != nil {
		return err
	}
	return r.readAll(ctx)
}

// facts is what plan.DecideRenewal reads, taken from the read step.
func (r *renewal) facts(now time.Time) plan.RenewalFacts {
	o, ac := r.in.Options, r.read.AuthConfig
	f := plan.RenewalFacts{Now: now, Window: o.Window, LeadTime: o.LeadTime, EmergencyThreshold: o.EmergencyThreshold,
		Current: ac.Current, Next: ac.Next, NextEffective: ac.NextEffective, Previous: ac.Previous, Retired: r.read.Retired()}
	for _, c := range r.read.Certificates {
		f.Certificates = append(f.Certificates, plan.RenewalCertificate{Thumbprint: c.Thumbprint, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			Exportable: c.Exportable, HasDER: len(c.DER) > 0})
	}
	for _, k := range r.keys.Keys {
		f.EntraKeys = append(f.EntraKeys, k.Thumbprint)
	}
	return f
}

// decide turns what was read into this run's plan (plan.DecideRenewal):
// in a local activity from renewalDecisionChange version 1 on, so that the
// answer is recorded; runs started before it decide in workflow code.
func (r *renewal) decide(ctx workflow.Context) (plan.RenewalDecision, error) {
	f := r.facts(workflow.Now(ctx))
	if workflow.GetVersion(ctx, renewalDecisionChange, workflow.DefaultVersion, 1) < 1 {
		return plan.DecideRenewal(f), nil
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}, Summary: "Renewal: decide what this run does (renew, resume, finish, emergency or nothing)"})
	var d plan.RenewalDecision
	err := workflow.ExecuteLocalActivity(lctx, contract.DecideRenewal, f).Get(ctx, &d)
	return d, err
}

// begin records the decision and announces it; due is false when there is
// nothing to do. The emergency path shows in the state and, with its step
// prefix, in the HybridflowStep search attribute.
func (r *renewal) begin(ctx workflow.Context, p plan.RenewalDecision) (due bool) {
	r.st.Action, r.st.Reason = p.Action, p.Reason
	log := workflow.GetLogger(ctx)
	switch {
	case p.Action == RenewalActionNone:
		log.Info("auth certificate renewal not due", "tenant", r.st.TenantID, "reason", p.Reason)
		r.setState(ctx, StateRenewalNotDue, "")
		return false
	case p.Emergency:
		r.st.Emergency = true
		log.Warn("EMERGENCY auth certificate renewal: "+p.Reason, "tenant", r.st.TenantID)
		r.setState(ctx, StateRenewalEmergency, r.st.CurrentStep)
		if err := workflow.UpsertTypedSearchAttributes(ctx, SAStep.ValueSet(RenewalEmergencyStepPrefix+r.st.CurrentStep)); err != nil {
			log.Warn("upsert search attributes", "error", err)
		}
	default:
		log.Info("auth certificate renewal", "tenant", r.st.TenantID, "action", p.Action, "reason", p.Reason)
	}
	return true
}

// createOrCarry creates and stages a successor, or takes the staged one
// as the certificate to carry through. A resumed stage keeps the
// effective date chosen first (p.Effective is updated).
func (r *renewal) createOrCarry(ctx workflow.Context, p *plan.RenewalDecision) error {
	switch {
	case p.Create:
		if err := r.do(ctx, RenewStepCreate, func(ctx workflow.Context) error { return r.create(ctx, *p) }); err != nil {
			return err
		}
		if r.newCert == nil {
			return temporal.NewNonRetryableApplicationError("no certificate to stage", contract.ErrInvalidInput, nil)
		}
		return r.do(ctx, RenewStepStage, func(ctx workflow.Context) error { return r.stage(ctx, p) })
	case p.Staged != "":
		c, ok := r.read.Certificate(p.Staged)
		if !ok {
			return temporal.NewNonRetryableApplicationError("the staged certificate "+p.Staged+" was not read", contract.ErrInvalidInput, nil)
		}
		r.newCert = &c
		why := fmt.Sprintf("%s is already staged, effective %s", c.Thumbprint, p.Effective.UTC().Format(time.RFC3339))
		r.notNeeded(RenewStepCreate, why)
		r.notNeeded(RenewStepStage, why)
	default:
		r.notNeeded(RenewStepCreate, "a new certificate is already current")
		r.notNeeded(RenewStepStage, "a new certificate is already current")
	}
	return nil
}

// create makes (or reuses a spare) certificate valid at the effective date
// and outliving the current one.
func (r *renewal) create(ctx workflow.Context, p plan.RenewalDecision) error {
	var res contract.AuthCertificateResult
	in := contract.CreateAuthCertificateInput{Target: r.in.Target, Outlive: p.Outlive, ValidAt: p.Effective}
	if err := workflow.ExecuteActivity(r.onprem(ctx), contract.ActCreateAuthCertificate, in).Get(ctx, &res); err != nil {
		return err
	}
	r.record(RenewStepCreate, res.StepResult)
	r.newCert = res.Certificate
	r.observe(res.AuthConfig)
	return nil
}

// stage sets the new certificate as the next one for the effective date.
func (r *renewal) stage(ctx workflow.Context, p *plan.RenewalDecision) error {
	var res contract.AuthCertificateResult
	in := contract.StageAuthCertificateInput{Target: r.in.Target, Thumbprint: r.newCert.Thumbprint, EffectiveDate: p.Effective, Replace: p.Replace}
	if err := workflow.ExecuteActivity(r.onprem(ctx), contract.ActStageAuthCertificate, in).Get(ctx, &res); err != nil {
		return err
	}
	r.record(RenewStepStage, res.StepResult)
	r.observe(res.AuthConfig)
	if certs.SameThumbprint(res.AuthConfig.Next, r.newCert.Thumbprint) && !res.AuthConfig.NextEffective.IsZero() {
		p.Effective = res.AuthConfig.NextEffective // a resumed stage keeps the date chosen first
	}
	return nil
}

// uploadStep puts every certificate in service (valid now) on the Entra
// object, next to what is there.
func (r *renewal) uploadStep(ctx workflow.Context) error {
	if r.certOnly {
		r.notNeeded(RenewStepUpload, "the tenant is not set up for the dedicated application yet; setup uploads the certificate when it creates it")
		return nil
	}
	return r.do(ctx, RenewStepUpload, func(ctx workflow.Context) error { return r.upload(ctx, workflow.Now(ctx)) })
}

// publishNew waits for the effective date, checks that the staged key is
// still in Entra and that every server holds the certificate, and
// publishes it.
func (r *renewal) publishNew(ctx workflow.Context, p plan.RenewalDecision) error {
	notPublishing := func() bool { return !p.Publish || r.newCert == nil }
	return r.eng.runSteps(ctx, []engineStep{
		{name: RenewStepWait, admit: r.notNeededIf(RenewStepWait, "nothing to wait for", func() bool { return !p.Wait }),
			run: func(ctx workflow.Context) error { return r.wait(ctx, p.Effective) }},
		{name: RenewStepCheckKey, admit: func() bool { return r.locking && !notPublishing() }, run: r.checkStagedKey},
		{name: RenewStepCheckServers, admit: func() bool {
			return r.v1 && r.notNeededIf(RenewStepCheckServers, "nothing is published in this run", notPublishing)()
		},
			run: r.checkServers},
		{name: RenewStepPublish, admit: r.notNeededIf(RenewStepPublish, "the new certificate is already current", notPublishing), run: r.publish},
	})
}

// wait sleeps on a durable timer until the effective date, without the
// tenant's lock: nothing is written while waiting, other workflows may
// write the tenant meanwhile, and check-staged-key re-reads after.
func (r *renewal) wait(ctx workflow.Context, effective time.Time) error {
	d := effective.Sub(workflow.Now(ctx))
	st := r.stepState(RenewStepWait)
	if d <= 0 {
		st.Outcome, st.Detail = string(contract.Unchanged), "effective date "+effective.UTC().Format(time.RFC3339)+" already reached"
		return nil
	}
	r.setState(ctx, StateRenewalWaiting, RenewStepWait)
	r.lock.release(ctx)
	r.lock = nil
	if err := workflow.Sleep(ctx, d); err != nil {
		return err
	}
	r.setState(ctx, StateRunning, RenewStepWait)
	st.Outcome, st.Detail = "waited", fmt.Sprintf("waited %s until the effective date %s", d.Round(time.Second), effective.UTC().Format(time.RFC3339))
	return nil
}

// checkServers asks every Mailbox and Client Access server for the new
// certificate before it is published.
func (r *renewal) checkServers(ctx workflow.Context) error {
	var res contract.ServerCertificateResult
	in := contract.ServerCertificateInput{Target: r.in.Target, Thumbprint: r.newCert.Thumbprint}
	if err := workflow.ExecuteActivity(r.onprem(ctx), contract.ActCheckAuthCertificateOnServers, in).Get(ctx, &res); err != nil {
		return err
	}
	r.record(RenewStepCheckServers, res.StepResult)
	return nil
}

// publish makes the new certificate the current one.
func (r *renewal) publish(ctx workflow.Context) error {
	var res contract.AuthCertificateResult
	in := contract.AuthCertificateInput{Target: r.in.Target, Thumbprint: r.newCert.Thumbprint}
	if err := workflow.ExecuteActivity(r.onprem(ctx), contract.ActPublishAuthCertificate, in).Get(ctx, &res); err != nil {
		return err
	}
	r.record(RenewStepPublish, res.StepResult)
	r.observe(res.AuthConfig)
	return nil
}

// retireOld verifies before the previous certificate goes (it would be the
// way back; the emergency path has no working way back to keep), clears
// it, THEN takes retired keys out of Entra, and verifies again.
func (r *renewal) retireOld(ctx workflow.Context, p plan.RenewalDecision) error {
	noTrust := func() bool { return r.certOnly }
	var retired []string
	return r.eng.runSteps(ctx, []engineStep{
		{name: RenewStepVerify, admit: func() bool {
			return r.notNeededIf(RenewStepVerify, "no hybrid trust is configured yet; setup verifies it", noTrust)() &&
				r.notNeededIf(RenewStepVerify, "emergency path: the previous certificate had no working trust to keep", func() bool { return p.Emergency })()
		}, run: func(ctx workflow.Context) error { return r.verify(ctx, RenewStepVerify) }},
		{name: RenewStepClear, run: func(ctx workflow.Context) (err error) { retired, err = r.clearPrevious(ctx); return err }},
		{name: RenewStepRemoveKey, admit: r.removeKeyAdmit, run: func(ctx workflow.Context) error { return r.removeKeys(ctx, retired) }},
		{name: RenewStepVerifyFinal, admit: r.notNeededIf(RenewStepVerifyFinal, "no hybrid trust is configured yet; setup verifies it", noTrust),
			run: func(ctx workflow.Context) error { return r.verify(ctx, RenewStepVerifyFinal) }},
	})
}

// clearPrevious clears the previous certificate and returns the
// certificates it retired.
func (r *renewal) clearPrevious(ctx workflow.Context) ([]string, error) {
	var res contract.AuthCertificateResult
	in := contract.AuthCertificateInput{Target: r.in.Target, Thumbprint: r.read.AuthConfig.Current}
	if err := workflow.ExecuteActivity(r.onprem(ctx), contract.ActClearPreviousAuthCertificate, in).Get(ctx, &res); err != nil {
		return nil, err
	}
	r.record(RenewStepClear, res.StepResult)
	r.observe(res.AuthConfig)
	r.st.Retired = res.Retired
	return res.Retired, nil
}

// removeKeyAdmit: retired keys leave Entra only once the previous
// certificate is cleared (skipped by an operator, it may still be in use,
// so its key stays), and only where the keys are on an Entra object.
func (r *renewal) removeKeyAdmit() bool {
	switch {
	case r.certOnly:
		r.notNeeded(RenewStepRemoveKey, "the tenant is not set up for the dedicated application yet, so no key of it is in Entra to remove; setup uploads the current one")
		return false
	case r.stepState(RenewStepClear).Status != StatusDone:
		r.notNeeded(RenewStepRemoveKey, "the previous certificate was not cleared; its key stays in Entra")
		return false
	}
	return true
}

// removeKeys takes the retired certificates' keys out of Entra, keeping
// the current and the next one.
func (r *renewal) removeKeys(ctx workflow.Context, retired []string) error {
	keep := []string{r.read.AuthConfig.Current}
	if r.read.AuthConfig.Next != "" {
		keep = append(keep, r.read.AuthConfig.Next)
	}
	var res contract.AuthKeysResult
	in := contract.RemoveRetiredAuthKeysInput{AuthKeysInput: r.keysInput(), Thumbprints: retired, Keep: keep}
	if err := workflow.ExecuteActivity(r.cloud(ctx), contract.ActRemoveRetiredAuthKeys, in).Get(ctx, &res); err != nil {
		return err
	}
	r.record(RenewStepRemoveKey, res.StepResult)
	r.observeKeys(res.Keys)
	return nil
}

// takeLock takes the tenant's write lock unless the run holds it (or only
// reports).
func (r *renewal) takeLock(ctx workflow.Context, step string) error {
	if !r.locking || r.in.Options.ReportOnly || r.lock != nil {
		return nil
	}
	l, err := acquireTenantLock(ctx, r.st.TenantID, r.in.Options.LockWait, func() {
		r.stepState(step).Detail = "waiting for " + TenantLockWorkflowID(r.st.TenantID) + ": another workflow is writing this tenant"
	})
	if err != nil {
		return err
	}
	r.lock = l
	return nil
}

// ErrStagedKeyMissing: the key of the certificate about to be published
// is no longer on the Entra object. Publishing would break OAuth.
const ErrStagedKeyMissing = "StagedKeyMissing"

// checkStagedKey takes the lock again after the wait and re-reads the
// Entra object: the key uploaded for the certificate about to be published
// must still be there. If it is gone (another writer dropped it, or a
// person removed it), the step stops before publishing with the reason; an
// operator's retry puts the key back (the certificate is this renewal's)
// and checks again, an abort leaves the current certificate in service.
func (r *renewal) checkStagedKey(ctx workflow.Context) error {
	if err := r.takeLock(ctx, RenewStepCheckKey); err != nil {
		return err
	}
	st := r.stepState(RenewStepCheckKey)
	if r.certOnly {
		st.Outcome, st.Detail = string(contract.Unchanged), "lock taken; no Entra object carries the keys yet"
		return nil
	}
	tp := r.newCert.Thumbprint
	var k contract.AuthKeysState
	if err := workflow.ExecuteActivity(r.cloud(ctx), contract.ActReadAuthCertificateKeys, r.keysInput()).Get(ctx, &k); err != nil {
		return err
	}
	r.observeKeys(k)
	if r.keys.Has(tp) {
		st.Outcome, st.Detail = string(contract.Unchanged), "the key of "+strings.ToUpper(tp)+" is on "+r.st.EntraObject
		return nil
	}
	if !r.keyGoneReported {
		r.keyGoneReported = true
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the key of the staged certificate %s is no longer on %s %s (it was uploaded earlier in this renewal): publishing it would break OAuth; retry to upload it again and continue, or abort to keep the current certificate",
			strings.ToUpper(tp), r.keys.ObjectKind, orDash(r.keys.Name)), ErrStagedKeyMissing, nil)
	}
	if err := r.upload(ctx, workflow.Now(ctx)); err != nil {
		return err
	}
	if !r.keys.Has(tp) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("uploaded the key of the staged certificate %s again, but %s %s still does not show it", strings.ToUpper(tp), r.keys.ObjectKind, orDash(r.keys.Name)), ErrStagedKeyMissing, nil)
	}
	// r.upload counted the write and kept its undo records.
	st.Outcome, st.Detail = string(contract.Updated), "uploaded the key of "+strings.ToUpper(tp)+" again after it had disappeared"
	return nil
}

// readAll reads on-prem (auth config, certificates, mode), then the Entra
// object the mode uses.
func (r *renewal) readAll(ctx workflow.Context) error {
	if err := workflow.ExecuteActivity(r.onprem(ctx), contract.ActReadAuthCertificate, r.in.Target).Get(ctx, &r.read); err != nil {
		return err
	}
	blocked, err := r.resolveMode(ctx)
	if err != nil || blocked {
		return err // blocked: a report of a tenant whose mode cannot be decided
	}
	if err := r.resolveAppName(); err != nil {
		return err
	}
	if err := r.readKeys(ctx); err != nil {
		return err
	}
	r.st.AsOf = workflow.Now(ctx)
	r.refresh()
	st := r.stepState(RenewStepRead)
	st.Outcome = string(contract.Unchanged)
	st.Detail = fmt.Sprintf("current %s, %d day(s) left; %s", orDash(r.read.AuthConfig.Current), r.st.DaysLeft, r.st.EntraObject)
	return nil
}

// resolveMode decides where the keys live: by plan.RenewalMode in a local
// activity (version 1 of renewalModeChange), or by the rule runs started
// before it still replay through (plan.RenewalModeV0).
func (r *renewal) resolveMode(ctx workflow.Context) (blocked bool, err error) {
	if r.v1 {
		if blocked, err := r.decideMode(ctx); err != nil || blocked {
			return blocked, err
		}
	} else {
		d := plan.RenewalModeV0(r.in.Mode, r.read.DedicatedAppID)
		r.mode, r.st.ModeReason = d.Mode, d.Reason
	}
	r.st.Mode = string(r.mode)
	return false, nil
}

// resolveAppName names the dedicated application after the organisation's
// GUID (the inventory's, else the one read).
func (r *renewal) resolveAppName() error {
	if r.mode != plan.ModeDedicatedApp {
		return nil
	}
	guid := strings.ToLower(r.in.Tenant.OrganizationGUID)
	if guid == "" {
		guid = r.read.OrganizationGUID
	}
	if guid == "" {
		return temporal.NewNonRetryableApplicationError("the Exchange organization GUID is unknown (Get-OrganizationConfig), and the dedicated application is named after it; set organization_guid in the inventory",
			contract.ErrInvalidInput, nil)
	}
	r.appName = plan.DedicatedAppPrefix + guid
	return nil
}

// readKeys reads the keys on the Entra object the mode uses. A tenant not
// set up for the dedicated application (no application, no evoSTS auth
// server naming one) gets its on-prem certificate renewed only.
func (r *renewal) readKeys(ctx workflow.Context) error {
	if err := workflow.ExecuteActivity(r.cloud(ctx), contract.ActReadAuthCertificateKeys, r.keysInput()).Get(ctx, &r.keys); err != nil {
		return err
	}
	dedicated := r.mode == plan.ModeDedicatedApp
	if dedicated && r.keys.Found && r.read.DedicatedAppID != "" && !strings.EqualFold(r.keys.AppID, r.read.DedicatedAppID) {
		r.warn(ctx, "application %s has appId %s, but the evoSTS auth server names %s", r.appName, r.keys.AppID, r.read.DedicatedAppID)
	}
	if r.v1 && dedicated && !r.keys.Found && r.read.DedicatedAppID == "" {
		r.certOnly = true
		r.warn(ctx, "tenant %s is not set up for the dedicated Exchange hybrid application (no application %s, no evoSTS auth server naming one): this renewal keeps the on-premises auth certificate current only; run setup, which uploads it and verifies", r.st.TenantID, r.appName)
	}
	return nil
}

// decideMode runs the mode decision (version 1) as a local activity, so
// its answer is in the history. A read-only report of a tenant whose mode
// cannot be decided reports why instead of pausing (blocked = true, no
// keys read).
func (r *renewal) decideMode(ctx workflow.Context) (blocked bool, err error) {
	in := contract.RenewalModeInput{Tenant: r.in.Tenant, Requested: r.in.Mode, DedicatedAppID: r.read.DedicatedAppID, Servers: r.read.Servers}
	if in.Tenant.Cloud == "" {
		in.Tenant.Cloud = r.in.Target.Cloud
	}
	if in.Tenant.ID == "" {
		in.Tenant.ID = r.st.TenantID
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}, Summary: "Renewal: decide the mode (dedicated application or shared first-party service principal)"})
	var out contract.RenewalModeOutput
	if err := workflow.ExecuteLocalActivity(lctx, contract.DecideRenewalMode, in).Get(ctx, &out); err != nil {
		if !r.in.Options.ReportOnly {
			return false, err
		}
		msg, _ := describeError(err)
		r.st.ModeReason = msg
		r.warn(ctx, "no mode: %s", msg)
		r.st.AsOf = workflow.Now(ctx)
		r.refresh()
		st := r.stepState(RenewStepRead)
		st.Outcome = string(contract.Unchanged)
		st.Detail = fmt.Sprintf("current %s, %d day(s) left; keys not read: %s", orDash(r.read.AuthConfig.Current), r.st.DaysLeft, msg)
		return true, nil
	}
	r.mode, r.st.ModeReason = out.Mode, out.Reason
	for _, w := range out.Warnings {
		r.warn(ctx, "%s", w)
	}
	return false, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *renewal) keysInput() contract.AuthKeysInput {
	return contract.AuthKeysInput{Target: r.in.Target, Mode: r.mode, AppName: r.appName}
}

// observe folds an auth config reported by a step into what the workflow
// knows, so the query and later steps see the truth, not the plan.
func (r *renewal) observe(ac contract.AuthConfigView) {
	if ac == (contract.AuthConfigView{}) {
		return
	}
	r.read.AuthConfig = ac
	if r.newCert != nil {
		if _, ok := r.read.Certificate(r.newCert.Thumbprint); !ok {
			r.read.Certificates = append(r.read.Certificates, *r.newCert)
		}
	}
	r.refresh()
}

func (r *renewal) observeKeys(k contract.AuthKeysState) {
	r.keys = k
	r.refresh()
}

// refresh recomputes the query's certificate view.
func (r *renewal) refresh() {
	now := r.st.AsOf
	ac := r.read.AuthConfig
	view := func(tp string) *RenewalCertificate {
		if tp == "" {
			return nil
		}
		c := &RenewalCertificate{Thumbprint: strings.ToUpper(tp), InEntra: r.keys.Has(tp)}
		if cert, ok := r.read.Certificate(tp); ok {
			c.NotBefore, c.NotAfter, c.InStore = cert.NotBefore, cert.NotAfter, true
			c.DaysLeft = plan.RenewalDaysLeft(cert.NotAfter, now)
		}
		return c
	}
	r.st.Current, r.st.Next, r.st.Previous = view(ac.Current), view(ac.Next), view(ac.Previous)
	if r.st.Next != nil && !ac.NextEffective.IsZero() {
		e := ac.NextEffective
		r.st.Next.Effective = &e
	}
	r.st.DaysLeft = 0
	if r.st.Current != nil {
		r.st.DaysLeft = r.st.Current.DaysLeft
	}
	r.st.EntraKeys = nil
	for _, k := range r.keys.Keys {
		r.st.EntraKeys = append(r.st.EntraKeys, k.Thumbprint)
	}
	switch {
	case !r.keys.Found && r.keys.ObjectKind != "":
		r.st.EntraObject = fmt.Sprintf("%s %s not found", r.keys.ObjectKind, orDash(r.keys.Name))
	case r.keys.ObjectKind != "":
		r.st.EntraObject = fmt.Sprintf("%s %s (%d key(s))", r.keys.ObjectKind, r.keys.Name, len(r.keys.Keys))
	}
}

// upload puts every certificate in service and valid now (the current one
// and the one being carried through) on the Entra object, next to the
// keys already there.
func (r *renewal) upload(ctx workflow.Context, now time.Time) error {
	var list []contract.AuthCertificate
	add := func(c contract.AuthCertificate) {
		for _, x := range list {
			if certs.SameThumbprint(x.Thumbprint, c.Thumbprint) {
				return
			}
		}
		if c.ValidAt(now) && len(c.DER) > 0 {
			list = append(list, c)
		}
	}
	if cur, ok := r.read.Certificate(r.read.AuthConfig.Current); ok {
		add(cur)
	}
	if r.newCert != nil {
		add(*r.newCert)
	}
	if len(list) == 0 {
		return temporal.NewNonRetryableApplicationError("no valid auth certificate to upload", contract.ErrInvalidInput, nil)
	}
	var res contract.AuthKeysResult
	in := contract.UploadAuthKeysInput{AuthKeysInput: r.keysInput(), Certificates: list}
	if err := workflow.ExecuteActivity(r.cloud(ctx), contract.ActUploadAuthCertificateKeys, in).Get(ctx, &res); err != nil {
		return err
	}
	r.record(RenewStepUpload, res.StepResult)
	r.observeKeys(res.Keys)
	return nil
}

// verifyTargets resolves, once, what Test-OAuthConnectivity is run with:
// the inventory's overrides first, then what was discovered; the cloud
// mailbox needs one Exchange Online read.
func (r *renewal) verifyTargets(ctx workflow.Context) (*renewalVerify, error) {
	if r.verifyIn != nil {
		return r.verifyIn, nil
	}
	tf := r.in.Tenant
	v := &renewalVerify{cloudTarget: r.read.VerifyCloudTarget, onPremMailbox: firstOf(tf.OnPremMailbox, r.read.OnPremMailbox), cloudMailbox: tf.CloudMailbox}
	if u, err := url.Parse(firstOf(tf.OnPremEWSExternalURL, r.read.OnPremEWSExternalURL)); err == nil && u.Host != "" {
		v.onPremTarget = u.Scheme + "://" + u.Host + "/metadata/json/1"
	}
	if v.cloudMailbox == "" {
		var o plan.Observed
		if err := workflow.ExecuteActivity(r.cloud(ctx), contract.ActDiscoverOnline, r.in.Target).Get(ctx, &o); err != nil {
			return nil, err
		}
		if len(o.CloudMailboxes) > 0 {
			v.cloudMailbox = o.CloudMailboxes[0]
		}
	}
	var missing []string
	if v.cloudTarget == "" {
		missing = append(missing, "the Exchange Online EWS URL (unknown cloud?)")
	}
	if v.onPremTarget == "" {
		missing = append(missing, "the on-premises external EWS URL (set onprem_ews_external_url)")
	}
	if v.onPremMailbox == "" {
		missing = append(missing, "an on-premises mailbox (set onprem_mailbox)")
	}
	if v.cloudMailbox == "" {
		missing = append(missing, "an Exchange Online mailbox (set cloud_mailbox)")
	}
	if len(missing) > 0 {
		return nil, temporal.NewNonRetryableApplicationError("cannot verify: missing "+strings.Join(missing, ", "), contract.ErrInvalidInput, nil)
	}
	r.verifyIn = v
	return v, nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// verify tests both directions (the setup's Verify activities) until both
// succeed or the deadline passes, in the engine's verification rounds
// (durable timers, doubling waits).
func (r *renewal) verify(ctx workflow.Context, name string) error {
	v, err := r.verifyTargets(ctx)
	if err != nil {
		return err
	}
	deadline := r.in.Options.VerifyDeadline
	if deadline == 0 {
		deadline = 30 * time.Minute
	}
	wait := r.in.Options.VerifyInterval
	if wait == 0 {
		wait = 15 * time.Second
	}
	if r.st.Verification == nil {
		r.st.Verification = map[string]string{}
	}
	t := r.in.Target
	var on, cl contract.VerifyResult
	_, ok, err := r.eng.verifyRounds(ctx, deadline, wait, func(int) (bool, error) {
		fOn := workflow.ExecuteActivity(r.onprem(ctx), contract.ActVerifyFromOnPrem, contract.VerifyInput{Target: t, TargetURI: v.cloudTarget, Mailbox: v.onPremMailbox})
		fCl := workflow.ExecuteActivity(r.cloud(ctx), contract.ActVerifyFromOnline, contract.VerifyInput{Target: t, TargetURI: v.onPremTarget, Mailbox: v.cloudMailbox})
		on, cl = contract.VerifyResult{}, contract.VerifyResult{}
		if err := fOn.Get(ctx, &on); err != nil {
			return false, err
		}
		if err := fCl.Get(ctx, &cl); err != nil {
			return false, err
		}
		r.st.Verification["onprem-to-online"] = verdict(on)
		r.st.Verification["online-to-onprem"] = verdict(cl)
		return on.Success && cl.Success, nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("verification did not succeed within %s: on-prem → Exchange Online: %s; Exchange Online → on-prem: %s",
			deadline, verdict(on), verdict(cl)), contract.ErrVerification, nil)
	}
	st := r.stepState(name)
	st.Outcome, st.Detail = "verified", "Test-OAuthConnectivity succeeded in both directions with certificate "+r.read.AuthConfig.Current
	return nil
}
