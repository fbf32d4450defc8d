package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// RegisterSPNs is step 5: register the on-prem host names as service
// principal names of the Exchange Online first-party service principal,
// in both modes. On the legacy path step 4 writes them with the keys and
// marks this step done, so it runs on its own only in dedicated mode (or
// when the keys needed no change). Its undo removes exactly the names it
// added. It follows step 4: on the legacy path that step may have written
// the names already, and both change the same service principal.
var RegisterSPNs = Step{Name: plan.StepSPNs, After: []plan.Step{plan.StepKeys}, Summary: "Step 5: register the on-premises Exchange host names with Microsoft Entra ID",
	Decide: plan.DecideSPNsStep, Exec: func(r *Run, a plan.Action) error {
		return r.Cloud(a.Step, contract.ActEnsureFirstPartyServicePrincipal, contract.FirstPartyInput{Target: r.Target, SPNs: r.Plan.Desired.SPNs, Before: r.Before(a.Step)})
	}}
