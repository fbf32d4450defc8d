package cloud

import (
	"reflect"
	"slices"
	"testing"
)

// Test21VianetSPNsApexAndWildcard follows shared/reference/hybrid-facts.md
// (f), rows "SPN form", "wildcard" and "apex not covered": 21Vianet
// registers <app id>/<authority>; *.contoso.com covers mail.contoso.com and
// autodiscover.contoso.com but not contoso.com, which, when servers are
// reached at the bare domain, is registered too.
func Test21VianetSPNsApexAndWildcard(t *testing.T) {
	cn := MustLookup("china")
	fp := FirstPartyAppID + "/"
	domains := []string{"contoso.com", "Fabrikam.CN.", "*.wild.com"}
	for _, c := range []struct {
		name  string
		hosts []string
		want  []string
	}{
		{"hosts under a registered domain share its wildcard",
			[]string{"mail.contoso.com", "autodiscover.contoso.com"}, []string{fp + "*.contoso.com"}},
		{"the bare registered domain gets its own authority beside the wildcard",
			[]string{"mail.contoso.com", "contoso.com", "autodiscover.contoso.com"}, []string{fp + "*.contoso.com", fp + "contoso.com"}},
		{"the bare domain alone needs no wildcard",
			[]string{"CONTOSO.com."}, []string{fp + "contoso.com"}},
		{"a deeper host gets the wildcard of its own parent",
			[]string{"mail.eu.contoso.com"}, []string{fp + "*.eu.contoso.com"}},
		{"registered domains compare without case or trailing dot",
			[]string{"fabrikam.cn", "mail.fabrikam.cn"}, []string{fp + "*.fabrikam.cn", fp + "fabrikam.cn"}},
		{"no wildcard under a domain the organisation has not registered",
			[]string{"owa.example.co.uk", "example.co.uk"}, []string{fp + "example.co.uk", fp + "owa.example.co.uk"}},
		{"a wildcard accepted domain registers nothing by itself",
			[]string{"mail.wild.com"}, []string{fp + "mail.wild.com"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cn.SPNsForDomainHosts(c.hosts, domains)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("SPNs for %q = %q, want %q", c.hosts, got, c.want)
			}
			// Whatever is registered must authorise every host, as the
			// service checks it.
			for _, h := range c.hosts {
				h = normHost(h)
				if !slices.ContainsFunc(got, func(s string) bool { return SPNCovers(s, h) }) {
					t.Errorf("no SPN in %q covers %s", got, h)
				}
			}
		})
	}
	// Without the registered domains: a two-label host is a bare domain,
	// never *.com.
	if got := cn.SPNsForHosts([]string{"contoso.com", "mail.contoso.com"}); !reflect.DeepEqual(got, []string{fp + "*.contoso.com", fp + "contoso.com"}) {
		t.Errorf("without domains: %q", got)
	}
	// The wildcard never authorises the bare domain.
	if SPNCovers(fp+"*.contoso.com", "contoso.com") || !SPNCovers(fp+"contoso.com", "contoso.com") || SPNCovers(fp+"contoso.com", "mail.contoso.com") {
		t.Error("SPNCovers: a wildcard covers its apex, or an exact authority covers another host")
	}
	// Other clouds keep one https://host/ per host, registered domains or not.
	if got := MustLookup("gcchigh").SPNsForDomainHosts([]string{"contoso.com", "mail.contoso.com"}, domains); !reflect.DeepEqual(got, []string{"https://contoso.com/", "https://mail.contoso.com/"}) {
		t.Errorf("gcchigh: %q", got)
	}
}

// TestUnconfirmedPerCloud follows shared/reference/hybrid-facts.md (d)
// (Get-CloudServiceEndpoint: DoD's Exchange Online endpoint is
// outlook-dod.office365.us, GCC High's outlook.office365.us; GCC has no
// entry of its own) and (e) row "ProxyFqdn per cloud" (worldwide and
// 21Vianet documented; GCC High / DoD unconfirmed).
func TestUnconfirmedPerCloud(t *testing.T) {
	want := map[Name][]string{
		Global:  nil,
		GCC:     {"exchange_online_host", "lync_proxy_fqdn"},
		GCCHigh: {"lync_proxy_fqdn"},
		DoD:     {"lync_proxy_fqdn"},
		China:   nil,
	}
	for _, n := range Names() {
		p := MustLookup(n)
		if got := p.Unconfirmed; !slices.Equal(got, want[p.Name]) {
			t.Errorf("%s: unconfirmed %q, want %q", n, got, want[p.Name])
		}
	}
	for n, host := range map[string]string{"dod": "outlook-dod.office365.us", "gcchigh": "outlook.office365.us"} {
		if p := MustLookup(n); p.ExchangeOnlineHost != host {
			t.Errorf("%s: Exchange Online host %s, want %s", n, p.ExchangeOnlineHost, host)
		}
	}
}
