package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// AvailabilityAddressSpace is step 8, only where pre-2013-SP1 servers
// exist: an availability address space proxying through a current
// server. Its undo removes the address space it added.
var AvailabilityAddressSpace = Step{Name: plan.StepAvailability, Summary: "Step 8: configure an AvailabilityAddressSpace for pre-Exchange 2013 SP1 servers",
	Decide: plan.DecideAvailabilityStep, Exec: func(r *Run, a plan.Action) error {
		return r.OnPrem(a.Step, contract.ActEnsureAvailabilityAddressSpace, contract.AvailabilityInput{Target: r.Target, Spec: r.Plan.Desired.Availability, Before: r.Before(a.Step)})
	}}
