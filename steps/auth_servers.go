package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// AuthServers is step 1: the auth servers for ACS and evoSTS
// (New-AuthServer, or Set-AuthServer -Enabled on one that exists).
// Its undo removes a server it created or disables one it enabled.
var AuthServers = Step{Name: plan.StepAuthServers, Summary: "Step 1: create the authorization server objects for Exchange Online (ACS and evoSTS)",
	Decide: plan.DecideAuthServersStep, Exec: authServers}

func authServers(r *Run, a plan.Action) error {
	d, t := r.Plan.Desired, r.Target
	if r.OneCall {
		return r.OnPrem(a.Step, contract.ActEnsureAuthServers, contract.AuthServersInput{Target: t, Servers: []plan.AuthServerSpec{d.ACS, d.EvoSTS}, Before: r.Before(a.Step)})
	}
	// Setups from before one call carried both servers: one call each.
	for _, spec := range []plan.AuthServerSpec{d.ACS, d.EvoSTS} {
		if err := r.OnPrem(a.Step, contract.ActEnsureAuthServers, contract.AuthServersInput{Target: t, Servers: []plan.AuthServerSpec{spec}, Before: r.Before(a.Step)}); err != nil {
			return err
		}
	}
	return nil
}
