package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/chaos"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// Renewals during the rollout. The suite starts them as an operator does
// with `hybridflow renew schedule --paused` and `hybridflow renew now`: a
// Temporal Schedule per tenant whose action starts the Renewal workflow on
// the cloud queue (the starter's action, rebuilt here because it lives in
// the starter's main package), then triggered at once. Each goes to a
// tenant whose setup holds the tenant's write lock at that moment, so the
// renewal meets the lock: it waits, or pauses with TenantBusy and is sent
// on by an operator retry once the rollout has settled.

// renewalLeadTime is how far ahead a renewing run stages its certificate:
// long enough that the run waits, releases the lock and takes it again
// (check-staged-key), short enough for the run to finish.
const renewalLeadTime = 3 * time.Second

// renewalLockWait is the renewals' lock_wait: two tries (the lock is
// polled after 10 s, then 20 s), so a setup that holds the tenant longer
// than that makes the renewal pause with TenantBusy.
const renewalLockWait = 25 * time.Second

// renewalRetries bounds the operator retries of one renewal.
const renewalRetries = 6

func renewalOptions(writes bool) workflows.RenewalOptions {
	o := workflows.RenewalOptions{
		LeadTime:        renewalLeadTime,
		VerifyDeadline:  time.Minute,
		VerifyInterval:  500 * time.Millisecond,
		FailurePolicy:   workflows.PolicyPause,
		Retry:           workflows.RetryOptions{InitialInterval: 200 * time.Millisecond, MaximumInterval: 2 * time.Second, MaximumAttempts: 6},
		ScheduleToStart: 3 * time.Minute,
		LockWait:        renewalLockWait,
	}
	if writes {
		// Every current certificate is inside a century: renew now.
		o.Window = 100 * 365 * 24 * time.Hour
	}
	return o
}

type renewalRun struct {
	chaos.Renewal
	retries   int
	lastPause time.Time
	closed    bool
}

// renewals follows the renewals of one run.
type renewals struct {
	c       client.Client
	tenants map[string]config.Tenant // by lower-case ID
	owed    int
	runs    []*renewalRun
	started map[string]bool
	polled  time.Time
}

func newRenewals(c client.Client, inv []config.Tenant) *renewals {
	rn := &renewals{c: c, tenants: map[string]config.Tenant{}, started: map[string]bool{}}
	for _, t := range inv {
		rn.tenants[strings.ToLower(t.ID)] = t
	}
	return rn
}

// startOwed starts as many owed renewals as there are tenants whose setup
// holds the lock (and that have no renewal yet); the rest wait for the
// next call. With afterSetups (the rollout has settled, no setup holds a
// lock) they go to the first tenants without a renewal instead, marked
// AfterSetup. A start that fails (the server restarting) is reported and
// tried again by the next call.
func (rn *renewals) startOwed(ctx context.Context, afterSetups bool) ([]string, error) {
	if rn.owed == 0 {
		return nil, nil
	}
	held, err := rn.heldBySetups(ctx)
	if err != nil {
		return nil, nil // the server may be restarting: try again later
	}
	if afterSetups && len(held) == 0 {
		for id := range rn.tenants {
			if !rn.started[id] {
				held = append(held, id)
			}
		}
		slices.Sort(held)
	}
	var out []string
	for _, id := range held {
		if rn.owed == 0 {
			break
		}
		t := rn.tenants[id]
		writes := chaos.RenewalWrites(len(rn.runs))
		wf, err := rn.startOne(ctx, t, writes)
		if err != nil {
			return out, fmt.Errorf("start the renewal of %s: %w", t.ID, err)
		}
		rn.started[id] = true
		rn.owed--
		rn.runs = append(rn.runs, &renewalRun{Renewal: chaos.Renewal{Tenant: t.ID, WorkflowID: wf, Writes: writes, AfterSetup: afterSetups}})
		out = append(out, fmt.Sprintf("%s (%s, renews %v)", t.ID, wf, writes))
	}
	return out, nil
}

