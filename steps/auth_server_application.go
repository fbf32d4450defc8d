package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// AuthServerApplication is the on-prem half of the dedicated application:
// Set-AuthServer -ApplicationIdentifier -DomainName on the evoSTS auth
// server. Its undo restores the properties it changed. It needs the
// evoSTS auth server (step 1) and the application's appId.
var AuthServerApplication = Step{Name: plan.StepOnPremAuthServerApp, After: []plan.Step{plan.StepAuthServers, plan.StepDedicatedApp}, Summary: "Step 4 (dedicated application): name the application on the evoSTS authorization server",
	Decide: plan.DecideAuthServerAppStep, Exec: func(r *Run, a plan.Action) error {
		if err := r.NeedAppID(); err != nil {
			return err
		}
		d := r.Plan.Desired
		return r.OnPrem(a.Step, contract.ActSetAuthServerApplication, contract.AuthServerAppInput{Target: r.Target, EvoSTS: d.EvoSTS, AppID: r.AppID, Domains: d.AuthServerDomains})
	}}
