package activities

import (
	"context"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/steps"
)

// PlanSetup derives the desired configuration and the plan. It is pure, but
// runs as a local activity so that its answer is recorded in history: a
// later release that plans differently cannot change what a running
// workflow already decided on replay.
func PlanSetup(_ context.Context, in PlanInput) (PlanOutput, error) {
	p, err := cloud.Lookup(in.Tenant.Cloud)
	if err != nil {
		return PlanOutput{}, nonRetryable(ErrInvalidInput, "%v", err)
	}
	if in.Tenant.ExchangeOnlineHost != "" {
		p.ExchangeOnlineHost = in.Tenant.ExchangeOnlineHost
	}
	d, warnings, err := plan.Derive(in.Tenant, p, in.Observed)
	if err != nil {
		return PlanOutput{}, nonRetryable(contract.PlanErrorType(err), "plan for %s: %v", in.Tenant.ID, err)
	}
	d.ResetFirstPartyKeys = in.ResetFirstPartyKeys
	actions := steps.BuildPlan(d, in.Observed, in.Now)
	return PlanOutput{Desired: d, Actions: actions, Warnings: warnings, After: steps.Graph(actions)}, nil
}
