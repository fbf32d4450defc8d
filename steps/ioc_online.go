package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// IOCOnline is step 7: the IntraOrganizationConnector from Exchange Online
// to on-prem. Its undo removes a connector it created or restores the
// properties it changed.
var IOCOnline = Step{Name: plan.StepIOCOnline, Summary: "Step 7: create an IntraOrganizationConnector from Exchange Online to on-premises",
	Decide: plan.DecideIOCOnlineStep, Exec: func(r *Run, a plan.Action) error {
		return r.Cloud(a.Step, contract.ActEnsureOnlineConnector, contract.IOCInput{Target: r.Target, Spec: r.Plan.Desired.OnlineIOC, Before: r.Before(a.Step)})
	}}
