package workflows

import "go.temporal.io/sdk/workflow"

// notifyParent tells a parent rollout that this setup paused or resumed,
// so the rollout's progress lists the tenants that wait for an operator
// (a parent cannot query its children from workflow code). Setups started
// on their own have no parent and notify nobody.
func notifyParent(ctx workflow.Context, o TenantOutcome) {
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	if parent == nil {
		return
	}
	// Fire and forget: a rollout that has ended or continued as new no
	// longer needs the news, and the setup must not fail over it.
	_ = workflow.SignalExternalWorkflow(ctx, parent.ID, "", SignalTenantState, o)
}
