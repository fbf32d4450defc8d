package steps

import (
	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// IOCOnline is step 7: the IntraOrganizationConnector from Exchange Online
// to on-prem. Its undo removes a connector it created or restores the
// properties it changed.
var IOCOnline = Step{Name: plan.StepIOCOnline, Exec: func(r *Run, a plan.Action) error {
	return r.Cloud(a.Step, actEnsureOnlineConnector, activities.IOCInput{Target: r.Target, Spec: r.Plan.Desired.OnlineIOC, Before: r.Before(a.Step)})
}}
