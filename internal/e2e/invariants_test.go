package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// invariantWorld: a tenant with something of every kind NothingLost
// guards: a foreign unexpired key, an expired key and the legacy key on the
// first-party principal, HCW auth servers with a DomainName, a connector,
// an availability address space and a setting override.
func invariantWorld(t *testing.T) *sim.World {
	return generated(t, sim.GenerateSpec{Tenants: 1, Prefix: "inv", HCWNames: 1, ForeignKeys: 1, ExpiredKeys: 1}, 4499, func(ts []*sim.Tenant) {
		tn := ts[0]
		p, _ := cloud.Lookup(tn.Cloud)
		fp := firstPartySP(tn)
		fp.KeyCredentials = append(fp.KeyCredentials, keyCredential(tn.OnPrem.Certificates[0]))
		tn.OnPrem.AuthServers[1].DomainName = []string{tn.InitialDomain}
		tn.OnPrem.IntraOrganizationConnectors = []*sim.IntraOrgConnector{{Name: "HybridIOC - x", DiscoveryEndpoint: p.AutodiscoverURL(),
			TargetAddressDomains: []string{p.RoutingDomain(tn.InitialDomain), "other.example.com"}, Enabled: true}}
		tn.OnPrem.AvailabilityAddressSpaces = []*sim.AvailabilityAddressSpace{{ForestName: "fabrikam.com", AccessMethod: "OrgWideFB", ProxyURL: "https://x/EWS/Exchange.asmx"}}
		tn.OnPrem.SettingOverrides = []*sim.SettingOverride{{Name: "Other", Component: "Global", Section: "Other", Parameters: []string{"Enabled=true"}}}
	})
}

// addDedicatedApp gives the tenant the dedicated application holding the
// auth certificate, as a dedicated-mode run leaves it.
func addDedicatedApp(tn *sim.Tenant, withKey bool) {
	app := &sim.Application{ID: "a0000000-0000-4000-8000-000000000001", AppID: "a0000000-0000-4000-8000-000000000002", DisplayName: plan.DedicatedAppPrefix + strings.ToLower(tn.OnPrem.OrganizationGUID)}
	if withKey {
		app.KeyCredentials = []sim.KeyCredential{keyCredential(tn.OnPrem.Certificates[0])}
	}
	tn.Entra.Applications = append(tn.Entra.Applications, app)
}

func dropKey(sp *sim.ServicePrincipal, i int) {
	sp.KeyCredentials = slices.Delete(sp.KeyCredentials, i, i+1)
}

