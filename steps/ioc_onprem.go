package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// IOCOnPrem is step 6: the IntraOrganizationConnector from on-prem to
// Exchange Online. Its undo removes a connector it created or restores
// the properties it changed.
var IOCOnPrem = Step{Name: plan.StepIOCOnPrem, Summary: "Step 6: create an IntraOrganizationConnector from on-premises to Exchange Online",
	Decide: plan.DecideIOCOnPremStep, Exec: func(r *Run, a plan.Action) error {
		return r.OnPrem(a.Step, contract.ActEnsureOnPremConnector, contract.IOCInput{Target: r.Target, Spec: r.Plan.Desired.OnPremIOC, Before: r.Before(a.Step)})
	}}
