package workflows

import (
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// VerifyInventory checks an inventory for drift without writing: for each
// tenant it runs the dry-run setup `hybridflow plan` runs (discover, then
// plan; hybridflow/plan/<tenant>) and folds it into one verdict per tenant,
// with the auth certificate's expiry the plan read. Where the plan cannot
// say enough about the certificates (it failed other than by a timeout, or
// a next certificate is staged, whose effective date only the renewal
// reads), the read-only renewal `renew report` runs follows
// (hybridflow/renewal-report/<tenant>); in the common case of one current
// certificate a tenant costs one child workflow. The report is the
// workflow's result, and the run's HybridflowDrift search attribute says
// whether any tenant drifted; the workers' metrics read the newest report
// of each inventory (hybridflow_tenant_drift and the certificate gauges),
// so what they show is the same on every worker and survives restarts.
//
// `hybridflow verify` runs it once; `hybridflow verify --schedule` makes a
// Temporal Schedule (ID hybridflow/verify/<name>) run it periodically.

// VerifyWorkflowID names a verify run of an inventory; a schedule uses it
// as its action's workflow ID, to which Temporal appends the scheduled time.
func VerifyWorkflowID(name string) string { return VerifyIDPrefix + name }

// VerifyScheduleID is the ID of an inventory's verify schedule.
func VerifyScheduleID(name string) string { return VerifyIDPrefix + name }

// VerifyIDPrefix starts every verify run's and verify schedule's ID.
const VerifyIDPrefix = "hybridflow/verify/"

// HybridflowDrift values (SADrift) of a finished verify run.
const (
	DriftConverged = "converged" // every tenant converged
	DriftDrifted   = "drifted"   // at least one tenant would be written, is blocked, or could not be checked
)

// Verify defaults.
const (
	// DefaultVerifyContinueAsNewEvery: each tenant costs one or two child
	// workflows (five to ten events), so 250 tenants stay under 2,500.
	DefaultVerifyContinueAsNewEvery = 250
	// DefaultVerifyTenantTimeout bounds each tenant's two read-only runs.
	DefaultVerifyTenantTimeout = time.Hour
	// verifyDeferLimit: a tenant whose plan or report run is already
	// running (started by hand) is tried again every deferredRetryBackoff,
	// at most this often, before its verdict says so.
	verifyDeferLimit = 20
	// maxVerdictError bounds an error message kept in the report.
	maxVerdictError = 300
)

// VerifyInput is a verify request. Large inventories travel by reference
// (InventoryPath, read page by page by the cloud worker), small ones inline.
type VerifyInput struct {
	Name          string          `json:"name"`
	InventoryPath string          `json:"inventory_path,omitempty"`
	Tenants       []config.Tenant `json:"tenants,omitempty"`
	// Concurrency: tenants checked at once (DefaultConcurrency).
	Concurrency int `json:"concurrency,omitempty"`
	// TenantTimeout bounds each of a tenant's runs (DefaultVerifyTenantTimeout).
	TenantTimeout time.Duration `json:"tenant_timeout,omitempty"`
	// Retry, ScheduleToStart and StartToClose tune the read activities as
	// in SetupOptions (tests shorten them).
	Retry           RetryOptions  `json:"retry,omitempty"`
	ScheduleToStart time.Duration `json:"schedule_to_start,omitempty"`
	StartToClose    time.Duration `json:"start_to_close,omitempty"`
	// ContinueAsNewEvery overrides DefaultVerifyContinueAsNewEvery (tests).
	ContinueAsNewEvery int `json:"continue_as_new_every,omitempty"`
	// Carry is what the previous run handed over (continue-as-new).
	Carry *VerifyCarry `json:"carry,omitempty"`
}

// VerifyCarry survives continue-as-new.
type VerifyCarry struct {
	Next     int              `json:"next"`
	Total    int              `json:"total"`
	Started  time.Time        `json:"started"`
	Runs     int              `json:"runs"`
	Verdicts []TenantVerdict  `json:"verdicts,omitempty"`
	Deferred []deferredTenant `json:"deferred,omitempty"`
}

type deferredTenant struct {
	Tenant config.Tenant `json:"tenant"`
	Tries  int           `json:"tries"`
}

// TenantVerdict is one tenant's line of a verify report. Field names are
// short on purpose: a report of thousands of tenants is one payload.
type TenantVerdict struct {
	TenantID string `json:"id"`
	Site     string `json:"site,omitempty"`
	LyncSite string `json:"lync_site,omitempty"`
	// Drifted: a setup would write (Writes), would pause at a blocked
	// step (Blocked), or the plan could not be made (Error).
	Drifted bool     `json:"drifted"`
	Writes  int      `json:"writes,omitempty"`
	Blocked []string `json:"blocked,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	Error   string   `json:"error,omitempty"`
	// ErrorType is the failure's type (an activity's error type, Timeout).
	ErrorType string `json:"error_type,omitempty"`
	// The auth certificates as the plan (or, where it could not tell, the
	// read-only renewal) found them: the current one's expiry, and a
	// staged next one's expiry and effective date. CertError says why they
	// are unknown.
	CertNotAfter     *time.Time `json:"cert_not_after,omitempty"`
	NextCertNotAfter *time.Time `json:"next_cert_not_after,omitempty"`
	NextCertEffect   *time.Time `json:"next_cert_effective,omitempty"`
	CertError        string     `json:"cert_error,omitempty"`
}

// VerifyReport is a verify run's result.
type VerifyReport struct {
	Name     string          `json:"name"`
	Total    int             `json:"total"`
	Drifted  int             `json:"drifted"`
	Blocked  int             `json:"blocked"`
	Errors   int             `json:"errors"`
	Tenants  []TenantVerdict `json:"tenants"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Runs     int             `json:"continued_as_new"`
}

// PlanCounts counts what a plan would do the way every summary reports
// it: steps that write, and steps that are blocked (the run pauses there
// for an operator, so such a plan is never converged even though the
// blocked step itself writes nothing).
func PlanCounts(actions []plan.Action) (writes int, blocked []plan.Step) {
	for _, a := range actions {
		switch {
		case a.Change.Writes():
			writes++
		case a.Change == plan.ChangeBlocked:
			blocked = append(blocked, a.Step)
		}
	}
	return writes, blocked
}

// verifyTenant is one tenant being checked: its dry-run setup and, when
// needed, its read-only renewal.
type verifyTenant struct {
	t    deferredTenant
	res  SetupResult
	perr error
	// report is nil when the plan said enough about the certificates.
	report *RenewalState
	rerr   error
	done   workflow.Future // ready once the runs have ended
}

type verify struct {
	in      VerifyInput
	carry   VerifyCarry
	running []*verifyTenant
	// deferred tenants wait for deferTimer.
	deferred   []deferredTenant
	deferTimer workflow.Future
	inventory  inventoryPager
}

// VerifyInventory verifies every tenant of an inventory (see the comment
// at the top of this file).
func VerifyInventory(ctx workflow.Context, in VerifyInput) (VerifyReport, error) {
	v := &verify{in: in}
	endKnown := knowsItsEnd(ctx)
	if v.in.Concurrency <= 0 {
		v.in.Concurrency = DefaultConcurrency
	}
	if v.in.ContinueAsNewEvery <= 0 {
		v.in.ContinueAsNewEvery = DefaultVerifyContinueAsNewEvery
	}
	if v.in.TenantTimeout <= 0 {
		v.in.TenantTimeout = DefaultVerifyTenantTimeout
	}
	if v.in.Carry != nil {
		v.carry = *v.in.Carry
		v.deferred, v.carry.Deferred = v.carry.Deferred, nil
		if len(v.deferred) > 0 {
			v.deferTimer = workflow.NewTimer(ctx, deferredRetryBackoff)
		}
	} else {
		v.carry = VerifyCarry{Started: workflow.Now(ctx)}
	}
	v.in.Carry = nil
	v.inventory = inventoryPager{path: v.in.InventoryPath, inline: v.in.Tenants, next: &v.carry.Next, total: &v.carry.Total, endKnown: endKnown}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (VerifyReport, error) { return v.report(ctx), nil }); err != nil {
		return VerifyReport{}, err
	}
	return v.run(ctx)
}

