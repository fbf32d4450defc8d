package e2e_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// The worldwide organisation exactly as the Hybrid Configuration Wizard
// leaves it, written by hand from shared/reference/hybrid-facts.md (a)
// (the HCW log quoted in SammyKrosoft's Hybrid-Config-Wiz-Checks README):
// every name, URL and realm below is one that section lists. It is also
// configs/sim/hcw-worldwide.yaml, kept equal to this builder by
// TestReferenceWorldFilesAreCurrent.
const (
	hcwTenant     = "e5923069-4c1f-4b8e-9a3d-2f6b7c8d9e01" // tenant ID: the ACS metadata URL and both realms
	hcwG1         = "177cd94d-8e9f-4a0b-9c1d-2e3f4a5b6c7d" // the GUID of every on-prem object HCW names
	hcwOnPremOrg  = "a3e87a2d-5b6c-4d7e-8f90-1a2b3c4d5e6f" // on-prem organization GUID = G2
	hcwOnlineOrg  = "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e02"
	hcwInitial    = "contoso.onmicrosoft.com"
	hcwRouting    = "contoso.mail.onmicrosoft.com"
	hcwDomain     = "contoso.ca"
	hcwPublicHost = "mail.contoso.ca"
	hcwFirstParty = "3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f03"
	hcwGraphSP    = "4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a04"
	hcwBuild      = "15.2.1748.24" // Exchange 2019 CU15 with the April 2025 hotfix
)

