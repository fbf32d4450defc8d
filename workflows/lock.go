package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// One writer per tenant. Setup (and migrate, which is a setup under the
// same workflow ID) and Renewal read a tenant's keyCredentials collection
// and PATCH it whole, and change its Exchange auth configuration; Graph
// has no conditional write for the collection, so two of them at once can
// lose each other's keys. Before its first write a run takes the tenant's
// lock: it starts the child workflow TenantLock with the fixed ID
// TenantLockWorkflowID(tenant). Temporal lets one workflow run per ID, so
// only one such child exists at a time; a second run's start fails with
// "already started" and the run waits on a durable timer and tries again.
//
// The child lives exactly as long as its holder wants it: the holder
// cancels it to release, and its parent close policy terminates it when
// the holder closes however it closes (completed, failed, terminated,
// timed out), so a holder that is gone can never keep the tenant. A
// holder whose worker crashed is still running: it keeps the lock until
// another worker finishes it. Everything is in the history (child start,
// its failure, timers), so replay takes the same path.

// changeTenantLock versions the lock and the renewal's staged-key check:
// runs started before it take neither.
const changeTenantLock = "tenant-write-lock"

// TenantLockWorkflowID is the ID of a tenant's write lock.
func TenantLockWorkflowID(tenantID string) string {
	return "hybridflow/lock/" + strings.ToLower(tenantID)
}

// ErrTenantBusy: another workflow kept the tenant's lock longer than this
// run was willing to wait. An operator retry waits again.
const ErrTenantBusy = "TenantBusy"

// DefaultLockWait bounds how long a run waits for a tenant's lock before
// it pauses (or fails) with ErrTenantBusy.
const DefaultLockWait = 2 * time.Hour

// Waits between tries for a busy lock: doubling from the first to the last.
const (
	lockPollFirst = 10 * time.Second
	lockPollMax   = 5 * time.Minute
)

// TenantLockInput says who holds the lock (the state query shows it).
type TenantLockInput struct {
	TenantID string `json:"tenant_id"`
	// Holder is the workflow ID of the run holding the lock.
	Holder string `json:"holder"`
}

// TenantLock holds a tenant's write lock for its parent until the parent
// cancels it or closes. It does nothing else.
func TenantLock(ctx workflow.Context, in TenantLockInput) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (TenantLockInput, error) { return in, nil }); err != nil {
		return err
	}
	// Await returns only when the holder cancels: the lock is released.
	_ = workflow.Await(ctx, func() bool { return false })
	return nil
}

// tenantLock is a lock this run holds.
type tenantLock struct {
	cancel workflow.CancelFunc
	fut    workflow.ChildWorkflowFuture
}

// acquireTenantLock waits (on durable timers) until the tenant's lock is
// free and takes it. wait bounds the whole wait (0: DefaultLockWait);
// waiting is called once, when the lock is found busy.
func acquireTenantLock(ctx workflow.Context, tenantID string, wait time.Duration, waiting func()) (*tenantLock, error) {
	if wait <= 0 {
		wait = DefaultLockWait
	}
	id := TenantLockWorkflowID(tenantID)
	in := TenantLockInput{TenantID: tenantID, Holder: workflow.GetInfo(ctx).WorkflowExecution.ID}
	end := workflow.Now(ctx).Add(wait)
	poll := lockPollFirst
	for try := 1; ; try++ {
		cctx, cancel := workflow.WithCancel(ctx)
		cctx = workflow.WithChildOptions(cctx, workflow.ChildWorkflowOptions{
			WorkflowID:            id,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_TERMINATE,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WaitForCancellation:   true,
		})
		f := workflow.ExecuteChildWorkflow(cctx, TenantLock, in)
		err := f.GetChildWorkflowExecution().Get(ctx, nil)
		if err == nil {
			return &tenantLock{cancel: cancel, fut: f}, nil
		}
		cancel()
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return nil, err
		}
		if try == 1 && waiting != nil {
			waiting()
		}
		if !workflow.Now(ctx).Add(poll).Before(end) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"tenant %s is being written by another workflow (it holds %s; `temporal workflow describe -w %s` names it as parent) for longer than %s: retry to wait again once it has finished or paused for good",
				tenantID, id, id, wait), ErrTenantBusy, nil)
		}
		if err := workflow.Sleep(ctx, poll); err != nil {
			return nil, err
		}
		poll = min(poll*2, lockPollMax)
	}
}

// release frees the lock and waits until its workflow has closed, so the
// next holder's start does not find it still running. Safe on nil and on
// a cancelled context (it uses a disconnected one).
func (l *tenantLock) release(ctx workflow.Context) {
	if l == nil {
		return
	}
	dctx, done := workflow.NewDisconnectedContext(ctx)
	defer done()
	l.cancel()
	if err := l.fut.Get(dctx, nil); err != nil && !temporal.IsCanceledError(err) {
		workflow.GetLogger(ctx).Warn("release tenant lock", "error", err)
	}
}
