package plan

import "time"

// TenantFacts is what the inventory says about a tenant, reduced to what
// the plan needs. It mirrors config.Tenant and its overrides without
// importing them, so this package stays a leaf the workflow can use. Empty
// fields mean "discover".
type TenantFacts struct {
	ID            string   `json:"id"`
	Cloud         string   `json:"cloud"`
	InitialDomain string   `json:"initial_domain"`
	RoutingDomain string   `json:"routing_domain,omitempty"`
	SMTPDomains   []string `json:"smtp_domains,omitempty"`
	ModeSetting   string   `json:"mode,omitempty"`

	OrganizationGUID      string   `json:"organization_guid,omitempty"`
	ExchangeOnlineHost    string   `json:"exchange_online_host,omitempty"`
	OnPremAutodiscoverURL string   `json:"onprem_autodiscover_url,omitempty"`
	OnPremEWSExternalURL  string   `json:"onprem_ews_external_url,omitempty"`
	SPNHosts              []string `json:"spn_hosts,omitempty"`
	OnPremMailbox         string   `json:"onprem_mailbox,omitempty"`
	CloudMailbox          string   `json:"cloud_mailbox,omitempty"`
	// LegacyFirstPartyBlocked states whether Exchange Online still accepts
	// the shared first-party path in the tenant's cloud, where the product
	// can only infer it (GCC); nil takes the cloud's rule (LegacyPath).
	LegacyFirstPartyBlocked *bool `json:"legacy_first_party_blocked,omitempty"`
}

// Observed is everything discovery read, as plain data.
type Observed struct {
	// At is when discovery ran. Derive judges certificate validity against
	// it rather than a clock; zero skips those checks.
	At time.Time `json:"at"`

	// On-premises Exchange.
	OrganizationGUID   string              `json:"organization_guid,omitempty"`
	Servers            []ExchangeServer    `json:"servers,omitempty"`
	AcceptedDomains    []AcceptedDomain    `json:"accepted_domains,omitempty"`
	VirtualDirectories []VirtualDirectory  `json:"virtual_directories,omitempty"`
	AuthServers        []AuthServer        `json:"auth_servers,omitempty"`
	PartnerApp         PartnerApp          `json:"partner_app"`
	AuthConfig         AuthConfig          `json:"auth_config"`
	Certificates       []Certificate       `json:"certificates,omitempty"`
	OnPremIOCs         []IOC               `json:"onprem_iocs,omitempty"`
	AvailabilitySpaces []AvailabilitySpace `json:"availability_spaces,omitempty"`
	SettingOverrides   []SettingOverride   `json:"setting_overrides,omitempty"`
	// VariantConfigRefreshed says whether Exchange reloaded its
	// VariantConfiguration after the setting override was created. Exchange
	// cannot be asked, so discovery leaves it nil (unknown); only a caller
	// that knows, such as a workflow whose refresh call failed after it
	// created the override, sets it.
	VariantConfigRefreshed *bool    `json:"variant_config_refreshed,omitempty"`
	OnPremMailboxes        []string `json:"onprem_mailboxes,omitempty"`

	// Exchange Online.
	OnlineIOCs     []IOC    `json:"online_iocs,omitempty"`
	CloudMailboxes []string `json:"cloud_mailboxes,omitempty"`

	// Entra.
	FirstPartySP ServicePrincipal `json:"first_party_sp"`
	DedicatedApp Application      `json:"dedicated_app"`
	DedicatedSP  DedicatedSP      `json:"dedicated_sp"`
	// ConsentGranted: the dedicated SP holds full_access_as_app on the
	// Exchange Online first-party SP.
	ConsentGranted bool     `json:"consent_granted"`
	TenantDomains  []string `json:"tenant_domains,omitempty"`
}

// ExchangeServer is one row of Get-ExchangeServer.
type ExchangeServer struct {
	Name string `json:"name"`
	// Version is AdminDisplayVersion as reported, in either form ParseBuild
	// accepts.
	Version string `json:"version"`
	// Roles is ServerRole as reported ("Mailbox, ClientAccess", "Edge").
	Roles string `json:"roles,omitempty"`
}

// AcceptedDomain is one row of Get-AcceptedDomain.
type AcceptedDomain struct {
	DomainName string `json:"domain_name"`
	Default    bool   `json:"default,omitempty"`
}

// Virtual directory kinds whose URLs become service principal names (seed
// 001 step 5).
const (
	VDirWebServices  = "WebServices"
	VDirMapi         = "Mapi"
	VDirOAB          = "OAB"
	VDirAutodiscover = "Autodiscover"
)

// VirtualDirectory is one row of Get-<Kind>VirtualDirectory.
type VirtualDirectory struct {
	Kind        string `json:"kind"`
	Server      string `json:"server,omitempty"`
	InternalURL string `json:"internal_url,omitempty"`
	ExternalURL string `json:"external_url,omitempty"`
}

// Auth server types as Get-AuthServer reports them.
const (
	AuthServerTypeACS     = "MicrosoftACS"
	AuthServerTypeAzureAD = "AzureAD"
)

