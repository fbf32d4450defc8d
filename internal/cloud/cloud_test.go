package cloud

import (
	"reflect"
	"testing"
)

// TestProfilesMatchFacts compares every generated name and URL for a sample
// tenant with the per-cloud table of docs/microsoft-behaviour.md, written out literally so that a change to a
// profile has to be a deliberate change to this table too.
func TestProfilesMatchFacts(t *testing.T) {
	type want struct {
		graph, authority, acsName, acsURL, evoName, evoURL, ews, autodiscover, routing, initialSuffix, lync string
		spnForm                                                                                             SPNForm
	}
	cases := map[string]struct {
		initial string
		want    want
	}{
		"global": {"contoso.onmicrosoft.com", want{
			"graph.microsoft.com", "login.microsoftonline.com",
			"WindowsAzureACS", "https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1",
			"evoSTS", "https://login.windows.net/contoso.onmicrosoft.com/federationmetadata/2007-06/federationmetadata.xml",
			"https://outlook.office365.com/ews/exchange.asmx", "https://outlook.office365.com/autodiscover/autodiscover.svc",
			"contoso.mail.onmicrosoft.com", "onmicrosoft.com", "exap.um.outlook.com", SPNURL}},
		"gcc": {"contoso.onmicrosoft.com", want{
			"graph.microsoft.com", "login.microsoftonline.com",
			"WindowsAzureACS", "https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1",
			"evoSTS", "https://login.windows.net/contoso.onmicrosoft.com/federationmetadata/2007-06/federationmetadata.xml",
			"https://outlook.office365.com/ews/exchange.asmx", "https://outlook.office365.com/autodiscover/autodiscover.svc",
			"contoso.mail.onmicrosoft.com", "onmicrosoft.com", "exap.um.outlook.com", SPNURL}},
		"gcchigh": {"contoso.onmicrosoft.us", want{
			"graph.microsoft.us", "login.microsoftonline.us",
			"WindowsAzureACS", "https://login.microsoftonline.us/contoso.onmicrosoft.us/metadata/json/1",
			"evoSTS", "https://login.microsoftonline.us/contoso.onmicrosoft.us/federationmetadata/2007-06/federationmetadata.xml",
			"https://outlook.office365.us/ews/exchange.asmx", "https://outlook.office365.us/autodiscover/autodiscover.svc",
			"contoso.mail.onmicrosoft.us", "onmicrosoft.us", "exap.um.office365.us", SPNURL}},
		"dod": {"contoso.onmicrosoft.us", want{
			"dod-graph.microsoft.us", "login.microsoftonline.us",
			"WindowsAzureACS", "https://login.microsoftonline.us/contoso.onmicrosoft.us/metadata/json/1",
			"evoSTS", "https://login.microsoftonline.us/contoso.onmicrosoft.us/federationmetadata/2007-06/federationmetadata.xml",
			"https://outlook-dod.office365.us/ews/exchange.asmx", "https://outlook-dod.office365.us/autodiscover/autodiscover.svc",
			"contoso.mail.onmicrosoft.us", "onmicrosoft.us", "exap.um.office365.us", SPNURL}},
		"21vianet": {"contoso.partner.onmschina.cn", want{
			"microsoftgraph.chinacloudapi.cn", "login.chinacloudapi.cn",
			"MicrosoftAzureACS", "https://accounts.accesscontrol.chinacloudapi.cn/contoso.partner.onmschina.cn/metadata/json/1",
			"EvoSTS", "https://login.chinacloudapi.cn/contoso.partner.onmschina.cn/federationmetadata/2007-06/federationmetadata.xml",
			"https://partner.outlook.cn/ews/exchange.asmx", "https://partner.outlook.cn/autodiscover/autodiscover.svc",
			"contoso.partner.mail.onmschina.cn", "partner.onmschina.cn", "exap.um.partner.outlook.cn", SPNWildcardAuthority}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			got := want{p.GraphHost, p.AuthorityHost, p.ACSName, p.ACSMetadataURL(c.initial), p.EvoSTSName, p.EvoSTSMetadataURL(c.initial),
				p.EWSURL(), p.AutodiscoverURL(), p.RoutingDomain(c.initial), p.InitialSuffix, p.LyncProxyFqdn, p.SPNForm}
			if got != c.want {
				t.Errorf("profile %s:\n got %+v\nwant %+v", name, got, c.want)
			}
			if !p.IsRoutingDomain(c.want.routing) || p.IsInitialDomain(c.want.routing) || !p.IsInitialDomain(c.initial) {
				t.Errorf("domain classification wrong for %s", name)
			}
		})
	}
}

