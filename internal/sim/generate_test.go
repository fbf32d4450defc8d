package sim

import (
	"bytes"
	"crypto/x509"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
)

func dumpTenants(t *testing.T, ts []*Tenant) []byte {
	t.Helper()
	w := &World{Tenants: ts}
	out, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	spec := GenerateSpec{Tenants: 12, Clouds: []string{"global", "china"}, ForeignKeys: 0.5, ExpiredKeys: 0.5, HalfConfigured: 0.5, HCWNames: 0.3}
	a, err := GenerateTenants(spec, 9, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Parallel generation must not make the result depend on scheduling.
	prev := runtime.GOMAXPROCS(1)
	b, err := GenerateTenants(spec, 9, time.Time{})
	runtime.GOMAXPROCS(prev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dumpTenants(t, a), dumpTenants(t, b)) {
		t.Fatal("same spec and seed gave different tenants")
	}
	c, _ := GenerateTenants(spec, 10, time.Time{})
	if a[0].ID == c[0].ID || a[0].OnPrem.Certificates[0].Thumbprint == c[0].OnPrem.Certificates[0].Thumbprint {
		t.Fatal("another seed gave the same tenants")
	}
	// No wall clock: a zero now means the fixed generation epoch.
	if nb := a[0].OnPrem.Certificates[0].NotBefore; !nb.Equal(time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("auth certificate starts %v", nb)
	}
	pinned, _ := GenerateTenants(spec, 9, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if nb := pinned[0].OnPrem.Certificates[0].NotBefore; nb.Year() != 2028 {
		t.Fatalf("with a pinned clock the certificate starts %v", nb)
	}
}

func TestGenerateVariationCounts(t *testing.T) {
	cases := []struct {
		name string
		spec GenerateSpec
		// count of tenants with the variation, per variation
		want map[string]int
	}{
		{"none", GenerateSpec{Tenants: 20}, map[string]int{"legacy": 0, "old": 0, "foreign": 0, "expired": 0, "half": 0, "hcw": 0}},
		{"fractions are exact counts", GenerateSpec{Tenants: 20, LegacyServers: 0.05, OldBuilds: 0.25, ForeignKeys: 0.5, ExpiredKeys: 0.1, HalfConfigured: 0.2, HCWNames: 0.15},
			map[string]int{"legacy": 1, "old": 5, "foreign": 10, "expired": 2, "half": 4, "hcw": 3}},
		{"a small fraction still gives one", GenerateSpec{Tenants: 20, OldBuilds: 0.001}, map[string]int{"old": 1}},
		{"everyone", GenerateSpec{Tenants: 7, LegacyServers: 1, OldBuilds: 1, ForeignKeys: 1, ExpiredKeys: 1, HCWNames: 1},
			map[string]int{"legacy": 7, "old": 7, "foreign": 7, "expired": 7, "hcw": 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := GenerateTenants(tc.spec, 1, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, tn := range ts {
				v := observedVariations(tn)
				for k, on := range v {
					if on {
						got[k]++
					}
				}
			}
			for k, n := range tc.want {
				if got[k] != n {
					t.Errorf("%s: %d tenants, want %d (all: %v)", k, got[k], n, got)
				}
			}
		})
	}
}

// TestGenerateOldBuildsPerCloud: old builds take every server below the
// April 2025 hotfix only where Exchange Online still accepts the shared
// first-party path; in the worldwide cloud, GCC and 21Vianet, where it is
// blocked (shared/reference/hybrid-facts.md (b) "after 31 Oct 2025"), such
// an organisation could only pause, so the variation is mixed builds
// there: one server updated (hybrid-facts.md (b) "mixed builds").
func TestGenerateOldBuildsPerCloud(t *testing.T) {
	clouds := []string{"global", "gcc", "gcchigh", "dod", "china"}
	ts, err := GenerateTenants(GenerateSpec{Tenants: len(clouds), OldBuilds: 1, Clouds: clouds}, 3, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range ts {
		old := 0
		for _, s := range tn.OnPrem.Servers {
			if s.Version == GenOldBuild {
				old++
			}
		}
		want := 2
		if tn.Cloud == "global" || tn.Cloud == "gcc" || tn.Cloud == "china" {
			want = 1
		}
		if old != want || len(tn.OnPrem.Servers) != 2 {
			t.Errorf("%s: %d of %d servers on the old build, want %d", tn.Cloud, old, len(tn.OnPrem.Servers), want)
		}
	}
}

// observedVariations reads the variations back from a tenant's state.
func observedVariations(tn *Tenant) map[string]bool {
	v := map[string]bool{}
	for _, s := range tn.OnPrem.Servers {
		v["legacy"] = v["legacy"] || s.Version == GenLegacyBuild
		v["old"] = v["old"] || s.Version == GenOldBuild
	}
	for _, k := range tn.Entra.ServicePrincipals[0].KeyCredentials {
		if k.EndDateTime.Before(generateEpoch) {
			v["expired"] = true
		} else {
			v["foreign"] = true
		}
	}
	v["hcw"] = len(tn.OnPrem.AuthServers) > 0 && strings.HasPrefix(tn.OnPrem.AuthServers[0].Name, "ACS - ")
	v["half"] = tn.OnPrem.PartnerApplications[0].Enabled || len(tn.OnPrem.IntraOrganizationConnectors) > 0 ||
		len(tn.Entra.ServicePrincipals[0].ServicePrincipalNames) > 3
	return v
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestGeneratedTenantShape(t *testing.T) {
	clouds := []string{"global", "gcc", "gcchigh", "dod", "china"}
	ts, err := GenerateTenants(GenerateSpec{Tenants: 10, Prefix: "acme", Sites: 3, Clouds: clouds, HalfConfigured: 1, HCWNames: 0.3}, 5, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i, tn := range ts {
		p := cloud.MustLookup(clouds[i%5])
		n := i + 1
		smtp := "acme" + strconv.Itoa(n) + ".example.com"
		if tn.Cloud != string(p.Name) || tn.InitialDomain != "acme"+strconv.Itoa(n)+"."+p.InitialSuffix || tn.Site != "site-"+strconv.Itoa(i%3+1) {
			t.Fatalf("tenant %d: cloud %s, initial %s, site %s", n, tn.Cloud, tn.InitialDomain, tn.Site)
		}
		for _, id := range []string{tn.ID, tn.OnPrem.OrganizationGUID, tn.Online.OrganizationGUID, tn.Entra.ServicePrincipals[0].ID} {
			if !guidRE.MatchString(id) || ids[id] {
				t.Fatalf("tenant %d: id %q is not a fresh v4 GUID", n, id)
			}
			ids[id] = true
		}
		routing := p.RoutingDomain(tn.InitialDomain)
		if !hasAccepted(tn.OnPrem.AcceptedDomains, routing) || !hasAccepted(tn.OnPrem.AcceptedDomains, smtp) {
			t.Fatalf("tenant %d: on-prem accepted domains %v", n, tn.OnPrem.AcceptedDomains)
		}
		exo := tn.Entra.ServicePrincipals[0]
		if exo.AppID != cloud.FirstPartyAppID || exo.AppRoles[0].ID != genRoleFullAccessAsApp || exo.AppRoles[0].Value != "full_access_as_app" {
			t.Fatalf("tenant %d: first-party SP %+v", n, exo)
		}
		pa := tn.OnPrem.PartnerApplications[0]
		if pa.ApplicationIdentifier != cloud.FirstPartyAppID || pa.Realm != "" {
			t.Fatalf("tenant %d: partner application %+v", n, pa)
		}
		cert := tn.OnPrem.Certificates[0]
		if tn.OnPrem.AuthConfig.CurrentCertificateThumbprint != cert.Thumbprint || cert.Thumbprint != certs.Thumbprint(cert.DER) {
			t.Fatalf("tenant %d: auth config does not point at the certificate", n)
		}
		x, err := x509.ParseCertificate(cert.DER)
		if err != nil || x.NotAfter.Sub(x.NotBefore) < 5*365*24*time.Hour || x.Subject.CommonName != AuthCertificateSubject {
			t.Fatalf("tenant %d: auth certificate %v %v", n, x, err)
		}
		if tn.OnPrem.Mailboxes[0] != "admin@"+smtp || tn.Online.Mailboxes[0] != "admin@"+tn.InitialDomain {
			t.Fatalf("tenant %d: mailboxes %v %v", n, tn.OnPrem.Mailboxes, tn.Online.Mailboxes)
		}
		var ews bool
		for _, vd := range tn.OnPrem.VirtualDirectories {
			if vd.Kind == "WebServices" && vd.ExternalURL == "https://mail."+smtp+"/EWS/Exchange.asmx" && strings.HasSuffix(vd.InternalURL, "."+smtp+"/EWS/Exchange.asmx") {
				ews = true
			}
		}
		if !ews {
			t.Fatalf("tenant %d: no EWS virtual directory", n)
		}
		for _, as := range tn.OnPrem.AuthServers {
			switch as.Type {
			case "MicrosoftACS":
				if as.AuthMetadataURL != p.ACSMetadataURL(tn.InitialDomain) {
					t.Fatalf("tenant %d: ACS metadata %s", n, as.AuthMetadataURL)
				}
			case "AzureAD":
				if as.AuthMetadataURL != p.EvoSTSMetadataURL(tn.InitialDomain) {
					t.Fatalf("tenant %d: evoSTS metadata %s", n, as.AuthMetadataURL)
				}
			default:
				t.Fatalf("tenant %d: auth server type %s", n, as.Type)
			}
			if hcw := strings.HasPrefix(as.Name, "ACS - ") || strings.HasPrefix(as.Name, "EvoSts - "); hcw && !strings.HasSuffix(as.Name, tn.ID) {
				t.Fatalf("tenant %d: HCW name %s", n, as.Name)
			}
		}
		// SPNs stay unique in the tenant, as Entra requires.
		seen := map[string]bool{}
		for _, sp := range tn.Entra.ServicePrincipals {
			for _, s := range sp.ServicePrincipalNames {
				if seen[strings.ToLower(s)] {
					t.Fatalf("tenant %d: SPN %s twice", n, s)
				}
				seen[strings.ToLower(s)] = true
			}
		}
	}
}

func hasAccepted(ds []AcceptedDomain, name string) bool {
	for _, d := range ds {
		if d.DomainName == name {
			return true
		}
	}
	return false
}
