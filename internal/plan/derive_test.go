package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestOnlineIOCTargets: step 7's target domains never include the initial
// or routing domain (or any other Microsoft-owned one), whether they come
// from discovery or from the inventory.
func TestOnlineIOCTargets(t *testing.T) {
	cases := []struct {
		name     string
		cloud    string
		accepted []AcceptedDomain
		override []string
		want     []string
		warn     string
	}{
		{"discovered, default first", "global", []AcceptedDomain{
			{DomainName: "fabrikam.com"}, {DomainName: "contoso.onmicrosoft.com"}, {DomainName: "Contoso.com.", Default: true},
			{DomainName: "contoso.mail.onmicrosoft.com"}, {DomainName: "contoso2.onmicrosoft.com"}, {DomainName: "fabrikam.com"},
		}, nil, []string{"contoso.com", "fabrikam.com"}, ""},
		{"inventory list filtered too", "global", nil,
			[]string{"contoso.com", "CONTOSO.mail.onmicrosoft.com", "contoso.onmicrosoft.com", "tailspin.com"},
			[]string{"contoso.com", "tailspin.com"}, "Microsoft-owned"},
		{"21Vianet suffixes", "china", []AcceptedDomain{
			{DomainName: "contoso.partner.onmschina.cn"}, {DomainName: "contoso.partner.mail.onmschina.cn"}, {DomainName: "contoso.cn", Default: true},
		}, nil, []string{"contoso.cn"}, ""},
		{"wildcard accepted domain left out", "global", []AcceptedDomain{{DomainName: "contoso.com", Default: true}, {DomainName: "*.contoso.com"}},
			nil, []string{"contoso.com"}, "wildcard"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso(c.cloud)
			w.t.SMTPDomains = c.override
			if c.accepted != nil {
				w.o.AcceptedDomains = c.accepted
			}
			w.t.RoutingDomain = w.p.RoutingDomain(w.t.InitialDomain)
			// Configured domains must be verified in Entra.
			w.o.TenantDomains = append(w.o.TenantDomains, "tailspin.com", w.t.RoutingDomain)
			d, warn := mustDerive(t, w)
			if !slices.Equal(d.OnlineIOC.TargetAddressDomains, c.want) || !slices.Equal(d.SMTPDomains, c.want) {
				t.Errorf("targets %v, want %v", d.OnlineIOC.TargetAddressDomains, c.want)
			}
			if c.warn != "" && !slices.ContainsFunc(warn, func(s string) bool { return strings.Contains(s, c.warn) }) {
				t.Errorf("warnings %q should mention %q", warn, c.warn)
			}
			for _, dom := range d.OnlineIOC.TargetAddressDomains {
				if dom == d.InitialDomain || dom == d.RoutingDomain {
					t.Errorf("%s must not be a target", dom)
				}
			}
		})
	}
}

func TestRoutingDomain(t *testing.T) {
	cases := []struct {
		name     string
		accepted []string
		override string
		want     string
		err      string
	}{
		{"the one accepted domain with the suffix", []string{"contoso.com", "contoso.mail.onmicrosoft.com"}, "", "contoso.mail.onmicrosoft.com", ""},
		{"several: the one named after the initial domain", []string{"contoso.com", "other.mail.onmicrosoft.com", "CONTOSO.mail.onmicrosoft.com"}, "", "contoso.mail.onmicrosoft.com", ""},
		{"several, none named after the initial domain", []string{"contoso.com", "a.mail.onmicrosoft.com", "b.mail.onmicrosoft.com"}, "", "", "several accepted domains"},
		{"none", []string{"contoso.com"}, "", "", "set routing_domain (usually contoso.mail.onmicrosoft.com)"},
		{"override wins", []string{"contoso.com", "contoso.mail.onmicrosoft.com"}, "Hybrid.mail.onmicrosoft.com", "hybrid.mail.onmicrosoft.com", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso("global")
			w.o.AcceptedDomains = nil
			for _, a := range c.accepted {
				w.o.AcceptedDomains = append(w.o.AcceptedDomains, AcceptedDomain{DomainName: a})
			}
			w.t.RoutingDomain = c.override
			w.o.TenantDomains = append(w.o.TenantDomains, "hybrid.mail.onmicrosoft.com")
			d, _, err := Derive(w.t, w.p, w.o)
			if c.err != "" {
				if !errors.Is(err, ErrMissingInput) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || d.RoutingDomain != c.want || !slices.Equal(d.OnPremIOC.TargetAddressDomains, []string{c.want}) || d.Availability.ForestName != c.want {
				t.Fatalf("routing %q (%v), want %q", d.RoutingDomain, err, c.want)
			}
		})
	}
}

