// Package sim is the simulated Microsoft 365 + Exchange world that makes
// hybridflow testable without a tenant: Entra (Graph), Exchange Online
// (InvokeCommand), on-prem Exchange and Lync (PowerShell-host protocol).
//
// The model here is plain data with YAML tags so a world can be loaded,
// dumped and compared; the protocol servers (graph.go, exo.go, pshost.go)
// and the cmdlet engine (cmdlets*.go) mutate it under World.mu. The
// semantics follow Microsoft's documented behaviour (docs/): whole-collection
// PATCH, a key's certificate only on a single-object $select=keyCredentials
// read, duplicate errors by type, and a Test-OAuthConnectivity that succeeds
// only when the configuration really is complete.
package sim

import (
	"strings"
	"sync"
	"time"
)

// World is every simulated tenant plus the knobs that make it misbehave.
type World struct {
	mu sync.Mutex

	// Seed makes generation and fault injection replayable.
	Seed int64 `yaml:"seed,omitempty"`
	// Now pins the simulated clock when set (YAML worlds for tests); zero
	// means the wall clock. Expiry of keys and certificates is judged by it.
	FixedNow time.Time `yaml:"now,omitempty"`
	// Generate, when set, adds generated tenants at load time.
	Generate *GenerateSpec `yaml:"generate,omitempty"`
	// FaultRules are the world file's fault rules (fault.go); read them
	// with Faults and change them with SetFaults, AddFaults, ClearFaults.
	FaultRules []FaultRule `yaml:"faults,omitempty"`
	Tenants    []*Tenant   `yaml:"tenants"`

	// LegacyFirstPartyBlocked overrides the 31 Oct 2025 block of EWS through
	// the shared first-party service principal (oauth.go,
	// LegacyFirstPartyBlockedByDefault): nil follows Microsoft's rule, false lifts
	// it (tests of legacy mode), true enforces it in every cloud.
	LegacyFirstPartyBlocked *bool `yaml:"legacy_first_party_blocked,omitempty"`
	// EXOPageSize is how many rows one InvokeCommand page carries before
	// @odata.nextLink (exo.go); 0 means the default. Small values let tests
	// exercise paging.
	EXOPageSize int `yaml:"exo_page_size,omitempty"`

	clock   func() time.Time
	byID    map[string]*Tenant
	faults  *injector
	counter Counters
}

// GenerateSpec asks the loader for N similar tenants with variations.
type GenerateSpec struct {
	Tenants int    `yaml:"tenants"`
	Seed    int64  `yaml:"seed,omitempty"`
	Prefix  string `yaml:"prefix,omitempty"` // display-name / domain prefix, default "tenant"
	Sites   int    `yaml:"sites,omitempty"`  // tenants are spread over this many on-prem sites, default 1
	// Fractions (0..1) of tenants that get each variation.
	LegacyServers float64 `yaml:"legacy_servers,omitempty"` // a pre-2013-SP1 server (needs step 8)
	// OldBuilds: servers below the dedicated-app minimum: both of them in
	// GCC High and DoD (legacy mode); where the first-party path is
	// blocked (worldwide, GCC, 21Vianet) one of two (mixed builds).
	OldBuilds      float64  `yaml:"old_builds,omitempty"`
	ForeignKeys    float64  `yaml:"foreign_keys,omitempty"`    // unexpired keys of other apps on the first-party SP
	ExpiredKeys    float64  `yaml:"expired_keys,omitempty"`    // expired keys on the first-party SP
	HalfConfigured float64  `yaml:"half_configured,omitempty"` // some steps already done by hand
	HCWNames       float64  `yaml:"hcw_names,omitempty"`       // auth servers named like the Hybrid Configuration Wizard
	Clouds         []string `yaml:"clouds,omitempty"`          // round-robin; default global
}