// heldBySetups lists, sorted, the tenants without a renewal yet whose
// write lock is held by their setup: the running TenantLock workflows, as
// visibility lists them, each confirmed by its parent.
func (rn *renewals) heldBySetups(ctx context.Context) ([]string, error) {
	resp, err := rn.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowType = 'TenantLock' AND ExecutionStatus = 'Running'", PageSize: 1000})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		id, ok := strings.CutPrefix(e.GetExecution().GetWorkflowId(), workflows.TenantLockWorkflowID(""))
		if _, known := rn.tenants[id]; ok && known && !rn.started[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		d, err := rn.c.DescribeWorkflowExecution(ctx, workflows.TenantLockWorkflowID(id), "")
		if err != nil {
			continue
		}
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING &&
			info.GetParentExecution().GetWorkflowId() == workflows.SetupWorkflowID(id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// startOne creates the tenant's renewal schedule, paused (renew schedule
// --paused), triggers it (renew now) and returns the workflow ID of the
// run it started.
func (rn *renewals) startOne(ctx context.Context, t config.Tenant, writes bool) (string, error) {
	in := workflows.RenewalInputFromTenant(t, workflows.RenewalModeDetect, renewalOptions(writes))
	id := workflows.RenewalScheduleID(t.ID)
	action := &client.ScheduleWorkflowAction{
		ID: workflows.RenewalWorkflowID(t.ID), Workflow: workflows.Renewal, Args: []any{in}, TaskQueue: temporalx.CloudQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SATenant.ValueSet(t.ID), workflows.SACloud.ValueSet(t.Cloud)),
	}
	h, err := rn.c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: id, Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}}, Action: action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: time.Hour, Paused: true,
		Note: "auth certificate renewal for " + t.DisplayName, Memo: map[string]any{"tenant": t.ID},
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		h, err = rn.c.ScheduleClient().GetHandle(ctx, id), nil
	}
	if err != nil {
		return "", fmt.Errorf("create schedule %s: %w", id, err)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return "", fmt.Errorf("trigger %s: %w", id, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := h.Describe(ctx)
		if err == nil {
			for i := len(d.Info.RecentActions) - 1; i >= 0; i-- {
				if a := d.Info.RecentActions[i]; a.StartWorkflowResult != nil && a.StartWorkflowResult.WorkflowID != "" {
					return a.StartWorkflowResult.WorkflowID, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("schedule %s started no workflow within 30s of its trigger (last error %v)", id, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// poll reads every open renewal: a closed one's result, a paused one's
// reason (once per pause); with retry, a paused one gets an operator
// retry (at most renewalRetries). It reports whether every renewal has
// closed or stays paused after its last retry.
func (rn *renewals) poll(ctx context.Context, retry bool) bool {
	done := true
	for _, run := range rn.runs {
		if run.closed {
			continue
		}
		d, err := rn.c.DescribeWorkflowExecution(ctx, run.WorkflowID, "")
		if err != nil {
			done = false
			continue
		}
		if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			var res workflows.RenewalResult
			err := rn.c.GetWorkflow(ctx, run.WorkflowID, "").Get(ctx, &res)
			run.State, run.Action = res.State, res.Action
			if err != nil {
				run.Err = firstLine(err.Error())
				var ae *temporal.ApplicationError
				if errors.As(err, &ae) {
					run.Reason = ae.Type()
				}
				if run.State == "" {
					run.State = "failed"
				}
			}
			run.closed = true
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := rn.c.QueryWorkflow(qctx, run.WorkflowID, "", workflows.QueryState)
		var st workflows.RenewalState
		if err == nil {
			err = v.Get(&st)
		}
		cancel()
		if err != nil || st.Paused == nil {
			done = false
			continue
		}
		p := st.Paused
		if !p.Since.Equal(run.lastPause) {
			run.lastPause = p.Since
			run.Paused = append(run.Paused, fmt.Sprintf("step %s: %s: %s", p.Step, p.ErrorType, firstLine(p.Error)))
			run.Reason = p.ErrorType
			if p.ErrorType == workflows.ErrTenantBusy {
				run.Busy++
			}
		}
		if !retry || run.retries >= renewalRetries {
			if !retry {
				done = false
			}
			continue
		}
		done = false
		h, err := rn.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.WorkflowID, UpdateName: workflows.UpdateRetry,
			Args: []any{workflows.OperatorAction{Reason: "chaos suite: the rollout has settled"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			var step string
			err = h.Get(ctx, &step)
		}
		if err == nil {
			run.retries++
		}
	}
	return done
}

// finish marks what is still open and returns the renewals as they ended.
func (rn *renewals) finish() []chaos.Renewal {
	out := make([]chaos.Renewal, 0, len(rn.runs))
	for _, run := range rn.runs {
		run.Open = !run.closed
		out = append(out, run.Renewal)
	}
	return out
}

// problems are renewals that neither completed as asked nor stopped with
// a reason.
func renewalProblems(rs []chaos.Renewal) []string {
	var out []string
	for _, r := range rs {
		want := workflows.StateRenewalNotDue
		if r.Writes {
			want = workflows.StateRenewed
		}
		switch {
		case r.Open && r.Reason == "":
			out = append(out, fmt.Sprintf("%s: renewal %s is still running without a pause", r.Tenant, r.WorkflowID))
		case r.Open, r.Err != "" && r.Reason != "":
			// stopped with a reason
		case r.Err != "":
			out = append(out, fmt.Sprintf("%s: renewal %s failed without an error type: %s", r.Tenant, r.WorkflowID, r.Err))
		case r.State != want:
			out = append(out, fmt.Sprintf("%s: renewal %s ended %s (action %s), want %s", r.Tenant, r.WorkflowID, r.State, r.Action, want))
		}
	}
	return out
}
