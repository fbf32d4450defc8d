package steps

import (
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// RemoveLegacyKey takes the on-prem auth certificates off the Exchange
// Online first-party service principal once the dedicated application
// carries the trust (every key, when the recorded plan is the operator's
// reset), then verifies again at once. Only a trust verified in this run
// may lose its legacy key. If the second verification fails, the removed
// keys are put back before the failure is reported; its undo (at
// compensation) also puts them back.
var RemoveLegacyKey = Step{Name: plan.StepRemoveLegacyKey, Summary: "Remove the on-premises certificate from the shared first-party service principal",
	Decide: plan.DecideRemoveLegacyKeyStep, Gate: removeLegacyKeyGate, Exec: removeLegacyKey, AfterAll: true}

func removeLegacyKeyGate(r *Run, a plan.Action) (string, string) {
	if a.Change.Writes() && !r.Verified() {
		return StatusSkipped, "verification did not pass in this run (it was skipped), so the legacy key stays on the first-party service principal"
	}
	return "", ""
}

func removeLegacyKey(r *Run, a plan.Action) error {
	var res contract.StepResult
	// ResetAll comes from the recorded plan, so the activity does what the
	// plan showed; a plan recorded without the field is the ordinary clean-up.
	d := r.Plan.Desired
	in := contract.RemoveLegacyKeysInput{Target: r.Target, Thumbprints: d.LegacyThumbprints, ResetAll: d.ResetFirstPartyKeys}
	if err := r.C.CloudWrite(contract.ActRemoveLegacyKeys, in).Get(&res); err != nil {
		return err
	}
	r.Record(a.Step, res)
	if res.Outcome == contract.Unchanged {
		return nil // verify-after-removal runs as its own step
	}
	vst := r.L.State(string(plan.StepVerifyAfterRemoval))
	vst.Status, vst.Started, vst.LastError, vst.ErrorType = StatusRunning, r.C.Now(), "", ""
	vst.Attempts++
	verr := r.verify(plan.StepVerifyAfterRemoval)
	vst.Finished = r.C.Now()
	if verr == nil {
		vst.Status = StatusDone
		return nil
	}
	vst.Status = StatusFailed
	vst.LastError, vst.ErrorType = DescribeError(verr)
	if r.C.Cancelled() {
		return verr // compensation restores the key with the other records
	}
	return r.restoreLegacyKeys(a.Step, res.Undo, verr)
}

// restoreLegacyKeys puts the removed keys back at once: the trust worked
// with them. Restores are idempotent, so on failure every record stays
// for compensation.
func (r *Run) restoreLegacyKeys(step plan.Step, recs []contract.UndoRecord, verr error) error {
	for i := len(recs) - 1; i >= 0; i-- {
		if err := r.C.Undo(string(step), recs[i]); err != nil {
			r.L.Note(fmt.Sprintf("FAILED to restore the legacy key after verification failed: %v", err))
			return temporal.NewNonRetryableApplicationError("verification failed after removing the legacy key, and restoring it failed too: "+err.Error(), ErrCompensationFailed, err)
		}
	}
	// Record appended this call's records last; they are spent now.
	r.L.Undo = r.L.Undo[:len(r.L.Undo)-len(recs)]
	r.L.Note("restored the removed first-party keys after verification failed")
	lastErr := r.L.State(string(plan.StepVerifyAfterRemoval)).LastError
	return temporal.NewNonRetryableApplicationError("verification failed after removing keys from the first-party service principal; every removed key was restored: "+lastErr, contract.ErrVerification, verr)
}