var hcwNow = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// hcwWorldwideWorld: the wizard's objects (hybrid-facts.md (a)):
//   - ACS auth server "ACS - <G1>", metadata URL naming the tenant ID,
//     DomainName = the on-prem domain and the routing domain;
//   - evoSTS auth server "EvoSts - <G1>", type AzureAD, metadata URL
//     naming the initial domain, no DomainName;
//   - both with realm = the tenant ID, enabled;
//   - partner application "Exchange Online" enabled;
//   - on-prem connector "HybridIOC - <G1>" to
//     https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc for
//     the routing domain; Exchange Online connector "HybridIOC - <G2>" to
//     https://mail.contoso.ca/autodiscover/autodiscover.svc for contoso.ca;
//   - the routing domain as an on-prem accepted domain.
//
// The first-party service principal holds what the wizard's OAuth part
// writes (the manual procedure's steps 4 and 5): the auth
// certificate as a key and the public host as an SPN. The servers have
// the April 2025 hotfix, so setup moves the organisation to the dedicated
// application.
func hcwWorldwideWorld() *sim.World {
	p := cloud.MustLookup("global")
	cert := sim.NewCertificate(sim.AuthCertificateSubject, 20240315, time.Date(2024, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC))
	cert.Exportable, cert.KeySize = true, 2048
	var vdirs []sim.VirtualDirectory
	for _, server := range []string{"EX01", "EX02"} {
		internal := strings.ToLower(server) + ".corp." + hcwDomain
		for _, v := range []struct{ kind, path string }{
			{"WebServices", "/EWS/Exchange.asmx"}, {"Mapi", "/mapi"}, {"OAB", "/OAB"}, {"Autodiscover", "/Autodiscover/Autodiscover.xml"},
		} {
			vdirs = append(vdirs, sim.VirtualDirectory{Kind: v.kind, Server: server, InternalURL: "https://" + internal + v.path, ExternalURL: "https://" + hcwPublicHost + v.path})
		}
	}
	tn := &sim.Tenant{
		ID: hcwTenant, DisplayName: "Contoso, as the Hybrid Configuration Wizard left it", Cloud: "global", InitialDomain: hcwInitial, Site: "site-1",
		Entra: sim.Entra{
			Domains: []sim.Domain{
				{ID: hcwInitial, IsInitial: true, IsVerified: true},
				{ID: hcwRouting, IsVerified: true},
				{ID: hcwDomain, IsDefault: true, IsVerified: true},
			},
			ServicePrincipals: []*sim.ServicePrincipal{
				{
					ID: hcwFirstParty, AppID: cloud.FirstPartyAppID, DisplayName: "Office 365 Exchange Online",
					ServicePrincipalNames: []string{cloud.FirstPartyAppID, cloud.FirstPartyAppID + "/outlook.office365.com", "https://outlook.office365.com/", "https://" + hcwPublicHost + "/"},
					KeyCredentials: []sim.KeyCredential{{KeyID: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c05", CustomKeyIdentifier: cert.Thumbprint, DisplayName: "CN=" + sim.AuthCertificateSubject,
						Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: cert.NotBefore, EndDateTime: cert.NotAfter, Key: cert.DER}},
					AppRoles: []sim.AppRole{
						{ID: plan.FullAccessAsAppRoleID, Value: "full_access_as_app"},
						{ID: "dc50a0fb-09a3-484d-be87-e023b12c6440", Value: "Exchange.ManageAsApp"},
					},
				},
				{ID: hcwGraphSP, AppID: "00000003-0000-0000-c000-000000000000", DisplayName: "Microsoft Graph",
					ServicePrincipalNames: []string{"00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com/"}},
			},
		},
		Online: sim.ExchangeOrg{
			OrganizationGUID: hcwOnlineOrg,
			AcceptedDomains:  []sim.AcceptedDomain{{DomainName: hcwDomain, Default: true}, {DomainName: hcwInitial}, {DomainName: hcwRouting}},
			IntraOrganizationConnectors: []*sim.IntraOrgConnector{{Name: "HybridIOC - " + hcwOnPremOrg,
				DiscoveryEndpoint: "https://" + hcwPublicHost + "/autodiscover/autodiscover.svc", TargetAddressDomains: []string{hcwDomain}, Enabled: true}},
			Mailboxes: []string{"admin@" + hcwInitial},
		},
		OnPrem: sim.ExchangeOrg{
			OrganizationGUID:   hcwOnPremOrg,
			Servers:            []sim.ExchangeServer{{Name: "EX01", Version: hcwBuild, Roles: "Mailbox"}, {Name: "EX02", Version: hcwBuild, Roles: "Mailbox"}},
			AcceptedDomains:    []sim.AcceptedDomain{{DomainName: hcwDomain, Default: true}, {DomainName: hcwRouting}},
			VirtualDirectories: vdirs,
			AuthServers: []*sim.AuthServer{
				{Name: "ACS - " + hcwG1, Type: "MicrosoftACS", AuthMetadataURL: p.ACSMetadataURL(hcwTenant), Realm: hcwTenant, Enabled: true,
					DomainName: []string{hcwDomain, hcwRouting}},
				{Name: "EvoSts - " + hcwG1, Type: "AzureAD", AuthMetadataURL: p.EvoSTSMetadataURL(hcwInitial), Realm: hcwTenant, Enabled: true},
			},
			PartnerApplications: []*sim.PartnerApplication{{Name: "Exchange Online", ApplicationIdentifier: cloud.FirstPartyAppID, Enabled: true}},
			AuthConfig:          sim.AuthConfig{CurrentCertificateThumbprint: cert.Thumbprint},
			Certificates:        []*sim.ExchangeCertificate{cert},
			IntraOrganizationConnectors: []*sim.IntraOrgConnector{{Name: "HybridIOC - " + hcwG1,
				DiscoveryEndpoint: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc", TargetAddressDomains: []string{hcwRouting}, Enabled: true}},
			Mailboxes: []string{"administrator@" + hcwDomain},
		},
	}
	return &sim.World{Seed: 23, FixedNow: hcwNow, Tenants: []*sim.Tenant{tn}}
}

const hcwWorldHeader = `# A worldwide organisation exactly as the Hybrid Configuration Wizard leaves
# it (docs/microsoft-behaviour.md, "What the Hybrid Configuration Wizard
# builds"): auth servers "ACS - <G1>" (metadata URL naming the tenant ID,
# DomainName = on-prem and routing domain) and "EvoSts - <G1>", both with
# realm = the tenant ID; connectors "HybridIOC - <G1>" on-prem (to
# autodiscover-s.outlook.com, for the routing domain) and "HybridIOC - <G2>"
# in Exchange Online (to mail.contoso.ca, for contoso.ca); the partner
# application enabled; servers with the April 2025 hotfix.
#
# Generated from hcwWorldwideWorld in internal/e2e/hcw_world_test.go
# (HYBRIDFLOW_REGEN_SIM_CONFIGS=1 go test ./internal/e2e -run
# TestReferenceWorldFilesAreCurrent); certificates are real X.509.
`

// TestE2EHCWBuiltOrganisation: the organisation as the wizard left it
// (hybrid-facts.md (a)) sets up and verifies in dedicated mode without a
// pause, adopting what the wizard built: it ends with exactly its two auth
// servers and one connector per direction, the evoSTS server carrying the
// dedicated application with the ACS server's domains (hybrid-facts.md (b)
// "Set-AuthServer": -DomainName copied from the one ACS server), the ACS
// server without an ApplicationIdentifier, and the setting override.
func TestE2EHCWBuiltOrganisation(t *testing.T) {
	w := loadWorld(t, "hcw-worldwide.yaml")
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := e.snapshot()
	run := e.start(ctx, e.tenant(hcwTenant), workflows.SetupOptions{})
	res, err := e.resultUnlessPaused(ctx, run)
	logSteps(t, res)
	if err != nil {
		t.Fatalf("setup failed: %v", err)
	}
	if res.State != workflows.StateVerified || res.Mode != string(plan.ModeDedicatedApp) {
		t.Fatalf("state %s, mode %s; want verified, dedicated-app (%v)", res.State, res.Mode, res.Verification)
	}
	for _, a := range res.Plan {
		if a.Change == plan.ChangeBlocked {
			t.Errorf("plan: %s blocked: %s", a.Step, a.Reason)
		}
	}
	after := e.snapshot()
	checkNothingLost(t, before, after)
	for _, d := range e2e.NewDuplicates(before, after) {
		t.Errorf("duplicate: %s", d)
	}
	b, a := tenantOf(t, before, hcwTenant), tenantOf(t, after, hcwTenant)

	// Exactly the wizard's auth servers, the evoSTS one carrying the app.
	if got := authServerNames(a); !slices.Equal(got, authServerNames(b)) {
		t.Errorf("auth servers after setup %q, want exactly the wizard's %q", got, authServerNames(b))
	}
	app := hcwApp(t, a)
	for _, s := range a.OnPrem.AuthServers {
		switch s.Name {
		case "ACS - " + hcwG1:
			if s.ApplicationIdentifier != "" || !slices.Equal(s.DomainName, []string{hcwDomain, hcwRouting}) {
				t.Errorf("ACS server changed: ApplicationIdentifier %q, DomainName %q", s.ApplicationIdentifier, s.DomainName)
			}
		case "EvoSts - " + hcwG1:
			if !strings.EqualFold(s.ApplicationIdentifier, app.AppID) || !slices.Equal(s.DomainName, []string{hcwDomain, hcwRouting}) {
				t.Errorf("evoSTS server: ApplicationIdentifier %q (app %s), DomainName %q; want the app and the ACS server's domains", s.ApplicationIdentifier, app.AppID, s.DomainName)
			}
		}
	}
	// One connector per direction: the wizard's, unchanged.
	for side, pair := range map[string][2][]*sim.IntraOrgConnector{
		"on-prem":         {b.OnPrem.IntraOrganizationConnectors, a.OnPrem.IntraOrganizationConnectors},
		"Exchange Online": {b.Online.IntraOrganizationConnectors, a.Online.IntraOrganizationConnectors},
	} {
		if len(pair[1]) != 1 || pair[1][0].Name != pair[0][0].Name || pair[1][0].DiscoveryEndpoint != pair[0][0].DiscoveryEndpoint ||
			!slices.Equal(pair[1][0].TargetAddressDomains, pair[0][0].TargetAddressDomains) || !pair[1][0].Enabled {
			t.Errorf("%s connectors after setup: %s; want the wizard's %s as it was", side, describeIOCs(pair[1]), describeIOCs(pair[0]))
		}
	}
	if !slices.ContainsFunc(a.OnPrem.SettingOverrides, func(o *sim.SettingOverride) bool { return o.Name == plan.OverrideName }) {
		t.Errorf("no setting override %s", plan.OverrideName)
	}
	// The wizard's legacy key is taken off the first-party principal once
	// the dedicated application verified.
	if hasKey(firstPartySP(a).KeyCredentials, authCert(t, b).Thumbprint) {
		t.Errorf("the legacy key is still on the first-party service principal")
	}
	if o := e.overlaps(); len(o) > 0 {
		t.Errorf("steps ran twice at once:\n%s", strings.Join(o, "\n"))
	}
}

func authServerNames(tn *sim.Tenant) []string {
	var out []string
	for _, s := range tn.OnPrem.AuthServers {
		out = append(out, s.Name)
	}
	return out
}

func describeIOCs(list []*sim.IntraOrgConnector) string {
	var out []string
	for _, c := range list {
		out = append(out, c.Name+" → "+c.DiscoveryEndpoint+" for "+strings.Join(c.TargetAddressDomains, ","))
	}
	return "[" + strings.Join(out, "; ") + "]"
}

func hcwApp(t *testing.T, tn *sim.Tenant) *sim.Application {
	t.Helper()
	for _, a := range tn.Entra.Applications {
		if a.DisplayName == dedicatedName(tn) {
			return a
		}
	}
	t.Fatalf("no application %s", dedicatedName(tn))
	return nil
}

// evoSTSDomains is the DomainName the evoSTS auth server gets, by the rule
// of Microsoft's ConfigureExchangeHybridApplication.ps1
// (shared/reference/hybrid-facts.md (b) "Set-AuthServer"): the DomainName
// of the tenant's one enabled ACS server that lists some, else every
// on-prem accepted domain that is a verified tenant domain, except the
// initial domain. Computed from the world before the run.
func evoSTSDomains(tn *sim.Tenant) []string {
	var acs []*sim.AuthServer
	for _, s := range tn.OnPrem.AuthServers {
		if (s.Type == "" || s.Type == "MicrosoftACS") && s.Enabled && len(s.DomainName) > 0 && (s.Realm == "" || strings.EqualFold(s.Realm, tn.ID)) {
			acs = append(acs, s)
		}
	}
	if len(acs) == 1 {
		return acs[0].DomainName
	}
	var out []string
	for _, a := range tn.OnPrem.AcceptedDomains {
		for _, d := range tn.Entra.Domains {
			if d.IsVerified && !d.IsInitial && strings.EqualFold(d.ID, a.DomainName) {
				out = append(out, strings.ToLower(a.DomainName))
			}
		}
	}
	return out
}