func TestDeriveErrors(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*world)
		is      error
		mention []string
	}{
		{"no SMTP domain left", func(w *world) {
			w.o.AcceptedDomains = []AcceptedDomain{{DomainName: "contoso.onmicrosoft.com"}, {DomainName: "contoso.mail.onmicrosoft.com"}}
		}, ErrMissingInput, []string{"smtp_domains"}},
		{"no virtual directory URLs", func(w *world) { w.o.VirtualDirectories = nil }, ErrMissingInput, []string{"spn_hosts", "onprem_ews_external_url"}},
		{"no external EWS URL", func(w *world) {
			for i := range w.o.VirtualDirectories {
				if w.o.VirtualDirectories[i].Kind == VDirWebServices {
					w.o.VirtualDirectories[i].ExternalURL = ""
				}
			}
		}, ErrMissingInput, []string{"onprem_ews_external_url"}},
		{"no current auth certificate", func(w *world) { w.o.AuthConfig.CurrentThumbprint = "" }, ErrAuthCertificate, []string{"no current certificate"}},
		{"current thumbprint not 40 hex digits", func(w *world) { w.o.AuthConfig.CurrentThumbprint = "ABC'; Remove-Item" }, ErrAuthCertificate, []string{"CurrentCertificateThumbprint", "40 hex digits"}},
		{"current thumbprint too short", func(w *world) { w.o.AuthConfig.CurrentThumbprint = w.o.AuthConfig.CurrentThumbprint[:39] }, ErrAuthCertificate, []string{"CurrentCertificateThumbprint"}},
		{"auth certificate not in the store", func(w *world) { w.o.Certificates = w.o.Certificates[1:] }, ErrAuthCertificate, []string{"not in the Exchange certificate store"}},
		{"auth certificate without DER", func(w *world) { w.o.Certificates[0].DER = nil }, ErrAuthCertificate, []string{"without its public certificate bytes"}},
		{"auth certificate expired", func(w *world) { w.o.At = date(2030, 6, 2) }, ErrAuthCertificate, []string{"expired on 2030-06-01", "emergency"}},
		{"unreadable version", func(w *world) { w.o.Servers[1].Version = "Exchange 2019 CU15" }, ErrMissingInput, []string{"EX02 reports version \"Exchange 2019 CU15\""}},
		{"dedicated without organization GUID", func(w *world) { w.o.OrganizationGUID = "" }, ErrMissingInput, []string{"organization_guid"}},
		{"no first-party service principal", func(w *world) { w.o.FirstPartySP.ID = "" }, ErrMissingInput, []string{"first-party service principal"}},
		{"explicit dedicated on old servers", func(w *world) {
			w.t.ModeSetting = "dedicated-app"
			w.o.Servers[0].Version, w.o.Servers[1].Version = "15.2.1544.4", "15.1.2507.40"
		}, ErrUnsupportedVersion, []string{"EX01 runs 15.2.1544.4 (Exchange 2019)", "EX02 runs 15.1.2507.40 (Exchange 2016)"}},
		{"worldwide, no server can use the dedicated application", func(w *world) {
			w.o.Servers[0].Version, w.o.Servers[1].Version = "15.2.1544.4", "15.1.2507.40"
		}, ErrLegacyPathBlocked, []string{"EX01 runs 15.2.1544.4", "15.2.1544.25", "EX02 runs 15.1.2507.40", "15.1.2507.55", "Worldwide", "31 October 2025"}},
		{"worldwide, legacy asked for", func(w *world) { w.t.ModeSetting = "legacy-first-party" }, ErrLegacyPathBlocked, []string{"mode legacy-first-party is set"}},
		{"override of a documented path", func(w *world) {
			open := false
			w.t.LegacyFirstPartyBlocked = &open
		}, ErrInvalidSetting, []string{LegacyPathOverrideField}},
		{"unknown mode", func(w *world) { w.t.ModeSetting = "hybrid" }, ErrInvalidSetting, []string{"\"hybrid\""}},
		{"cloud mismatch", func(w *world) { w.t.Cloud = "china" }, ErrInvalidSetting, []string{"does not match"}},
		{"no initial domain", func(w *world) { w.t.InitialDomain = "" }, ErrMissingInput, []string{"initial_domain"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso("global")
			c.change(&w)
			_, _, err := Derive(w.t, w.p, w.o)
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q should mention %q", err, m)
				}
			}
		})
	}
}

