package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// DedicatedApplication is step 4's first half in dedicated-application
// mode: the Exchange hybrid application in Entra, its service principal
// and admin consent. Three activities, one write each; a retry of the step
// runs all three again and finds the earlier ones unchanged, their undo
// already recorded. Its undo deletes what it created and revokes the
// consent it granted.
var DedicatedApplication = Step{Name: plan.StepDedicatedApp, Summary: "Step 4: create the dedicated Exchange hybrid application in Entra, its service principal and admin consent",
	Decide: plan.DecideDedicatedAppStep, Exec: dedicatedApplication}

func dedicatedApplication(r *Run, a plan.Action) error {
	t := r.Target
	before := r.Before(a.Step)
	if err := r.Cloud(a.Step, contract.ActEnsureDedicatedApplication, contract.DedicatedAppInput{Target: t, Name: r.Plan.Desired.DedicatedAppName}); err != nil {
		return err
	}
	if err := r.Cloud(a.Step, contract.ActEnsureDedicatedServicePrincipal, contract.AppIDInput{Target: t, AppID: r.AppID}); err != nil {
		return err
	}
	return r.Cloud(a.Step, contract.ActGrantDedicatedConsent, contract.AppIDInput{Target: t, AppID: r.AppID, Before: before})
}

// consentGranted says whether the dedicated application has admin consent
// by now: discovery found it (the plan left the step alone) or this run's
// dedicated-app step completed, consent included.
func (r *Run) consentGranted() *bool {
	ok := r.Planned(plan.StepDedicatedApp).Change == plan.ChangeNone || r.L.Status(string(plan.StepDedicatedApp)) == StatusDone
	return &ok
}
