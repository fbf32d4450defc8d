package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Discovery is what a setup's discovery and planning found.
type Discovery struct {
	Plan contract.PlanOutput
	// Observed is the three systems as read, before any write.
	Observed plan.Observed
	// AppID of the dedicated application, when it exists.
	AppID string
}

// Discover reads the three systems (on-prem and Exchange Online in
// parallel, then Entra, which needs the organisation GUID for the
// dedicated application's name) and plans.
func Discover(c Caller, tenant plan.TenantFacts, t contract.Target, resetFirstPartyKeys bool) (Discovery, error) {
	fOn := c.OnPrem(contract.ActDiscoverOnPrem, t)
	fOl := c.CloudRead(contract.ActDiscoverOnline, t)
	var onprem, online, entra plan.Observed
	if err := fOn.Get(&onprem); err != nil {
		return Discovery{}, err
	}
	if err := fOl.Get(&online); err != nil {
		return Discovery{}, err
	}
	guid := tenant.OrganizationGUID
	if guid == "" {
		guid = onprem.OrganizationGUID
	}
	ein := contract.EntraDiscoverInput{Target: t}
	for _, tp := range []string{onprem.AuthConfig.CurrentThumbprint, onprem.AuthConfig.NextThumbprint} {
		if tp != "" {
			ein.AuthThumbprints = append(ein.AuthThumbprints, tp)
		}
	}
	if guid != "" {
		ein.DedicatedAppName = plan.DedicatedAppPrefix + guid
	}
	if err := c.CloudRead(contract.ActDiscoverEntra, ein).Get(&entra); err != nil {
		return Discovery{}, err
	}
	now := c.Now()
	in := contract.PlanInput{Tenant: tenant, Observed: contract.MergeObserved(onprem, online, entra, now), Now: now,
		ResetFirstPartyKeys: resetFirstPartyKeys}
	var out contract.PlanOutput
	if err := c.Plan(in).Get(&out); err != nil {
		return Discovery{}, err
	}
	return Discovery{Plan: out, Observed: in.Observed, AppID: in.Observed.DedicatedApp.AppID}, nil
}
