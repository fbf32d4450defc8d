package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// Worlds written by hand from Microsoft's own descriptions of real
// organisations (docs/microsoft-behaviour.md), not from sim's generator:
// every name, URL and key below is what that documentation says a real
// organisation of that kind holds. Each is also a file in configs/sim/,
// kept equal to its builder by TestReferenceWorldFilesAreCurrent, so an
// operator can run the demo worker against it.
//
// Certificates are real X.509 (sim.NewCertificate, deterministic serials).

// refNow pins the simulated clock: which certificate has expired must not
// depend on the day the test runs.
var refNow = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

const (
	// The tenant IDs of the reference worlds.
	refGCCHighTenant = "5c2b7a1e-9d3f-4e6a-8b1c-0f2e3d4c5b01"
	refMixedTenant   = "7e4d2c1b-3a5f-4b6c-9d8e-1f0a2b3c4d02"

	// Microsoft Graph's first-party application.
	graphAppID = "00000003-0000-0000-c000-000000000000"

	// Builds from Microsoft's build table (CSS-Exchange
	// Get-ExchangeBuildVersionInformation.ps1): 2019 CU15 with the April
	// 2025 hotfix, the first that can use the dedicated application, and
	// 2019 CU13, which never received that hotfix.
	build2019CU15Apr25HU = "15.2.1748.24"
	build2019CU13        = "15.2.1258.12"
)