// Tenant is one customer: its Entra directory, its Exchange Online
// organisation, its on-prem Exchange organisation and optionally Lync.
type Tenant struct {
	ID            string          `yaml:"id"`
	DisplayName   string          `yaml:"display_name"`
	Cloud         string          `yaml:"cloud"`
	InitialDomain string          `yaml:"initial_domain"`
	Site          string          `yaml:"site"`
	Entra         Entra           `yaml:"entra"`
	Online        ExchangeOrg     `yaml:"exchange_online"`
	OnPrem        ExchangeOrg     `yaml:"onprem"`
	Lync          *LyncDeployment `yaml:"lync,omitempty"`
	Behaviour     Behaviour       `yaml:"behaviour,omitempty"`
}

// Behaviour holds per-tenant simulation knobs that are not configuration.
type Behaviour struct {
	// PropagationChecks is how many Test-OAuthConnectivity calls after the
	// last configuration change still fail as "not yet propagated".
	PropagationChecks int `yaml:"propagation_checks,omitempty"`
	// PendingPropagation counts down; every configuration write resets it.
	PendingPropagation int `yaml:"pending_propagation,omitempty"`
}

// Entra is the directory as Graph shows it.
type Entra struct {
	Domains            []Domain             `yaml:"domains,omitempty"`
	Applications       []*Application       `yaml:"applications,omitempty"`
	ServicePrincipals  []*ServicePrincipal  `yaml:"service_principals,omitempty"`
	AppRoleAssignments []*AppRoleAssignment `yaml:"app_role_assignments,omitempty"`
}

type Domain struct {
	ID         string `yaml:"id"` // the domain name
	IsInitial  bool   `yaml:"is_initial,omitempty"`
	IsDefault  bool   `yaml:"is_default,omitempty"`
	IsVerified bool   `yaml:"is_verified,omitempty"`
}

type Application struct {
	ID          string `yaml:"id"`
	AppID       string `yaml:"app_id"`
	DisplayName string `yaml:"display_name"`
	// UniqueName is the application's second alternate key besides appId:
	// set once, by the upsert that creates it, and never changed.
	UniqueName             string                   `yaml:"unique_name,omitempty"`
	SignInAudience         string                   `yaml:"sign_in_audience,omitempty"`
	RequiredResourceAccess []RequiredResourceAccess `yaml:"required_resource_access,omitempty"`
	KeyCredentials         []KeyCredential          `yaml:"key_credentials,omitempty"`
	Tags                   []string                 `yaml:"tags,omitempty"`
	// CreatedBy marks objects the simulator knows were made by a client
	// (hybridflow) rather than seeded; used only by invariant checks.
	CreatedBy string `yaml:"created_by,omitempty"`
}

type RequiredResourceAccess struct {
	ResourceAppID  string           `yaml:"resource_app_id"`
	ResourceAccess []ResourceAccess `yaml:"resource_access"`
}

type ResourceAccess struct {
	ID   string `yaml:"id"`
	Type string `yaml:"type"` // Role | Scope
}

type ServicePrincipal struct {
	ID                    string          `yaml:"id"`
	AppID                 string          `yaml:"app_id"`
	DisplayName           string          `yaml:"display_name"`
	ServicePrincipalNames []string        `yaml:"service_principal_names,omitempty"`
	KeyCredentials        []KeyCredential `yaml:"key_credentials,omitempty"`
	AppRoles              []AppRole       `yaml:"app_roles,omitempty"`
	Tags                  []string        `yaml:"tags,omitempty"`
	CreatedBy             string          `yaml:"created_by,omitempty"`
}

type AppRole struct {
	ID    string `yaml:"id"`
	Value string `yaml:"value"`
}

// KeyCredential mirrors Graph's keyCredential. Key holds the certificate's
// public DER; Graph returns it only to a single-object read with
// $select=keyCredentials.
//
// CustomKeyIdentifier is the property as Graph's JSON carries it: base64
// text of the stored bytes. For certificates uploaded by the portal or
// Microsoft's scripts, or left for Graph to fill in, that is the
// 40-character hex thumbprint as text (hex digits are valid base64);
// other clients may have stored any bytes. Empty means none.
type KeyCredential struct {
	KeyID               string    `yaml:"key_id"`
	CustomKeyIdentifier string    `yaml:"custom_key_identifier"` // the wire string, e.g. the hex thumbprint
	DisplayName         string    `yaml:"display_name,omitempty"`
	Type                string    `yaml:"type"`  // AsymmetricX509Cert
	Usage               string    `yaml:"usage"` // Verify
	StartDateTime       time.Time `yaml:"start_date_time"`
	EndDateTime         time.Time `yaml:"end_date_time"`
	Key                 []byte    `yaml:"key,omitempty"`
}

