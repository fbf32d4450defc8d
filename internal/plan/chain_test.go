package plan

import "time"

// setupChain is the setup's decisions in the documented order, for this
// package's tests; the product takes them from package steps, where each
// step's file names its decision.
var setupChain = []Decision{
	{StepAuthServers, DecideAuthServersStep},
	{StepPartnerApp, DecidePartnerAppStep},
	{StepExportCert, DecideExportCertStep},
	{StepDedicatedApp, DecideDedicatedAppStep},
	{StepKeys, DecideKeysStep},
	{StepSPNs, DecideSPNsStep},
	{StepOnPremAuthServerApp, DecideAuthServerAppStep},
	{StepIOCOnPrem, DecideIOCOnPremStep},
	{StepIOCOnline, DecideIOCOnlineStep},
	{StepSettingOverride, DecideSettingOverrideStep},
	{StepAvailability, DecideAvailabilityStep},
	{StepVerify, DecideVerifyStep},
	{StepRemoveLegacyKey, DecideRemoveLegacyKeyStep},
	{StepVerifyAfterRemoval, DecideVerifyAfterRemovalStep},
}

// BuildPlan is the setup's plan as the product builds it.
func BuildPlan(d Desired, o Observed, now time.Time) []Action {
	return BuildPlanWith(setupChain, d, o, now)
}