func (v *verify) run(ctx workflow.Context) (VerifyReport, error) {
	started := 0
	exhausted := false
	for {
		for len(v.running) < v.in.Concurrency && started < v.in.ContinueAsNewEvery {
			var t deferredTenant
			if len(v.deferred) > 0 && v.deferTimer != nil && v.deferTimer.IsReady() {
				t, v.deferred = v.deferred[0], v.deferred[1:]
			} else if !exhausted {
				next, ok, err := v.inventory.nextTenant(ctx)
				if err != nil {
					return v.report(ctx), err
				}
				if !ok {
					exhausted = true
					continue
				}
				t = deferredTenant{Tenant: next}
			} else {
				break
			}
			v.start(ctx, t)
			started++
		}
		exhausted = exhausted || v.inventory.doneAtShare(started, v.in.ContinueAsNewEvery)
		if len(v.running) == 0 {
			if exhausted && len(v.deferred) == 0 {
				break
			}
			if started >= v.in.ContinueAsNewEvery {
				v.carry.Runs++
				v.carry.Deferred = v.deferred
				next := v.in
				carry := v.carry
				next.Carry = &carry
				return VerifyReport{}, workflow.NewContinueAsNewError(ctx, VerifyInventory, next)
			}
		}
		sel := workflow.NewSelector(ctx)
		for _, vt := range v.running {
			sel.AddFuture(vt.done, func(workflow.Future) { v.finish(ctx, vt) })
		}
		if v.deferTimer != nil && !v.deferTimer.IsReady() {
			sel.AddFuture(v.deferTimer, func(workflow.Future) {})
		}
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if ctx.Err() != nil {
			return v.report(ctx), temporal.NewCanceledError("verify cancelled")
		}
	}
	rep := v.report(ctx)
	drift := DriftConverged
	if rep.Drifted > 0 {
		drift = DriftDrifted
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, SADrift.ValueSet(drift)); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
	return rep, nil
}