type AppRoleAssignment struct {
	ID          string `yaml:"id"`
	PrincipalID string `yaml:"principal_id"`
	ResourceID  string `yaml:"resource_id"`
	AppRoleID   string `yaml:"app_role_id"`
}

// ExchangeOrg is an Exchange organisation, on-prem or online. Fields that
// make no sense online (servers, virtual directories) stay empty there.
type ExchangeOrg struct {
	OrganizationGUID            string                      `yaml:"organization_guid,omitempty"`
	Servers                     []ExchangeServer            `yaml:"servers,omitempty"`
	AcceptedDomains             []AcceptedDomain            `yaml:"accepted_domains,omitempty"`
	VirtualDirectories          []VirtualDirectory          `yaml:"virtual_directories,omitempty"`
	AuthServers                 []*AuthServer               `yaml:"auth_servers,omitempty"`
	PartnerApplications         []*PartnerApplication       `yaml:"partner_applications,omitempty"`
	AuthConfig                  AuthConfig                  `yaml:"auth_config,omitempty"`
	Certificates                []*ExchangeCertificate      `yaml:"certificates,omitempty"`
	IntraOrganizationConnectors []*IntraOrgConnector        `yaml:"intra_organization_connectors,omitempty"`
	AvailabilityAddressSpaces   []*AvailabilityAddressSpace `yaml:"availability_address_spaces,omitempty"`
	SettingOverrides            []*SettingOverride          `yaml:"setting_overrides,omitempty"`
	Mailboxes                   []string                    `yaml:"mailboxes,omitempty"`
	// VariantConfigRefreshed records the last Get-ExchangeDiagnosticInfo
	// refresh; a setting override takes effect only after one.
	VariantConfigRefreshed bool `yaml:"variant_config_refreshed,omitempty"`
}

type ExchangeServer struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"` // build, e.g. 15.2.1748.24
	Roles   string `yaml:"roles,omitempty"`
	// Unreachable: calls aimed at this server with -Server fail as a
	// server that cannot be contacted does (its certificate store cannot
	// be read).
	Unreachable bool `yaml:"unreachable,omitempty"`
}

type AcceptedDomain struct {
	DomainName string `yaml:"domain_name"`
	Default    bool   `yaml:"default,omitempty"`
}

// VirtualDirectory is one of WebServices, Mapi, OAB, Autodiscover.
type VirtualDirectory struct {
	Kind        string `yaml:"kind"`
	Server      string `yaml:"server"`
	InternalURL string `yaml:"internal_url,omitempty"`
	ExternalURL string `yaml:"external_url,omitempty"`
}

type AuthServer struct {
	Name                  string   `yaml:"name"`
	Type                  string   `yaml:"type"` // MicrosoftACS | AzureAD
	AuthMetadataURL       string   `yaml:"auth_metadata_url"`
	Realm                 string   `yaml:"realm,omitempty"`
	Enabled               bool     `yaml:"enabled"`
	ApplicationIdentifier string   `yaml:"application_identifier,omitempty"`
	DomainName            []string `yaml:"domain_name,omitempty"`
	CreatedBy             string   `yaml:"created_by,omitempty"`
}

type PartnerApplication struct {
	Name                  string `yaml:"name"`
	ApplicationIdentifier string `yaml:"application_identifier"`
	Realm                 string `yaml:"realm,omitempty"`
	Enabled               bool   `yaml:"enabled"`
}

