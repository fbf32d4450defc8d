package contract

// Activity type names, exactly as the worker registers them (the method
// names of the activity structs, and the names given to the planning
// functions). Workflows schedule activities by these names, so workflow
// code needs none of the activity implementations; a test in
// internal/workerhost checks that each one is registered.
const (
	// On-prem Exchange (hybridflow-onprem-<site>).
	ActDiscoverOnPrem                 = "DiscoverOnPrem"
	ActEnsureAuthServers              = "EnsureAuthServers"
	ActEnablePartnerApplication       = "EnablePartnerApplication"
	ActSetAuthServerApplication       = "SetAuthServerApplication"
	ActEnsureSettingOverride          = "EnsureSettingOverride"
	ActRefreshVariantConfiguration    = "RefreshVariantConfiguration"
	ActEnsureOnPremConnector          = "EnsureOnPremConnector"
	ActEnsureAvailabilityAddressSpace = "EnsureAvailabilityAddressSpace"
	ActVerifyFromOnPrem               = "VerifyFromOnPrem"
	ActUndoOnPrem                     = "UndoOnPrem"

	// Exchange Online (hybridflow-cloud).
	ActDiscoverOnline        = "DiscoverOnline"
	ActEnsureOnlineConnector = "EnsureOnlineConnector"
	ActVerifyFromOnline      = "VerifyFromOnline"
	ActUndoOnline            = "UndoOnline"

	// Entra (hybridflow-cloud).
	ActDiscoverEntra                    = "DiscoverEntra"
	ActEnsureFirstPartyServicePrincipal = "EnsureFirstPartyServicePrincipal"
	ActEnsureDedicatedApplication       = "EnsureDedicatedApplication"
	ActEnsureDedicatedServicePrincipal  = "EnsureDedicatedServicePrincipal"
	ActGrantDedicatedConsent            = "GrantDedicatedConsent"
	ActEnsureApplicationKeys            = "EnsureApplicationKeys"
	ActRemoveLegacyKeys                 = "RemoveLegacyKeys"
	ActUndoEntra                        = "UndoEntra"

	// Lync Server (hybridflow-lync-<site>).
	ActDiscoverLync              = "DiscoverLync"
	ActEnsureLyncEdgeFederation  = "EnsureLyncEdgeFederation"
	ActEnsureLyncHostingProvider = "EnsureLyncHostingProvider"
	ActWaitLyncReplication       = "WaitLyncReplication"
	ActConfirmLyncEdgeProvider   = "ConfirmLyncEdgeProvider"
	ActCheckLyncExternalAccess   = "CheckLyncExternalAccess"
	ActUndoLync                  = "UndoLync"

	// Auth certificate renewal: the PowerShell methods run on the site's
	// on-prem queue, the Graph methods on the cloud queue.
	ActReadAuthCertificate           = "ReadAuthCertificate"
	ActCheckAuthCertificateOnServers = "CheckAuthCertificateOnServers"
	ActCreateAuthCertificate         = "CreateAuthCertificate"
	ActStageAuthCertificate          = "StageAuthCertificate"
	ActPublishAuthCertificate        = "PublishAuthCertificate"
	ActClearPreviousAuthCertificate  = "ClearPreviousAuthCertificate"
	ActReadAuthCertificateKeys       = "ReadAuthCertificateKeys"
	ActUploadAuthCertificateKeys     = "UploadAuthCertificateKeys"
	ActRemoveRetiredAuthKeys         = "RemoveRetiredAuthKeys"

	// Every queue: which worker answers, and whether its backend does.
	ActProbe = "Probe"
	// The rollout's and the scheduled verify's inventory pages (cloud).
	ActLoadInventoryPage = "LoadInventoryPage"

	// Pure decisions the workflows run as local activities, so that their
	// answer is recorded in history (the functions of the same names in
	// this package; the cloud worker, which runs the workflows, registers
	// them under these names too).
	ActPlanSetup         = "PlanSetup"
	ActPlanLync          = "PlanLync"
	ActDecideRenewalMode = "DecideRenewalMode"
	ActDecideRenewal     = "DecideRenewal"
)
