package workflows_test

import (
	"net/http"
	"testing"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// A setup whose writes are applied with their replies lost (the auth
// server, the dedicated application's key, the SPNs, the setting
// override) retries each step and finds its object already there. The
// workflow passes each step what discovery saw before the run wrote
// anything, so the retry knows the object is the run's and returns its
// undo record: an abort at the end removes every one of them, and the
// tenant is exactly as it was before the run.
func TestSetupAbortRemovesWhatLostRepliesMade(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	before := h.config(id)
	lost := func(r sim.FaultRule) sim.FaultRule {
		r.Kind, r.FailFirstN = sim.FaultApplyThenDrop, 1
		return r
	}
	h.world.SetFaults([]sim.FaultRule{
		lost(sim.FaultRule{Protocol: sim.ProtoShell, Operation: "New-AuthServer"}),
		lost(sim.FaultRule{Protocol: sim.ProtoGraph, Method: http.MethodPatch, Path: "/applications/"}),
		lost(sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "PATCH servicePrincipals"}),
		lost(sim.FaultRule{Protocol: sim.ProtoShell, Operation: "New-SettingOverride"}),
		// The refresh after the override is refused: the setup pauses there.
		{Protocol: sim.ProtoShell, Operation: "Get-ExchangeDiagnosticInfo", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1},
	})
	env := h.env()
	whilePaused(t, env, plan.StepSettingOverride, activities.ErrMissingPermission, func(st workflows.SetupState) {
		if fired := h.world.FaultsFired()[sim.FaultApplyThenDrop]; fired != 4 {
			t.Errorf("%d replies lost; want 4", fired)
		}
		h.world.SetFaults(nil)
		sendUpdate(env, workflows.UpdateAbort)
	})
	st := runAborted(t, h, env, h.input(0, workflows.SetupOptions{}))
	for _, step := range []plan.Step{plan.StepAuthServers, plan.StepKeys, plan.StepSPNs, plan.StepSettingOverride} {
		if s := setupStep(st, step); s.Status != workflows.StatusCompensated {
			t.Errorf("step %s is %s after the abort, want compensated", step, s.Status)
		}
	}
	sameConfig(t, "after the abort", before, h.config(id))
}
