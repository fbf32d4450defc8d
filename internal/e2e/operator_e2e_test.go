package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// waitListed polls the visibility store until the query lists the
// workflow: how an operator finds paused tenants in the Web UI.
func (e *env) waitListed(ctx context.Context, query, id string) {
	e.t.Helper()
	for {
		resp, err := e.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: query})
		if err == nil {
			for _, x := range resp.GetExecutions() {
				if x.GetExecution().GetWorkflowId() == id {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s never listed by %q (last error %v)", id, query, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestE2EPauseThenRetry: step 6 fails twice with a transient Exchange
// error and the retry policy allows two attempts, so the run pauses for an
// operator instead of failing: the state query names the step and the
// error type, and the HybridflowState search attribute lists the tenant as
// paused. The operator's retry update runs the step again, and the run
// converges: verified, nothing lost, exactly the expected additions.
func TestE2EPauseThenRetry(t *testing.T) {
	began := time.Now()
	w := generated(t, sim.GenerateSpec{Tenants: 1, Prefix: "pause"}, 4406, nil)
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, FailFirstN: 2}})
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := e.snapshot()
	tn := before.Tenants[0]
	run := e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{
		Retry: workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: 100 * time.Millisecond, MaximumAttempts: 2},
	})

	st := e.waitPaused(ctx, run)
	if st.Paused.Step != string(plan.StepIOCOnPrem) || st.Paused.ErrorType != exchange.ShortType(exchange.TypeTransient) || st.State != workflows.StatePaused {
		t.Errorf("paused %+v in state %s; want step %s, error type %s", *st.Paused, st.State, plan.StepIOCOnPrem, exchange.ShortType(exchange.TypeTransient))
	}
	e.waitListed(ctx, fmt.Sprintf("%s = %q AND %s = %q", workflows.SAState.GetName(), workflows.StatePaused, workflows.SATenant.GetName(), tn.ID), run.GetID())
	if step := e.update(ctx, run, workflows.UpdateRetry); step != string(plan.StepIOCOnPrem) {
		t.Errorf("retry answered for step %q", step)
	}
	res, err := e.result(ctx, run)
	logSteps(t, res)
	if err != nil || res.State != workflows.StateVerified {
		t.Fatalf("after retry: state %s, error %v", res.State, err)
	}
	for _, s := range res.Steps {
		if s.Step == string(plan.StepIOCOnPrem) && (s.Attempts != 2 || s.Outcome != "created") {
			t.Errorf("step %s: %d attempt(s), outcome %s; want 2 (the failed one and the retry), created", s.Step, s.Attempts, s.Outcome)
		}
	}
	after := e.snapshot()
	checkNothingLost(t, before, after)
	checkAdditions(t, before, after, wantDedicated(t, tn, ""))
	if o := e.overlaps(); len(o) > 0 {
		t.Errorf("steps ran twice at once:\n%s", strings.Join(o, "\n"))
	}
	e.recordHistory(ctx, run, "setup-pause-retry")
	t.Logf("paused, retried and verified in %s", time.Since(began).Round(time.Millisecond))
}

// TestE2EPauseThenAbort: step 7 (the Exchange Online connector) keeps
// failing, the run pauses, and the operator aborts: the run undoes its own
// changes in reverse and ends as aborted. The tenant is then as it was
// before: nothing lost (e2e.NothingLost), nothing left behind
// (e2e.Additions is empty), and the partner application this run enabled
// is disabled again.
func TestE2EPauseThenAbort(t *testing.T) {
	began := time.Now()
	w := generated(t, sim.GenerateSpec{Tenants: 1, Prefix: "abort", ForeignKeys: 1, ExpiredKeys: 1}, 4407, nil)
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoEXO, Operation: "New-IntraOrganizationConnector", Kind: sim.FaultFail, FailFirstN: 1000}})
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := e.snapshot()
	tn := before.Tenants[0]
	run := e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{
		Retry: workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: 100 * time.Millisecond, MaximumAttempts: 2},
	})
	st := e.waitPaused(ctx, run)
	if st.Paused.Step != string(plan.StepIOCOnline) {
		t.Fatalf("paused at %s, want %s", st.Paused.Step, plan.StepIOCOnline)
	}
	mid := e.snapshot()
	if len(e2e.Additions(before, mid)) == 0 {
		t.Fatal("the run changed nothing before pausing; the abort would prove nothing")
	}
	e.update(ctx, run, workflows.UpdateAbort)
	_, err := e.result(ctx, run)
	var app *temporal.ApplicationError
	if err == nil || !errors.As(err, &app) {
		t.Fatalf("an aborted run must fail with an application error, got %v", err)
	}
	st, qerr := e.query(ctx, run)
	if qerr != nil {
		t.Fatal(qerr)
	}
	t.Logf("ended: %v; state %s; compensation:\n  %s", err, st.State, strings.Join(st.Compensation, "\n  "))
	if st.State != workflows.StateAborted {
		t.Errorf("state %s, want %s", st.State, workflows.StateAborted)
	}
	for _, c := range st.Compensation {
		if strings.HasPrefix(c, "FAILED") {
			t.Errorf("compensation step failed: %s", c)
		}
	}
	after := e.snapshot()
	checkNothingLost(t, before, after)
	if add := e2e.Additions(before, after); len(add) > 0 {
		t.Errorf("left behind after abort:\n  %s", strings.Join(add, "\n  "))
	}
	if pa := tenantOf(t, after, tn.ID).OnPrem.PartnerApplications[0]; pa.Enabled {
		t.Errorf("partner application %q is still enabled after the abort", pa.Name)
	}
	e.recordHistory(ctx, run, "setup-pause-abort")
	t.Logf("paused, aborted and undone in %s", time.Since(began).Round(time.Millisecond))
}
