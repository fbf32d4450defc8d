package workflows

import "go.temporal.io/sdk/workflow"

// notifyParent tells a parent rollout that this setup paused or resumed,
// so the rollout's progress lists the tenants that wait for an operator
// (a parent cannot query its children from workflow code). Setups started
// on their own have no parent and notify nobody.
func notifyParent(ctx workflow.Context, o TenantOutcome) workflow.Future {
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	if parent == nil {
		return nil
	}
	// The run ID is left empty so that the signal reaches the rollout's
	// current run, after any continue-as-new. Its outcome is not awaited
	// mid-run: a rollout that has ended no longer needs the news, and the
	// setup must not fail over it.
	return workflow.SignalExternalWorkflow(ctx, parent.ID, "", SignalTenantState, o)
}
