package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// KeyCredentials is step 4: upload the auth certificates as key
// credentials, to the dedicated application or, on the legacy path, to
// the Exchange Online first-party service principal. On the legacy path
// the planned service principal names go in the same PATCH, and step 5
// (RegisterSPNs) is then done with it. Its undo removes exactly the keys
// (and names) it added. It needs the exported certificates and, in
// dedicated mode, the application they go to.
var KeyCredentials = Step{Name: plan.StepKeys, Summary: "Step 4: upload the on-premises authorization certificate to Microsoft Entra",
	Decide: plan.DecideKeysStep, Exec: keyCredentials, After: []plan.Step{plan.StepExportCert, plan.StepDedicatedApp}}

func keyCredentials(r *Run, a plan.Action) error {
	d, t := r.Plan.Desired, r.Target
	before := r.Before(a.Step)
	if d.Mode == plan.ModeDedicatedApp {
		if err := r.NeedAppID(); err != nil {
			return err
		}
		return r.Cloud(a.Step, contract.ActEnsureApplicationKeys, contract.AppKeysInput{Target: t, AppID: r.AppID, Name: d.DedicatedAppName, Keys: d.Keys, Before: before})
	}
	in := contract.FirstPartyInput{Target: t, Keys: d.Keys, Before: before}
	if spn := r.Planned(plan.StepSPNs); spn.Change.Writes() && !r.Skipped(plan.StepSPNs) {
		in.SPNs = d.SPNs
	}
	n := len(r.L.Undo)
	if err := r.Cloud(a.Step, contract.ActEnsureFirstPartyServicePrincipal, in); err != nil {
		return err
	}
	for i := n; i < len(r.L.Undo); i++ {
		if r.L.Undo[i].Rec.Kind == contract.UndoRemoveSPNs {
			r.L.Undo[i].Step = string(plan.StepSPNs) // compensation marks the step it reverses
		}
	}
	if len(in.SPNs) > 0 {
		sp := r.L.State(string(plan.StepSPNs))
		sp.Status, sp.Outcome, sp.Detail = StatusDone, r.L.State(string(a.Step)).Outcome, "written with the keys in one PATCH"
	}
	return nil
}