// refCert is a certificate of the reference worlds: subject, a serial that
// keeps its DER stable, and its validity.
func refCert(subject string, serial int64, from, to string) *sim.ExchangeCertificate {
	parse := func(s string) time.Time {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	c := sim.NewCertificate(subject, serial, parse(from), parse(to))
	c.Exportable = true
	c.KeySize = 2048
	return c
}

// refOrg is the part every reference tenant shares: an on-prem
// organisation reached at mail.<domain> and autodiscover.<domain>, the
// Exchange Online first-party and Graph service principals as Entra holds
// them in every tenant, and one mailbox on each side for verification.
type refOrg struct {
	id, name, cloudName, initial, domain, site string
	onPremGUID, onlineGUID                     string
	servers                                    []sim.ExchangeServer
	current                                    *sim.ExchangeCertificate
	firstPartySPID, graphSPID                  string
}

func (o refOrg) tenant() *sim.Tenant {
	p := cloud.MustLookup(o.cloudName)
	routing := p.RoutingDomain(o.initial)
	var vdirs []sim.VirtualDirectory
	for _, s := range o.servers {
		host := fmt.Sprintf("%s.%s", strings.ToLower(s.Name), o.domain)
		for _, v := range []struct{ kind, path string }{
			{"WebServices", "/EWS/Exchange.asmx"}, {"Mapi", "/mapi"}, {"OAB", "/OAB"}, {"Autodiscover", "/Autodiscover/Autodiscover.xml"},
		} {
			ext := "https://mail." + o.domain + v.path
			if v.kind == "Autodiscover" {
				ext = "https://autodiscover." + o.domain + v.path
			}
			vdirs = append(vdirs, sim.VirtualDirectory{Kind: v.kind, Server: s.Name, InternalURL: "https://" + host + v.path, ExternalURL: ext})
		}
	}
	return &sim.Tenant{
		ID: o.id, DisplayName: o.name, Cloud: o.cloudName, InitialDomain: o.initial, Site: o.site,
		Entra: sim.Entra{
			Domains: []sim.Domain{
				{ID: o.initial, IsInitial: true, IsVerified: true},
				{ID: routing, IsVerified: true},
				{ID: o.domain, IsDefault: true, IsVerified: true},
			},
			ServicePrincipals: []*sim.ServicePrincipal{
				{
					ID: o.firstPartySPID, AppID: cloud.FirstPartyAppID, DisplayName: "Office 365 Exchange Online",
					ServicePrincipalNames: []string{cloud.FirstPartyAppID, cloud.FirstPartyAppID + "/" + p.ExchangeOnlineHost, "https://" + p.ExchangeOnlineHost + "/"},
					AppRoles: []sim.AppRole{
						{ID: "dc890d15-9560-4a4c-9b7f-a736ec74ec40", Value: "full_access_as_app"},
						{ID: "dc50a0fb-09a3-484d-be87-e023b12c6440", Value: "Exchange.ManageAsApp"},
					},
				},
				{
					ID: o.graphSPID, AppID: graphAppID, DisplayName: "Microsoft Graph",
					ServicePrincipalNames: []string{graphAppID, "https://" + p.GraphHost + "/"},
				},
			},
		},
		Online: sim.ExchangeOrg{
			OrganizationGUID: o.onlineGUID,
			AcceptedDomains:  []sim.AcceptedDomain{{DomainName: o.domain, Default: true}, {DomainName: o.initial}, {DomainName: routing}},
			Mailboxes:        []string{"admin@" + o.initial},
		},
		OnPrem: sim.ExchangeOrg{
			OrganizationGUID:   o.onPremGUID,
			Servers:            o.servers,
			AcceptedDomains:    []sim.AcceptedDomain{{DomainName: o.domain, Default: true}, {DomainName: routing}},
			VirtualDirectories: vdirs,
			PartnerApplications: []*sim.PartnerApplication{
				{Name: "Exchange Online", ApplicationIdentifier: cloud.FirstPartyAppID, Enabled: true},
			},
			AuthConfig:   sim.AuthConfig{CurrentCertificateThumbprint: o.current.Thumbprint},
			Certificates: []*sim.ExchangeCertificate{o.current},
			Mailboxes:    []string{"administrator@" + o.domain},
		},
	}
}

// gccHighPortalKeysWorld is a GCC High organisation configured by hand on
// the legacy path before the dedicated application existed, with its keys
// as Graph stores them when the portal or Microsoft's scripts uploaded
// them: customKeyIdentifier is the certificate's 40-character hex
// thumbprint as text. The first-party service principal holds
//   - the current auth certificate, uploaded in 2025;
//   - the auth certificate of 2023, replaced since, no longer named by
//     Get-AuthConfig nor in the certificate store, uploaded in lower case;
//   - another application's certificate, whose identifier is not a
//     thumbprint at all (base64 of 16 bytes, as other tools write it).
//
// Its servers have the April 2025 hotfix, so setup moves it to the
// dedicated application and the clean-up takes both Exchange auth
// certificates (found by the certificate inside each key) off the
// first-party service principal, leaving the other application's key
// byte for byte.
func gccHighPortalKeysWorld() *sim.World {
	current := refCert(sim.AuthCertificateSubject, 20250601, "2025-06-01", "2030-06-01")
	old := refCert(sim.AuthCertificateSubject, 20230301, "2023-03-01", "2028-03-01")
	foreign := refCert("Fabrikam Records Connector", 7001, "2026-01-15", "2027-01-15")
	org := refOrg{
		id: refGCCHighTenant, name: "GCC High, portal-uploaded keys", cloudName: "gcchigh",
		initial: "fabrikamgov.onmicrosoft.us", domain: "fabrikam-gov.us", site: "site-1",
		onPremGUID: "3f6e8d2a-1b4c-4d5e-8f7a-9b0c1d2e3f41", onlineGUID: "8a9b0c1d-2e3f-4a5b-9c6d-7e8f9a0b1c42",
		servers: []sim.ExchangeServer{
			{Name: "EXG01", Version: build2019CU15Apr25HU, Roles: "Mailbox"},
			{Name: "EXG02", Version: build2019CU15Apr25HU, Roles: "Mailbox"},
		},
		current:        current,
		firstPartySPID: "4b5c6d7e-8f90-4a1b-8c2d-3e4f5a6b7c43", graphSPID: "5c6d7e8f-9a0b-4c1d-9e2f-3a4b5c6d7e44",
	}
	tn := org.tenant()
	p := cloud.MustLookup(org.cloudName)
	// The manual procedure's objects (GCC High): auth servers named and
	// addressed as the procedure says, the first-party principal's SPN for
	// the published host.
	tn.OnPrem.AuthServers = []*sim.AuthServer{
		{Name: p.ACSName, Type: "MicrosoftACS", AuthMetadataURL: p.ACSMetadataURL(org.initial), Realm: org.id, Enabled: true},
		{Name: p.EvoSTSName, Type: "AzureAD", AuthMetadataURL: p.EvoSTSMetadataURL(org.initial), Realm: org.id, Enabled: true},
	}
	fp := tn.Entra.ServicePrincipals[0]
	fp.ServicePrincipalNames = append(fp.ServicePrincipalNames, "https://mail."+org.domain+"/")
	fp.KeyCredentials = []sim.KeyCredential{
		portalKey("9d1e2f3a-4b5c-4d6e-8f7a-0b1c2d3e4f51", old, strings.ToLower(old.Thumbprint)),
		portalKey("0e1f2a3b-4c5d-4e6f-9a7b-1c2d3e4f5a52", current, current.Thumbprint),
		portalKey("1f2a3b4c-5d6e-4f7a-8b9c-2d3e4f5a6b53", foreign, "q83vEjRWeJCrze8SNFZ4kA=="),
	}
	return &sim.World{Seed: 17, FixedNow: refNow, Tenants: []*sim.Tenant{tn}}
}

// portalKey is a key credential as Graph returns it after an upload by the
// portal or Microsoft's scripts: the certificate's subject as displayName,
// customKeyIdentifier as the uploader's string, the certificate's validity.
func portalKey(keyID string, c *sim.ExchangeCertificate, identifier string) sim.KeyCredential {
	return sim.KeyCredential{KeyID: keyID, CustomKeyIdentifier: identifier, DisplayName: "CN=" + c.Subject,
		Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER}
}

// mixedBuildsWorld is a worldwide organisation, not configured yet, whose
// Mailbox servers are on mixed builds: two on 2019 CU15 with the April
// 2025 hotfix, one still on 2019 CU13. Microsoft's script enables the
// dedicated application in such an organisation (the CU13 server keeps
// the old path, which is blocked in this cloud, until it is updated), so
// setup must choose the dedicated application, name EXM03 and the build it
// needs, and verify.
func mixedBuildsWorld() *sim.World {
	org := refOrg{
		id: refMixedTenant, name: "Worldwide, mixed builds", cloudName: "global",
		initial: "northwindmix.onmicrosoft.com", domain: "northwind-mix.com", site: "site-1",
		onPremGUID: "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c61", onlineGUID: "7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d62",
		servers: []sim.ExchangeServer{
			{Name: "EXM01", Version: build2019CU15Apr25HU, Roles: "Mailbox"},
			{Name: "EXM02", Version: build2019CU15Apr25HU, Roles: "Mailbox"},
			{Name: "EXM03", Version: build2019CU13, Roles: "Mailbox"},
		},
		current:        refCert(sim.AuthCertificateSubject, 20260115, "2026-01-15", "2031-01-15"),
		firstPartySPID: "8c9d0e1f-2a3b-4c4d-8e5f-6a7b8c9d0e63", graphSPID: "9d0e1f2a-3b4c-4d5e-9f6a-7b8c9d0e1f64",
	}
	return &sim.World{Seed: 19, FixedNow: refNow, Tenants: []*sim.Tenant{org.tenant()}}
}

// referenceWorld is a file in configs/sim: its builder and the comment
// the file opens with.
type referenceWorld struct {
	build  func() *sim.World
	header string
}

// referenceWorlds maps each hand-written file in configs/sim to its builder.
var referenceWorlds = map[string]referenceWorld{
	"gcchigh-portal-keys.yaml": {build: gccHighPortalKeysWorld},
	"hcw-worldwide.yaml":       {build: hcwWorldwideWorld, header: hcwWorldHeader},
	"mixed-builds.yaml":        {build: mixedBuildsWorld},
}

// TestReferenceWorldFilesAreCurrent keeps configs/sim's reference worlds
// equal to their builders; HYBRIDFLOW_REGEN_SIM_CONFIGS=1 rewrites them.
func TestReferenceWorldFilesAreCurrent(t *testing.T) {
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(referenceWorlds)) {
		rw := referenceWorlds[name]
		data, err := rw.build().Dump()
		if err != nil {
			t.Fatal(err)
		}
		data = append([]byte(rw.header), data...)
		if _, err := sim.Parse(name, data); err != nil {
			t.Fatalf("%s does not load: %v", name, err)
		}
		path := filepath.Join(root, "configs", "sim", name)
		if os.Getenv("HYBRIDFLOW_REGEN_SIM_CONFIGS") == "1" {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(have, data) {
			t.Errorf("configs/sim/%s differs from its builder (%v); run HYBRIDFLOW_REGEN_SIM_CONFIGS=1 go test ./internal/e2e -run TestReferenceWorldFilesAreCurrent", name, err)
		}
	}
}

// setUpReference sets up every tenant of a reference world on the real dev
// server and worker, fails the test on any pause, and checks what every
// such run must hold: verified in dedicated mode, nothing the product did
// not create lost, no object or key duplicated, no step run twice at once.
// It returns the results by tenant and the world before and after.
func setUpReference(t *testing.T, w *sim.World) (map[string]workflows.SetupResult, *sim.World, *sim.World) {
	t.Helper()
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := e.snapshot()
	runs := map[string]client.WorkflowRun{}
	for _, tn := range before.Tenants {
		runs[tn.ID] = e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{})
	}
	out := map[string]workflows.SetupResult{}
	for _, id := range slices.Sorted(maps.Keys(runs)) {
		res, err := e.resultUnlessPaused(ctx, runs[id])
		logSteps(t, res)
		if err != nil {
			t.Fatalf("%s: setup failed: %v", id, err)
		}
		if res.State != workflows.StateVerified || res.Mode != string(plan.ModeDedicatedApp) {
			t.Errorf("%s: state %s, mode %s; want verified, dedicated-app (%v)", id, res.State, res.Mode, res.Verification)
		}
		out[id] = res
	}
	after := e.snapshot()
	checkNothingLost(t, before, after)
	for _, d := range e2e.NewDuplicates(before, after) {
		t.Errorf("duplicate: %s", d)
	}
	if o := e.overlaps(); len(o) > 0 {
		t.Errorf("steps ran twice at once:\n%s", strings.Join(o, "\n"))
	}
	return out, before, after
}