type AuthConfig struct {
	CurrentCertificateThumbprint  string     `yaml:"current_certificate_thumbprint,omitempty"`
	NextCertificateThumbprint     string     `yaml:"next_certificate_thumbprint,omitempty"`
	NextCertificateEffectiveDate  *time.Time `yaml:"next_certificate_effective_date,omitempty"`
	PreviousCertificateThumbprint string     `yaml:"previous_certificate_thumbprint,omitempty"`
}

// ExchangeCertificate is a certificate in the Exchange servers' machine
// store. Only the public DER is modelled: private keys never leave on-prem.
type ExchangeCertificate struct {
	Thumbprint string    `yaml:"thumbprint"`
	Subject    string    `yaml:"subject"`
	NotBefore  time.Time `yaml:"not_before"`
	NotAfter   time.Time `yaml:"not_after"`
	Exportable bool      `yaml:"exportable"`
	KeySize    int       `yaml:"key_size"`
	DER        []byte    `yaml:"der"`
	// MissingOn names the servers whose machine store lacks this
	// certificate. Exchange's certificate servicelet copies the auth
	// certificate to every server, so by default every server holds every
	// certificate (a new one included); a server it did not reach is
	// listed here.
	MissingOn []string `yaml:"missing_on,omitempty"`
}

type IntraOrgConnector struct {
	Name                 string   `yaml:"name"`
	DiscoveryEndpoint    string   `yaml:"discovery_endpoint"`
	TargetAddressDomains []string `yaml:"target_address_domains"`
	Enabled              bool     `yaml:"enabled"`
	CreatedBy            string   `yaml:"created_by,omitempty"`
}

type AvailabilityAddressSpace struct {
	ForestName        string `yaml:"forest_name"`
	AccessMethod      string `yaml:"access_method"`
	ProxyURL          string `yaml:"proxy_url"`
	UseServiceAccount bool   `yaml:"use_service_account"`
}

type SettingOverride struct {
	Name       string   `yaml:"name"`
	Component  string   `yaml:"component"`
	Section    string   `yaml:"section"`
	Parameters []string `yaml:"parameters"`
}

// LyncDeployment is a Lync Server 2013 / Skype for Business topology.
//
// Host is the internal server the site's Lync Server Management Shell runs
// on ("" = the first replica that is not an Edge Server): a -LocalStore
// read answers from that machine's own replica. EdgeLocalStore is the Edge
// Server's replica. SnapshotDelayChecks is how many replication-status
// reads pass after a change before the Master Replicator packages it for
// the replicas (0: at once); until then every replica keeps reporting the
// status of the previous snapshot.
type LyncDeployment struct {
	Site                   string                 `yaml:"site"`
	Host                   string                 `yaml:"host,omitempty"`
	AllowFederatedUsers    bool                   `yaml:"allow_federated_users"`
	HostingProviders       []*HostingProvider     `yaml:"hosting_providers,omitempty"`
	Replicas               []*Replica             `yaml:"replicas,omitempty"`
	EdgeLocalStore         []*HostingProvider     `yaml:"edge_local_store,omitempty"`
	ExternalAccessPolicies []ExternalAccessPolicy `yaml:"external_access_policies,omitempty"`
	SnapshotDelayChecks    int                    `yaml:"snapshot_delay_checks,omitempty"`
	live                   lyncLive
}

type HostingProvider struct {
	Identity                  string `yaml:"identity"`
	Enabled                   bool   `yaml:"enabled"`
	EnabledSharedAddressSpace bool   `yaml:"enabled_shared_address_space"`
	HostsOCSUsers             bool   `yaml:"hosts_ocs_users"`
	ProxyFqdn                 string `yaml:"proxy_fqdn"`
	IsLocal                   bool   `yaml:"is_local"`
	VerificationLevel         string `yaml:"verification_level"`
}

