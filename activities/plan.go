package activities

import (
	"context"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// PlanInput is everything the plan is computed from.
type PlanInput struct {
	Tenant   plan.TenantFacts `json:"tenant"`
	Observed plan.Observed    `json:"observed"`
	Now      time.Time        `json:"now"`
	// ResetFirstPartyKeys: the operator asked for every key of the
	// first-party service principal to go in the legacy-key clean-up
	// (plan.Desired.ResetFirstPartyKeys).
	ResetFirstPartyKeys bool `json:"reset_first_party_keys,omitempty"`
}

// PlanOutput is the derived configuration and the ordered actions.
type PlanOutput struct {
	Desired  plan.Desired  `json:"desired"`
	Actions  []plan.Action `json:"actions"`
	Warnings []string      `json:"warnings,omitempty"`
}

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
		return PlanOutput{}, nonRetryable(planErrorType(err), "plan for %s: %v", in.Tenant.ID, err)
	}
	d.ResetFirstPartyKeys = in.ResetFirstPartyKeys
	return PlanOutput{Desired: d, Actions: plan.BuildPlan(d, in.Observed, in.Now), Warnings: warnings}, nil
}

// MergeObserved combines the three discovery halves (on-prem, Exchange
// Online, Entra) into one observation.
func MergeObserved(onprem, online, entra plan.Observed, at time.Time) plan.Observed {
	o := onprem
	o.At = at
	o.OnlineIOCs, o.CloudMailboxes = online.OnlineIOCs, online.CloudMailboxes
	o.FirstPartySP, o.DedicatedApp, o.DedicatedSP = entra.FirstPartySP, entra.DedicatedApp, entra.DedicatedSP
	o.ConsentGranted, o.TenantDomains = entra.ConsentGranted, entra.TenantDomains
	return o
}