// TestE2EGCCHighPortalKeys: the GCC High organisation whose keys the
// portal and Microsoft's scripts uploaded (shared/reference/
// graph-entities.tsv, NOTE customKeyIdentifier wire form and portal
// uploads) moves to the dedicated application without a pause, with its
// auth certificate on the application once, and with both Exchange auth
// certificates (the current one and the one of 2023, found by the
// certificate inside the key) taken off the first-party service principal,
// while the other application's key stays with its identifier unchanged.
func TestE2EGCCHighPortalKeys(t *testing.T) {
	w := loadWorld(t, "gcchigh-portal-keys.yaml")
	_, before, after := setUpReference(t, w)
	b, a := tenantOf(t, before, refGCCHighTenant), tenantOf(t, after, refGCCHighTenant)
	foreign := firstPartySP(b).KeyCredentials[2]
	fp := firstPartySP(a)
	if len(fp.KeyCredentials) != 1 || fp.KeyCredentials[0].KeyID != foreign.KeyID || fp.KeyCredentials[0].CustomKeyIdentifier != foreign.CustomKeyIdentifier {
		t.Errorf("first-party keys after setup = %v (identifiers %v); want only the other application's key %s with identifier %q",
			thumbprints(fp.KeyCredentials), identifiers(fp.KeyCredentials), foreign.KeyID, foreign.CustomKeyIdentifier)
	}
	app := dedicatedApp(t, a)
	if tps := thumbprints(app.KeyCredentials); len(tps) != 1 || tps[0] != authCert(t, b).Thumbprint {
		t.Errorf("dedicated application keys = %v; want the current auth certificate %s once", tps, authCert(t, b).Thumbprint)
	}
}