// Replica is a Central Management store replica. LagChecks is how many
// status reads after a change still report it out of date; -1 never catches
// up. Role "edge" marks the Edge Server's replica; a deployment without one
// keeps its Edge store in step with the whole replica set.
type Replica struct {
	Fqdn      string `yaml:"fqdn"`
	UpToDate  bool   `yaml:"up_to_date"`
	LagChecks int    `yaml:"lag_checks,omitempty"`
	Role      string `yaml:"role,omitempty"`
	pending   int
	// Live status (cmdlets_lync.go): when the last snapshot was packaged
	// for it, when it last reported, and its local copy of the providers.
	lastUpdateCreation, lastStatusReport time.Time
	store                                []*HostingProvider
}

type ExternalAccessPolicy struct {
	Identity            string `yaml:"identity"`
	EnableOutsideAccess bool   `yaml:"enable_outside_access"`
}

// Counters counts requests by protocol so benchmarks and tests can assert
// costs (Graph reads/writes per tenant, host round trips, EXO calls).
type Counters struct {
	GraphReads, GraphWrites   int64
	EXOCalls, ShellRoundTrips int64
	ByTenant                  map[string]*TenantCounters
}

type TenantCounters struct {
	GraphReads, GraphWrites, EXOCalls, ShellRoundTrips int64
	// Writes counts every state-changing call the tenant received, on any protocol.
	Writes int64
}

// Now is the simulated clock.
func (w *World) Now() time.Time {
	if w.clock != nil {
		return w.clock()
	}
	if !w.FixedNow.IsZero() {
		return w.FixedNow
	}
	return time.Now().UTC()
}

// SetClock injects a clock (tests; the workflow test environment's time).
func (w *World) SetClock(c func() time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = c
}

// Tenant returns a tenant by ID (case-insensitive) or nil. Callers hold w.mu.
func (w *World) tenant(id string) *Tenant {
	if w.byID == nil {
		w.reindex()
	}
	return w.byID[strings.ToLower(id)]
}

func (w *World) reindex() {
	w.byID = make(map[string]*Tenant, len(w.Tenants))
	for _, t := range w.Tenants {
		w.byID[strings.ToLower(t.ID)] = t
	}
}

// Update runs f on a tenant under the world's lock; it is how tests and
// tools change the world without racing the protocol servers.
func (w *World) Update(tenantID string, f func(t *Tenant)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tenant(tenantID)
	if t == nil {
		return false
	}
	f(t)
	return true
}

// View runs f on a tenant under the world's lock, read-only by convention.
func (w *World) View(tenantID string, f func(t *Tenant)) bool { return w.Update(tenantID, f) }

func (w *World) tenantCounters(id string) *TenantCounters {
	if w.counter.ByTenant == nil {
		w.counter.ByTenant = map[string]*TenantCounters{}
	}
	k := strings.ToLower(id)
	tc := w.counter.ByTenant[k]
	if tc == nil {
		tc = &TenantCounters{}
		w.counter.ByTenant[k] = tc
	}
	return tc
}

// countWrite records a state-changing call; callers hold w.mu.
func (w *World) countWrite(tenantID string) { w.tenantCounters(tenantID).Writes++ }

// Count records one request of a protocol for a tenant; callers hold w.mu
// or call CountRequest.
func (w *World) count(proto string, tenantID string, write bool) {
	tc := w.tenantCounters(tenantID)
	switch proto {
	case ProtoGraph:
		if write {
			w.counter.GraphWrites++
			tc.GraphWrites++
			tc.Writes++
		} else {
			w.counter.GraphReads++
			tc.GraphReads++
		}
	case ProtoEXO:
		w.counter.EXOCalls++
		tc.EXOCalls++
	case ProtoShell:
		w.counter.ShellRoundTrips++
		tc.ShellRoundTrips++
	}
}

// CountRequest records one protocol request (servers call it once per
// request or batch).
func (w *World) CountRequest(proto, tenantID string, write bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count(proto, tenantID, write)
}

// Stats returns a copy of the request counters.
func (w *World) Stats() Counters {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.counter
	out.ByTenant = make(map[string]*TenantCounters, len(w.counter.ByTenant))
	for k, v := range w.counter.ByTenant {
		c := *v
		out.ByTenant[k] = &c
	}
	return out
}