// start begins a tenant's read-only runs. Neither pauses: a failure ends
// the run and becomes the verdict's error, so a scheduled verify never
// waits for an operator.
func (v *verify) start(ctx workflow.Context, t deferredTenant) {
	setupIn := InputFromTenant(t.Tenant, SetupOptions{DryRun: true, FailurePolicy: PolicyFail, Retry: v.in.Retry,
		ScheduleToStart: v.in.ScheduleToStart, StartToClose: v.in.StartToClose})
	pctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:               PlanWorkflowID(t.Tenant.ID),
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: v.in.TenantTimeout,
		TypedSearchAttributes:    SetupStartAttributes(setupIn),
	})
	vt := &verifyTenant{t: t}
	pf := workflow.ExecuteChildWorkflow(pctx, Setup, setupIn)
	done, settle := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer settle.Set(nil, nil)
		vt.perr = pf.Get(gctx, &vt.res)
		if !needsRenewalReport(vt.res, vt.perr) {
			return
		}
		renewIn := RenewalInputFromTenant(t.Tenant, RenewalModeDetect, RenewalOptions{ReportOnly: true, FailurePolicy: PolicyFail,
			Retry: v.in.Retry, ScheduleToStart: v.in.ScheduleToStart})
		rctx := workflow.WithChildOptions(gctx, workflow.ChildWorkflowOptions{
			WorkflowID:               RenewalReportWorkflowID(t.Tenant.ID),
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowExecutionTimeout: v.in.TenantTimeout,
		})
		var st RenewalState
		vt.rerr = workflow.ExecuteChildWorkflow(rctx, Renewal, renewIn).Get(gctx, &st)
		vt.report = &st
	})
	vt.done = done
	v.running = append(v.running, vt)
}

// needsRenewalReport: the plan did not say enough about the auth
// certificates. It names the current certificate (and a usable staged
// one) in its keys, but a staged certificate's effective date only the
// renewal reads, and a failed plan names none. A plan that timed out (no
// worker at the site) is not asked again.
func needsRenewalReport(res SetupResult, perr error) bool {
	if perr != nil {
		if isAlreadyStarted(perr) {
			return false
		}
		_, typ := describeError(perr)
		return typ != "Timeout"
	}
	return res.Desired == nil || len(res.Desired.Keys) != 1
}

