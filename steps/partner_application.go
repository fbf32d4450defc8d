package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// PartnerApplication is step 2: enable the Exchange Online partner
// application on-premises (Set-PartnerApplication -Enabled $true). Its
// undo disables it again.
var PartnerApplication = Step{Name: plan.StepPartnerApp, Summary: "Step 2: enable the partner application for Exchange Online",
	Decide: plan.DecidePartnerAppStep, Exec: func(r *Run, a plan.Action) error {
		return r.OnPrem(a.Step, contract.ActEnablePartnerApplication, r.Target)
	}}
