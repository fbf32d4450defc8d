package steps

import "github.com/hybridflow/hybridflow/internal/plan"

// VerifyAfterRemoval verifies again after the legacy key is removed, to
// prove the dedicated application carries the trust alone. The removal
// step runs it at once and marks it done; it runs here on its own only
// when the removal found nothing to remove, and is not needed when the
// removal was skipped. Nothing to undo.
var VerifyAfterRemoval = Step{Name: plan.StepVerifyAfterRemoval, Summary: "Verify again after the legacy key is removed: Test-OAuthConnectivity in both directions",
	Decide: plan.DecideVerifyAfterRemovalStep, Check: true, AfterAll: true, Gate: verifyAfterRemovalGate, Exec: func(r *Run, a plan.Action) error {
		return r.verify(a.Step)
	}}

func verifyAfterRemovalGate(r *Run, _ plan.Action) (string, string) {
	if r.L.Status(string(plan.StepRemoveLegacyKey)) == StatusSkipped {
		return StatusNotNeeded, "the legacy key was not removed"
	}
	return "", ""
}