// finish folds a tenant whose runs have ended into the report, or defers
// it when another run of the same ID was already going.
func (v *verify) finish(ctx workflow.Context, vt *verifyTenant) {
	out := v.running[:0]
	for _, r := range v.running {
		if r != vt {
			out = append(out, r)
		}
	}
	v.running = out
	if (isAlreadyStarted(vt.perr) || isAlreadyStarted(vt.rerr)) && vt.t.Tries < verifyDeferLimit && ctx.Err() == nil {
		vt.t.Tries++
		v.deferred = append(v.deferred, vt.t)
		if v.deferTimer == nil || v.deferTimer.IsReady() {
			v.deferTimer = workflow.NewTimer(ctx, deferredRetryBackoff)
		}
		return
	}
	v.carry.Verdicts = append(v.carry.Verdicts, Verdict(vt.t.Tenant, vt.res, vt.perr, vt.report, vt.rerr))
}

// Verdict folds a tenant's dry-run setup (res, perr) and, when it ran, its
// read-only renewal (report, rerr; report nil when it did not run) into
// its line of the report.
func Verdict(t config.Tenant, res SetupResult, perr error, report *RenewalState, rerr error) TenantVerdict {
	vd := TenantVerdict{TenantID: t.ID, Site: t.Site, LyncSite: t.LyncSite, Mode: res.Mode}
	if perr != nil {
		msg, typ := describeError(perr)
		if isAlreadyStarted(perr) {
			msg, typ = "another plan of this tenant ("+PlanWorkflowID(t.ID)+") kept running", "AlreadyStarted"
		}
		vd.Drifted, vd.Error, vd.ErrorType = true, clipText(msg), typ
	} else {
		writes, blocked := PlanCounts(res.Plan)
		vd.Writes = writes
		for _, s := range blocked {
			vd.Blocked = append(vd.Blocked, string(s))
		}
		vd.Drifted = writes > 0 || len(blocked) > 0
	}
	if report == nil && rerr == nil {
		switch {
		case perr != nil:
			vd.CertError = "not read: the plan failed (" + vd.ErrorType + ")"
		case res.Desired != nil && len(res.Desired.Keys) > 0:
			na := res.Desired.Keys[0].End.UTC()
			vd.CertNotAfter = &na
		default:
			vd.CertError = "the plan names no auth certificate"
		}
		return vd
	}
	var st RenewalState
	if report != nil {
		st = *report
	}
	switch {
	case rerr != nil:
		msg, _ := describeError(rerr)
		vd.CertError = clipText(msg)
	case st.Current == nil:
		vd.CertError = "Get-AuthConfig names no current auth certificate"
	case !st.Current.InStore || st.Current.NotAfter.IsZero():
		vd.CertError = "the current auth certificate " + st.Current.Thumbprint + " is not in the Exchange certificate store"
	default:
		na := st.Current.NotAfter.UTC()
		vd.CertNotAfter = &na
		if n := st.Next; n != nil {
			nna := n.NotAfter.UTC()
			vd.NextCertNotAfter = &nna
			if n.Effective != nil {
				eff := n.Effective.UTC()
				vd.NextCertEffect = &eff
			}
		}
	}
	return vd
}

func clipText(s string) string {
	if r := []rune(s); len(r) > maxVerdictError {
		return string(r[:maxVerdictError-1]) + "…"
	}
	return s
}

func (v *verify) report(ctx workflow.Context) VerifyReport {
	r := VerifyReport{Name: v.in.Name, Total: v.carry.Total, Tenants: v.carry.Verdicts, Started: v.carry.Started,
		Finished: workflow.Now(ctx), Runs: v.carry.Runs}
	if r.Tenants == nil {
		r.Tenants = []TenantVerdict{}
	}
	for _, t := range r.Tenants {
		if t.Drifted {
			r.Drifted++
		}
		if len(t.Blocked) > 0 {
			r.Blocked++
		}
		if t.Error != "" {
			r.Errors++
		}
	}
	return r
}

// VerifyNameFromWorkflowID returns the inventory name of a verify run's
// workflow ID: hybridflow/verify/<name>, or with the time a schedule
// appends (-2006-01-02T15:04:05Z). ok is false for any other ID.
func VerifyNameFromWorkflowID(id string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(id, VerifyIDPrefix)
	if !ok || rest == "" {
		return "", false
	}
	const stamp = len("-2006-01-02T15:04:05Z")
	if len(rest) > stamp {
		if _, err := time.Parse("-2006-01-02T15:04:05Z", rest[len(rest)-stamp:]); err == nil {
			return rest[:len(rest)-stamp], true
		}
	}
	return rest, true
}