func TestSPNForms(t *testing.T) {
	hosts := []string{"mail.contoso.com", "autodiscover.contoso.com", "MAIL.contoso.com", "owa.fabrikam.net"}
	g := MustLookup("global").SPNsForHosts(hosts)
	if want := []string{"https://autodiscover.contoso.com/", "https://mail.contoso.com/", "https://owa.fabrikam.net/"}; !reflect.DeepEqual(g, want) {
		t.Errorf("global SPNs = %v, want %v", g, want)
	}
	c := MustLookup("china").SPNsForHosts(hosts)
	if want := []string{FirstPartyAppID + "/*.contoso.com", FirstPartyAppID + "/*.fabrikam.net"}; !reflect.DeepEqual(c, want) {
		t.Errorf("china SPNs = %v, want %v", c, want)
	}
	for _, tc := range []struct {
		spn, host string
		ok        bool
	}{
		{"https://mail.contoso.com/", "mail.contoso.com", true},
		{"https://mail.contoso.com/", "autodiscover.contoso.com", false},
		{FirstPartyAppID + "/*.contoso.com", "mail.contoso.com", true},
		{FirstPartyAppID + "/*.contoso.com", "mail.fabrikam.com", false},
	} {
		if got := SPNCovers(tc.spn, tc.host); got != tc.ok {
			t.Errorf("SPNCovers(%q,%q)=%v want %v", tc.spn, tc.host, got, tc.ok)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	if _, err := Lookup("mars"); err == nil {
		t.Fatal("want error for unknown cloud")
	}
	if p, err := Lookup("21Vianet"); err != nil || p.Name != China {
		t.Fatalf("alias: %v %v", p.Name, err)
	}
}

// TestMicrosoftDiscoveryEndpoints pins the endpoints of the on-prem →
// Exchange Online connector per cloud to shared/reference/hybrid-facts.md
// (a) "Intra-organization connectors" and (d) "AutoDiscover secure host":
// the manual procedure's Exchange Online host first, then the Hybrid
// Configuration Wizard's autodiscover-s host.
func TestMicrosoftDiscoveryEndpoints(t *testing.T) {
	want := map[Name][]string{
		Global:  {"https://outlook.office365.com/autodiscover/autodiscover.svc", "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc"},
		GCC:     {"https://outlook.office365.com/autodiscover/autodiscover.svc", "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc"},
		GCCHigh: {"https://outlook.office365.us/autodiscover/autodiscover.svc", "https://autodiscover-s.office365.us/autodiscover/autodiscover.svc"},
		DoD:     {MustLookup("dod").AutodiscoverURL(), "https://autodiscover-s-dod.office365.us/autodiscover/autodiscover.svc"},
		China:   {"https://partner.outlook.cn/autodiscover/autodiscover.svc", "https://autodiscover-s.partner.outlook.cn/autodiscover/autodiscover.svc"},
	}
	for _, n := range Names() {
		got := MustLookup(n).MicrosoftDiscoveryEndpoints()
		if !reflect.DeepEqual(got, want[Name(n)]) {
			t.Errorf("%s: %q, want %q", n, got, want[Name(n)])
		}
	}
	// A tenant's Exchange Online host override moves the first entry only.
	p := MustLookup("dod")
	p.ExchangeOnlineHost = "outlook.example.us"
	if got := p.MicrosoftDiscoveryEndpoints(); got[0] != "https://outlook.example.us/autodiscover/autodiscover.svc" || len(got) != 2 {
		t.Errorf("override: %q", got)
	}
}
