package steps

// The activity types the setup's steps call: the method names of the
// activity structs and the planning function, as the worker registers
// them.
const (
	actDiscoverOnPrem                 = "DiscoverOnPrem"
	actDiscoverOnline                 = "DiscoverOnline"
	actDiscoverEntra                  = "DiscoverEntra"
	actEnsureAuthServers              = "EnsureAuthServers"
	actEnablePartnerApplication       = "EnablePartnerApplication"
	actEnsureDedicatedApplication     = "EnsureDedicatedApplication"
	actEnsureDedicatedSP              = "EnsureDedicatedServicePrincipal"
	actGrantDedicatedConsent          = "GrantDedicatedConsent"
	actEnsureApplicationKeys          = "EnsureApplicationKeys"
	actEnsureFirstPartySP             = "EnsureFirstPartyServicePrincipal"
	actSetAuthServerApplication       = "SetAuthServerApplication"
	actEnsureSettingOverride          = "EnsureSettingOverride"
	actRefreshVariantConfiguration    = "RefreshVariantConfiguration"
	actEnsureOnPremConnector          = "EnsureOnPremConnector"
	actEnsureOnlineConnector          = "EnsureOnlineConnector"
	actEnsureAvailabilityAddressSpace = "EnsureAvailabilityAddressSpace"
	actVerifyFromOnPrem               = "VerifyFromOnPrem"
	actVerifyFromOnline               = "VerifyFromOnline"
	actRemoveLegacyKeys               = "RemoveLegacyKeys"
)
