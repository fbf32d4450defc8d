package steps

import (
	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// SettingOverride switches on-prem Exchange to the dedicated application
// with a setting override, then refreshes VariantConfiguration so that
// Exchange loads it. The activity cannot ask Entra whether consent is
// there, so the run tells it. Its undo removes an override it created.
// It switches Exchange over only once the application is complete (its
// keys, the auth server naming it, consent), the partner application is
// enabled and both connectors exist (Microsoft's script refuses the
// override without an enabled partner application and connector).
var SettingOverride = Step{Name: plan.StepSettingOverride, Summary: "Step 4 (dedicated application): switch on-premises Exchange to it with a setting override",
	Decide: plan.DecideSettingOverrideStep, Exec: settingOverride,
	After: []plan.Step{plan.StepPartnerApp, plan.StepDedicatedApp, plan.StepKeys, plan.StepSPNs, plan.StepOnPremAuthServerApp, plan.StepIOCOnPrem, plan.StepIOCOnline}}

func settingOverride(r *Run, a plan.Action) error {
	in := contract.SettingOverrideInput{Target: r.Target, ConsentGranted: r.consentGranted(),
		ConnectorsFirst: r.PlannedBefore(plan.StepIOCOnPrem, plan.StepSettingOverride), Before: r.Before(a.Step)}
	// EnsureSettingOverride refreshes on every attempt, so an operator
	// retry after a failed refresh still loads an override created by the
	// first attempt.
	if r.OneCall {
		return r.OnPrem(a.Step, contract.ActEnsureSettingOverride, in)
	}
	// Setups from before that schedule their own refresh as well: a
	// second, harmless one.
	if err := r.OnPrem(a.Step, contract.ActEnsureSettingOverride, in); err != nil {
		return err
	}
	return r.OnPrem(a.Step, contract.ActRefreshVariantConfiguration, r.Target)
}