// TestNothingLostRules: each case changes a copy of the world the way a
// faulty (or a correct) run might and states which losses NothingLost must
// report: none for what the design allows, one naming the object otherwise.
func TestNothingLostRules(t *testing.T) {
	// first-party keys: [0] foreign unexpired, [1] expired, [2] legacy (auth certificate).
	cases := []struct {
		name string
		edit func(tn *sim.Tenant)
		want []string // substrings, one per expected violation; nil = none
	}{
		{"unchanged", func(*sim.Tenant) {}, nil},
		{"foreign unexpired key dropped", func(tn *sim.Tenant) { dropKey(firstPartySP(tn), 0) }, []string{"lost unexpired key"}},
		{"expired key dropped by a housekeeping-only write", func(tn *sim.Tenant) { dropKey(firstPartySP(tn), 1) }, []string{"housekeeping alone"}},
		{"expired key dropped with a key added", func(tn *sim.Tenant) {
			fp := firstPartySP(tn)
			dropKey(fp, 1)
			fp.KeyCredentials = append(fp.KeyCredentials, keyCredential(sim.NewCertificate(sim.AuthCertificateSubject, 77, time.Now(), time.Now().AddDate(1, 0, 0))))
		}, nil},
		{"legacy key moved to the dedicated application, expired key with it", func(tn *sim.Tenant) {
			addDedicatedApp(tn, true)
			dropKey(firstPartySP(tn), 2)
			dropKey(firstPartySP(tn), 1)
		}, nil},
		{"legacy key removed, dedicated application lacks it", func(tn *sim.Tenant) {
			addDedicatedApp(tn, false)
			dropKey(firstPartySP(tn), 2)
		}, []string{"lost unexpired key"}},
		{"SPN removed", func(tn *sim.Tenant) {
			fp := firstPartySP(tn)
			fp.ServicePrincipalNames = fp.ServicePrincipalNames[1:]
		}, []string{"lost service principal name"}},
		{"app role removed", func(tn *sim.Tenant) { firstPartySP(tn).AppRoles = nil }, []string{"lost app role", "lost app role"}},
		{"application gone", func(tn *sim.Tenant) { tn.Entra.Applications = nil }, []string{"application \"Fabrikam HR Sync\""}},
		{"requiredResourceAccess replaced", func(tn *sim.Tenant) {
			tn.Entra.Applications[0].RequiredResourceAccess = []sim.RequiredResourceAccess{{ResourceAppID: cloud.FirstPartyAppID, ResourceAccess: []sim.ResourceAccess{{ID: plan.FullAccessAsAppRoleID, Type: "Role"}}}}
		}, []string{"lost requiredResourceAccess"}},
		{"service principal gone", func(tn *sim.Tenant) { tn.Entra.ServicePrincipals = tn.Entra.ServicePrincipals[1:] }, []string{"service principal \"Office 365 Exchange Online\""}},
		{"app role assignment gone", func(tn *sim.Tenant) { tn.Entra.AppRoleAssignments = nil }, []string{"app role assignment"}},
		{"auth server gone", func(tn *sim.Tenant) { tn.OnPrem.AuthServers = tn.OnPrem.AuthServers[1:] }, []string{"auth server \"ACS - "}},
		{"auth server repointed and disabled", func(tn *sim.Tenant) {
			tn.OnPrem.AuthServers[0].AuthMetadataURL = "https://elsewhere/metadata/json/1"
			tn.OnPrem.AuthServers[0].Enabled = false
		}, []string{"now MicrosoftACS https://elsewhere", "was disabled"}},
		{"auth server domain names replaced", func(tn *sim.Tenant) { tn.OnPrem.AuthServers[1].DomainName = []string{"x.example.com"} }, []string{"lost DomainName"}},
		{"auth server domain names extended", func(tn *sim.Tenant) {
			tn.OnPrem.AuthServers[1].DomainName = append(tn.OnPrem.AuthServers[1].DomainName, "x.example.com")
		}, nil},
		{"connector target domain replaced", func(tn *sim.Tenant) {
			tn.OnPrem.IntraOrganizationConnectors[0].TargetAddressDomains = tn.OnPrem.IntraOrganizationConnectors[0].TargetAddressDomains[:1]
		}, []string{"lost target address domain other.example.com"}},
		{"connector gone", func(tn *sim.Tenant) { tn.OnPrem.IntraOrganizationConnectors = nil }, []string{"IntraOrganizationConnector \"HybridIOC - x\" is gone"}},
		{"availability address space replaced", func(tn *sim.Tenant) {
			tn.OnPrem.AvailabilityAddressSpaces[0].AccessMethod = "InternalProxy"
		}, []string{"availability address space fabrikam.com was"}},
		{"setting override gone", func(tn *sim.Tenant) { tn.OnPrem.SettingOverrides = nil }, []string{"setting override \"Other\" is gone"}},
		{"auth certificate unpublished", func(tn *sim.Tenant) { tn.OnPrem.AuthConfig.CurrentCertificateThumbprint = "" }, []string{"CurrentCertificateThumbprint"}},
		{"partner application disabled", func(tn *sim.Tenant) {
			tn.OnPrem.PartnerApplications[0].Enabled = false
		}, nil}, // it starts disabled in this world; enabling and disabling it back is allowed
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := invariantWorld(t)
			before := w.Clone()
			after := w.Clone()
			tc.edit(after.Tenants[0])
			checkViolations(t, e2e.NothingLost(before, after), tc.want)
		})
	}
	t.Run("second copy of a key dropped without a write", func(t *testing.T) {
		w := invariantWorld(t)
		w.Update(w.Tenants[0].ID, func(tn *sim.Tenant) {
			fp := firstPartySP(tn)
			fp.KeyCredentials = append(fp.KeyCredentials, fp.KeyCredentials[0])
		})
		before, after := w.Clone(), w.Clone()
		dropKey(firstPartySP(after.Tenants[0]), 3)
		if got := e2e.NothingLost(before, after); len(got) != 1 || !strings.Contains(got[0], "1 of 2 copies") {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("tenant gone", func(t *testing.T) {
		w := invariantWorld(t)
		before, after := w.Clone(), w.Clone()
		after.Tenants = nil
		if got := e2e.NothingLost(before, after); len(got) != 1 || !strings.Contains(got[0], "is gone") {
			t.Fatalf("got %v", got)
		}
	})
}

// TestAdditionsLists: what a dedicated-mode run adds is listed once per
// object or item, new objects' keys included, and nothing else.
func TestAdditionsLists(t *testing.T) {
	w := invariantWorld(t)
	before := w.Clone()
	after := w.Clone()
	tn := after.Tenants[0]
	addDedicatedApp(tn, true)
	app := tn.Entra.Applications[len(tn.Entra.Applications)-1]
	tn.Entra.ServicePrincipals = append(tn.Entra.ServicePrincipals, &sim.ServicePrincipal{ID: "s1", AppID: app.AppID, DisplayName: app.DisplayName, ServicePrincipalNames: []string{app.AppID}})
	fp := firstPartySP(tn)
	tn.Entra.AppRoleAssignments = append(tn.Entra.AppRoleAssignments, &sim.AppRoleAssignment{ID: "r1", PrincipalID: "s1", ResourceID: fp.ID, AppRoleID: plan.FullAccessAsAppRoleID})
	fp.ServicePrincipalNames = append(fp.ServicePrincipalNames, "https://mail.inv1.example.com/")
	tn.OnPrem.AuthServers[1].DomainName = append(tn.OnPrem.AuthServers[1].DomainName, "inv1.example.com")
	tn.OnPrem.SettingOverrides = append(tn.OnPrem.SettingOverrides, &sim.SettingOverride{Name: plan.OverrideName})
	tn.Online.IntraOrganizationConnectors = append(tn.Online.IntraOrganizationConnectors, &sim.IntraOrgConnector{Name: plan.OnlineIOCName})
	got := e2e.Additions(before, after)
	id := tn.ID + ": "
	want := []string{
		id + `Exchange Online IntraOrganizationConnector "ExchangeHybridOnlineToOnPremises"`,
		id + `app role assignment ` + plan.FullAccessAsAppRoleID + ` of "` + app.DisplayName + `" on "Office 365 Exchange Online"`,
		id + `application "` + app.DisplayName + `"`,
		id + `key ` + tn.OnPrem.Certificates[0].Thumbprint + ` on application "` + app.DisplayName + `"`,
		id + `on-prem auth server "EvoSts - ` + tn.ID + `" domain name inv1.example.com`,
		id + `on-prem setting override "EnableExchangeHybrid3PAppFeature"`,
		id + `service principal "` + app.DisplayName + `"`,
		id + `service principal name https://mail.inv1.example.com/ on "Office 365 Exchange Online"`,
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("additions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := e2e.NothingLost(before, after); len(got) != 0 {
		t.Fatalf("additions reported as losses: %v", got)
	}
}

// checkViolations: got holds exactly one violation per want, in order,
// each mentioning its want.
func checkViolations(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d violation(s), want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("violation %q does not mention %q", got[i], w)
		}
	}
}