// AuthServer is one row of Get-AuthServer.
type AuthServer struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	MetadataURL string `json:"metadata_url"`
	// Realm is what Exchange read from the metadata document when the
	// server was created: the tenant ID for Microsoft's servers.
	Realm                 string   `json:"realm,omitempty"`
	Enabled               bool     `json:"enabled"`
	ApplicationIdentifier string   `json:"application_identifier,omitempty"`
	DomainName            []string `json:"domain_name,omitempty"`
}

// PartnerApp is the Exchange Online partner application
// (00000002-0000-0ff1-ce00-000000000000 with an empty Realm).
type PartnerApp struct {
	Found   bool   `json:"found"`
	Name    string `json:"name,omitempty"`
	Enabled bool   `json:"enabled"`
}

// AuthConfig is Get-AuthConfig, read-side names.
type AuthConfig struct {
	CurrentThumbprint  string    `json:"current_thumbprint,omitempty"`
	NextThumbprint     string    `json:"next_thumbprint,omitempty"`
	NextEffective      time.Time `json:"next_effective,omitempty"`
	PreviousThumbprint string    `json:"previous_thumbprint,omitempty"`
}

// Certificate is an Exchange certificate's public part.
type Certificate struct {
	Thumbprint string    `json:"thumbprint"`
	Subject    string    `json:"subject,omitempty"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	DER        []byte    `json:"der,omitempty"`
}

// IOC is an IntraOrganizationConnector, on-prem or online.
type IOC struct {
	Name                 string   `json:"name"`
	DiscoveryEndpoint    string   `json:"discovery_endpoint"`
	TargetAddressDomains []string `json:"target_address_domains,omitempty"`
	Enabled              bool     `json:"enabled"`
}

// AvailabilitySpace is one row of Get-AvailabilityAddressSpace.
type AvailabilitySpace struct {
	ForestName   string `json:"forest_name"`
	AccessMethod string `json:"access_method,omitempty"`
	ProxyURL     string `json:"proxy_url,omitempty"`
}

// SettingOverride is one row of Get-SettingOverride.
type SettingOverride struct {
	Name       string   `json:"name"`
	Component  string   `json:"component,omitempty"`
	Section    string   `json:"section"`
	Parameters []string `json:"parameters,omitempty"`
}

// ServicePrincipal is the Exchange Online first-party service principal in
// the tenant. ID is empty when the tenant has none.
type ServicePrincipal struct {
	ID   string   `json:"id,omitempty"`
	Keys []Key    `json:"keys,omitempty"`
	SPNs []string `json:"spns,omitempty"`
}

// Application is the dedicated Exchange hybrid application.
type Application struct {
	Exists bool   `json:"exists"`
	ID     string `json:"id,omitempty"`
	AppID  string `json:"app_id,omitempty"`
	Keys   []Key  `json:"keys,omitempty"`
	// HasFullAccessAsApp: requiredResourceAccess asks for full_access_as_app
	// (Role) on Exchange Online.
	HasFullAccessAsApp bool `json:"has_full_access_as_app"`
}

// DedicatedSP is the dedicated application's service principal.
type DedicatedSP struct {
	Exists bool   `json:"exists"`
	ID     string `json:"id,omitempty"`
}

// Desired is the configuration a tenant should end up with, derived once
// from the inventory, the cloud profile and discovery, so that every step
// and every reason works from the same values.
type Desired struct {
	TenantID      string   `json:"tenant_id"`
	Cloud         string   `json:"cloud"`
	Mode          Mode     `json:"mode"`
	ModeReason    string   `json:"mode_reason"`
	InitialDomain string   `json:"initial_domain"`
	RoutingDomain string   `json:"routing_domain"`
	SMTPDomains   []string `json:"smtp_domains"`

	ACS    AuthServerSpec `json:"acs"`
	EvoSTS AuthServerSpec `json:"evo_sts"`

	// SPNs go to the first-party service principal in both modes.
	SPNHosts []string `json:"spn_hosts"`
	SPNs     []string `json:"spns"`

	OnPremIOC    IOCSpec          `json:"onprem_ioc"`
	OnlineIOC    IOCSpec          `json:"online_ioc"`
	Availability AvailabilitySpec `json:"availability"`

	OnPremAutodiscoverURL string `json:"onprem_autodiscover_url"`
	OnPremEWSURL          string `json:"onprem_ews_url"`

	// Keys to upload: the current auth certificate, and the next one when
	// Set-AuthConfig has staged it, so a scheduled rollover needs no visit.
	Keys []Key `json:"keys"`

	// Dedicated mode only.
	DedicatedAppName  string   `json:"dedicated_app_name,omitempty"`
	AuthServerDomains []string `json:"auth_server_domains,omitempty"`
	// LegacyThumbprints are the on-prem auth certificates to take off the
	// first-party service principal once the dedicated app is verified.
	LegacyThumbprints []string `json:"legacy_thumbprints,omitempty"`
	// ResetFirstPartyKeys replaces that clean-up with Microsoft's reset of
	// the first-party service principal's keys: every key goes, other
	// applications' included. Set only when the operator asked for it.
	ResetFirstPartyKeys bool `json:"reset_first_party_keys,omitempty"`

	// Verification (Test-OAuthConnectivity in both directions).
	VerifyCloudTarget  string `json:"verify_cloud_target"`
	VerifyOnPremTarget string `json:"verify_onprem_target"`
	OnPremMailbox      string `json:"onprem_mailbox,omitempty"`
	CloudMailbox       string `json:"cloud_mailbox,omitempty"`
}

// AuthServerSpec is an auth server step 1 wants.
type AuthServerSpec struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	MetadataURL string `json:"metadata_url"`
	// Realm is the tenant ID. An existing server of the right type whose
	// realm is the tenant's is the tenant's server, whatever its name or
	// metadata URL (the Hybrid Configuration Wizard names its own and puts
	// the tenant ID, not the initial domain, in the ACS URL).
	Realm string `json:"realm,omitempty"`
	// OtherMetadataURLs also name this tenant's metadata; they identify a
	// server only when its realm is unknown.
	OtherMetadataURLs []string `json:"other_metadata_urls,omitempty"`
}

// IOCSpec is an IntraOrganizationConnector steps 6 and 7 want.
type IOCSpec struct {
	Name                 string   `json:"name"`
	DiscoveryEndpoint    string   `json:"discovery_endpoint"`
	TargetAddressDomains []string `json:"target_address_domains"`
	// AcceptedEndpoints are the other discovery endpoints Microsoft's tools
	// and documents use for this direction and cloud; a connector pointing
	// at one of them is adopted as it is, whatever its name.
	AcceptedEndpoints []string `json:"accepted_endpoints,omitempty"`
	// AcceptedHostDomains: an https autodiscover endpoint on a host equal
	// to or under one of these domains (the organisation's own) is
	// accepted too. Used for the Exchange Online → on-premises direction,
	// where every organisation has its own host.
	AcceptedHostDomains []string `json:"accepted_host_domains,omitempty"`
}

// AvailabilitySpec is step 8's address space, and whether it applies.
type AvailabilitySpec struct {
	Needed     bool   `json:"needed"`
	Reason     string `json:"reason"`
	ForestName string `json:"forest_name"`
	ProxyURL   string `json:"proxy_url"`
}

// Step names one documented step; the values appear in queries, search
// attributes and the CLI, so they never change once released.
type Step string

const (
	StepAuthServers         Step = "auth-servers"
	StepPartnerApp          Step = "partner-application"
	StepExportCert          Step = "export-certificate"
	StepDedicatedApp        Step = "dedicated-app"
	StepKeys                Step = "key-credentials"
	StepSPNs                Step = "service-principal-names"
	StepOnPremAuthServerApp Step = "auth-server-app-id"
	StepSettingOverride     Step = "setting-override"
	StepIOCOnPrem           Step = "ioc-onprem-to-online"
	StepIOCOnline           Step = "ioc-online-to-onprem"
	StepAvailability        Step = "availability-address-space"
	StepVerify              Step = "verify"
	StepRemoveLegacyKey     Step = "remove-legacy-key"
	StepVerifyAfterRemoval  Step = "verify-after-removal"
)

// Steps is every step in the order the setup workflow runs them. The
// setting override comes after the connectors: Exchange is switched to the
// dedicated application only once the OAuth configuration it relies on
// (consent, the partner application, an enabled connector) is in place.
var Steps = []Step{
	StepAuthServers, StepPartnerApp, StepExportCert, StepDedicatedApp, StepKeys, StepSPNs,
	StepOnPremAuthServerApp, StepIOCOnPrem, StepIOCOnline, StepSettingOverride, StepAvailability,
	StepVerify, StepRemoveLegacyKey, StepVerifyAfterRemoval,
}

// Change is what a step will do to the tenant.
type Change string

const (
	ChangeNone   Change = "none"   // already as wanted
	ChangeCreate Change = "create" // an object will be created
	ChangeUpdate Change = "update" // an existing object will be changed
	ChangeSkip   Change = "skip"   // the step does not apply to this tenant
	ChangeCheck  Change = "check"  // verification: reads only
	// ChangeBlocked: something in the tenant stops the step (an object in
	// the way that hybridflow did not create, or a precondition that no
	// earlier step provides). The step's activity refuses with the same
	// reason and the setup pauses there for an operator.
	ChangeBlocked Change = "blocked"
)

// Writes reports whether the change touches the tenant.
func (c Change) Writes() bool { return c == ChangeCreate || c == ChangeUpdate }

// Action is one step of a plan: what it will do and why, in words an
// Exchange administrator understands. Details carry the specifics (which
// keys, which names, which parameters) one per line.
type Action struct {
	Step    Step     `json:"step"`
	Change  Change   `json:"change"`
	Reason  string   `json:"reason"`
	Details []string `json:"details,omitempty"`
}

// Converged reports whether a plan writes nothing and is blocked nowhere:
// the guarantee that a second run against a configured tenant costs zero
// writes and ends verified.
func Converged(actions []Action) bool {
	for _, a := range actions {
		if a.Change.Writes() || a.Change == ChangeBlocked {
			return false
		}
	}
	return true
}