// TestE2EMixedBuildsChooseTheDedicatedApplication: with two Mailbox
// servers on 2019 CU15 with the April 2025 hotfix and one on 2019 CU13,
// setup chooses the dedicated application as Microsoft's script would
// (shared/reference/hybrid-facts.md, "mixed builds"), warns naming the
// CU13 server, and verifies without a pause.
func TestE2EMixedBuildsChooseTheDedicatedApplication(t *testing.T) {
	w := loadWorld(t, "mixed-builds.yaml")
	res, _, _ := setUpReference(t, w)
	r := res[refMixedTenant]
	if !slices.ContainsFunc(r.Warnings, func(s string) bool { return strings.Contains(s, "EXM03") }) {
		t.Errorf("no warning names EXM03, the server on 2019 CU13: %q", r.Warnings)
	}
}

func identifiers(ks []sim.KeyCredential) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.CustomKeyIdentifier)
	}
	return out
}

// dedicatedApp is the tenant's ExchangeServerApp-<organization GUID>.
func dedicatedApp(t *testing.T, tn *sim.Tenant) *sim.Application {
	t.Helper()
	for _, a := range tn.Entra.Applications {
		if a.DisplayName == dedicatedName(tn) {
			return a
		}
	}
	t.Fatalf("%s: no application %s", tn.ID, dedicatedName(tn))
	return nil
}