func TestDeriveOverrides(t *testing.T) {
	w := contoso("global")
	w.t = TenantFacts{
		ID: strings.ToUpper(tenantID), Cloud: "worldwide", InitialDomain: "Contoso.onmicrosoft.com",
		RoutingDomain: "contoso.mail.onmicrosoft.com", SMTPDomains: []string{"tailspin.com"}, ModeSetting: "auto",
		OrganizationGUID: "AAAA0000-0000-0000-0000-000000000000", ExchangeOnlineHost: "outlook.example.test",
		OnPremAutodiscoverURL: "https://ad.tailspin.com/autodiscover/autodiscover.svc", OnPremEWSExternalURL: "https://ews.tailspin.com/EWS/Exchange.asmx",
		SPNHosts: []string{"ews.tailspin.com", "EWS.tailspin.com.", "ad.tailspin.com"}, OnPremMailbox: "ops@tailspin.com", CloudMailbox: "ops-cloud@tailspin.com",
	}
	w.o.TenantDomains = append(w.o.TenantDomains, "Tailspin.com", "contoso.mail.onmicrosoft.com")
	d, _ := mustDerive(t, w)
	checks := map[string][2]string{
		"tenant":          {d.TenantID, tenantID},
		"app name":        {d.DedicatedAppName, "ExchangeServerApp-aaaa0000-0000-0000-0000-000000000000"},
		"on-prem IOC":     {d.OnPremIOC.DiscoveryEndpoint, "https://outlook.example.test/autodiscover/autodiscover.svc"},
		"online IOC":      {d.OnlineIOC.DiscoveryEndpoint, "https://ad.tailspin.com/autodiscover/autodiscover.svc"},
		"EWS":             {d.OnPremEWSURL, "https://ews.tailspin.com/EWS/Exchange.asmx"},
		"verify cloud":    {d.VerifyCloudTarget, "https://outlook.example.test/ews/exchange.asmx"},
		"verify on-prem":  {d.VerifyOnPremTarget, "https://ews.tailspin.com/metadata/json/1"},
		"on-prem mailbox": {d.OnPremMailbox, "ops@tailspin.com"},
		"cloud mailbox":   {d.CloudMailbox, "ops-cloud@tailspin.com"},
		"ACS URL":         {d.ACS.MetadataURL, "https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
	if want := []string{"https://ad.tailspin.com/", "https://ews.tailspin.com/"}; !slices.Equal(d.SPNs, want) {
		t.Errorf("SPNs %v, want %v", d.SPNs, want)
	}
}

func TestDeriveDiscovery(t *testing.T) {
	t.Run("SPN hosts from every URL of the four virtual directories", func(t *testing.T) {
		d, _ := mustDerive(t, contoso("global"))
		if want := []string{"https://ex01.contoso.local/", "https://ex02.contoso.local/", "https://mail.contoso.com/"}; !slices.Equal(d.SPNs, want) {
			t.Errorf("SPNs %v, want %v (OWA's host must not appear)", d.SPNs, want)
		}
	})
	t.Run("autodiscover from the virtual directory's external host", func(t *testing.T) {
		w := contoso("global")
		for i := range w.o.VirtualDirectories {
			if w.o.VirtualDirectories[i].Kind == VDirAutodiscover {
				w.o.VirtualDirectories[i].ExternalURL = "https://Autodiscover.Contoso.com/Autodiscover/Autodiscover.xml"
			}
		}
		d, _ := mustDerive(t, w)
		if d.OnPremAutodiscoverURL != "https://autodiscover.contoso.com/autodiscover/autodiscover.svc" {
			t.Errorf("autodiscover %s", d.OnPremAutodiscoverURL)
		}
	})
	t.Run("several external EWS URLs warn", func(t *testing.T) {
		w := contoso("global")
		w.o.VirtualDirectories[1].ExternalURL = "https://mail2.contoso.com/EWS/Exchange.asmx"
		d, warn := mustDerive(t, w)
		if d.OnPremEWSURL != "https://mail.contoso.com/EWS/Exchange.asmx" || len(warn) != 1 || !strings.Contains(warn[0], "several external EWS URLs") {
			t.Errorf("EWS %s, warnings %q", d.OnPremEWSURL, warn)
		}
	})
	t.Run("next certificate missing from the store warns", func(t *testing.T) {
		w := contoso("global")
		w.o.AuthConfig.NextThumbprint = tpNext
		d, warn := mustDerive(t, w)
		if len(d.Keys) != 1 || len(warn) != 1 || !strings.Contains(warn[0], "not in the certificate store") {
			t.Errorf("keys %d, warnings %q", len(d.Keys), warn)
		}
	})
	t.Run("next thumbprint that is not 40 hex digits warns", func(t *testing.T) {
		w := contoso("global")
		w.o.AuthConfig.NextThumbprint = "NEXT$(whoami)"
		d, warn := mustDerive(t, w)
		if len(d.Keys) != 1 || len(warn) != 1 || !strings.Contains(warn[0], "NextCertificateThumbprint") || !strings.Contains(warn[0], "40 hex digits") {
			t.Errorf("keys %d, warnings %q", len(d.Keys), warn)
		}
	})
	t.Run("uploaded keys carry what Graph needs", func(t *testing.T) {
		d, _ := mustDerive(t, contoso("global"))
		k := d.Keys[0]
		if k.Thumbprint != tpCur || k.Type != KeyTypeX509 || k.Usage != KeyUsageVerify || !k.End.Equal(date(2030, 6, 1)) ||
			len(k.DisplayName) > maxDisplayName || string(k.DER) != string(derCur) {
			t.Errorf("key %+v", k)
		}
	})
	// shared/reference/hybrid-facts.md (b) "Set-AuthServer": with no ACS
	// server listing domains, accepted ∩ tenant domains minus the initial
	// domain, and a stop when that is empty.
	t.Run("no tenant domains and no ACS domains: a clear error", func(t *testing.T) {
		w := contoso("global")
		w.o.TenantDomains = nil
		_, _, err := Derive(w.t, w.p, w.o)
		if !errors.Is(err, ErrMissingInput) || !strings.Contains(err.Error(), "evoSTS auth server's DomainName cannot be chosen") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("evoSTS domains: accepted and tenant domains without the initial one", func(t *testing.T) {
		w := contoso("global")
		w.o.TenantDomains = append(w.o.TenantDomains, "contoso.mail.onmicrosoft.com", "cloudonly.example")
		d, _ := mustDerive(t, w)
		if want := []string{"contoso.com", "fabrikam.com", "contoso.mail.onmicrosoft.com"}; !slices.Equal(d.AuthServerDomains, want) {
			t.Errorf("domains %v, want %v", d.AuthServerDomains, want)
		}
	})
	t.Run("evoSTS domains: copied from the one ACS server that lists some", func(t *testing.T) {
		w := contoso("global")
		w.o.TenantDomains = nil // not needed when the ACS server decides
		w.o.AuthServers = []AuthServer{
			{Name: "ACS - 1", Type: "MicrosoftACS", Realm: tenantID, Enabled: true, DomainName: []string{"contoso.com", "contoso.mail.onmicrosoft.com"}},
			// Another tenant's ACS server does not count.
			{Name: "ACS - 2", Type: "MicrosoftACS", Realm: "0f0f0f0f-0000-4000-8000-000000000000", Enabled: true, DomainName: []string{"other.example"}},
		}
		d, _, err := Derive(w.t, w.p, w.o)
		if err != nil || !slices.Equal(d.AuthServerDomains, []string{"contoso.com", "contoso.mail.onmicrosoft.com"}) {
			t.Errorf("domains %v, err %v", d.AuthServerDomains, err)
		}
		// A disabled one, or one without domains, does not decide.
		w.o.AuthServers[0].Enabled = false
		w.o.TenantDomains = []string{"contoso.com", "contoso.onmicrosoft.com"}
		if d, _ := mustDerive(t, w); !slices.Equal(d.AuthServerDomains, []string{"contoso.com"}) {
			t.Errorf("disabled ACS: domains %v", d.AuthServerDomains)
		}
	})
	t.Run("errors are reported together", func(t *testing.T) {
		w := contoso("global")
		w.o.VirtualDirectories = nil
		w.o.AuthConfig.CurrentThumbprint = ""
		_, _, err := Derive(w.t, w.p, w.o)
		if !errors.Is(err, ErrMissingInput) || !errors.Is(err, ErrAuthCertificate) {
			t.Errorf("want both errors joined, got %v", err)
		}
	})
}

// TestForeignDomainsRefused: every domain the inventory sets must be a
// verified domain of the tenant in Entra; otherwise the plan fails before
// any write with ErrForeignDomain naming the inventory field. Discovered
// domains and Microsoft-owned names that step 7 drops anyway are not
// judged, and a tenant whose Entra lists no domain is warned about.
func TestForeignDomainsRefused(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*world)
		field   string // "" = no error
		mention string
	}{
		{"discovered domains only", func(*world) {}, "", ""},
		{"configured and verified, any case", func(w *world) {
			w.t.RoutingDomain = "CONTOSO.mail.onmicrosoft.com."
			w.t.SMTPDomains = []string{"Fabrikam.com"}
			w.o.TenantDomains = append(w.o.TenantDomains, "contoso.mail.onmicrosoft.com")
		}, "", ""},
		{"routing domain of another tenant", func(w *world) { w.t.RoutingDomain = "fourthcoffee.mail.onmicrosoft.com" }, "routing_domain", `"fourthcoffee.mail.onmicrosoft.com"`},
		{"SMTP domain typo", func(w *world) { w.t.SMTPDomains = []string{"contoso.com", "fabrikan.com"} }, "smtp_domains", `"fabrikan.com"`},
		{"initial domain not the tenant's", func(w *world) {
			w.t.InitialDomain = "fourthcoffee.onmicrosoft.com"
			w.o.AcceptedDomains = append(w.o.AcceptedDomains, AcceptedDomain{DomainName: "fourthcoffee.mail.onmicrosoft.com"})
		}, "initial_domain", `"fourthcoffee.onmicrosoft.com"`},
		{"Microsoft-owned SMTP entry is dropped, not judged", func(w *world) {
			w.t.SMTPDomains = []string{"contoso.com", "other.onmicrosoft.com"}
		}, "", ""},
		{"unverified domain is not enough", func(w *world) {
			w.t.SMTPDomains = []string{"tailspin.com"}
			w.o.AcceptedDomains = append(w.o.AcceptedDomains, AcceptedDomain{DomainName: "tailspin.com"})
		}, "smtp_domains", `"tailspin.com"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso("global")
			c.change(&w)
			_, _, err := Derive(w.t, w.p, w.o)
			if c.field == "" {
				if err != nil {
					t.Fatalf("Derive: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrForeignDomain) || !strings.Contains(err.Error(), c.field+" "+c.mention) || !strings.Contains(err.Error(), "contoso.com") {
				t.Fatalf("err %v, want ErrForeignDomain naming %s %s and the verified domains", err, c.field, c.mention)
			}
		})
	}
	t.Run("no Entra domains: warned, not refused", func(t *testing.T) {
		// Legacy mode (so no dedicated-app domain rule applies), in a cloud
		// where the first-party path is open.
		w := contoso("gcchigh")
		w.t.ModeSetting = "legacy-first-party"
		w.t.SMTPDomains = []string{"tailspin.com"}
		w.o.TenantDomains = nil
		_, warn := mustDerive(t, w)
		if !slices.ContainsFunc(warn, func(s string) bool { return strings.Contains(s, "could not be checked") }) {
			t.Fatalf("warnings %q", warn)
		}
	})
}
