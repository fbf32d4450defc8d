// Package cloud holds the per-cloud endpoints and naming rules
// (docs/microsoft-behaviour.md, "Per-cloud endpoints and SPNs").
//
// Everything a step needs to address Microsoft's services for one tenant is
// derived here from the profile and the tenant's initial domain, so the
// activities never spell a host name themselves. Values Microsoft has not
// confirmed are marked Unconfirmed and can be overridden per tenant.
package cloud

import (
	"fmt"
	"sort"
	"strings"
)

// Name identifies a cloud in configuration and search attributes.
type Name string

const (
	Global  Name = "global"
	GCC     Name = "gcc"
	GCCHigh Name = "gcchigh"
	DoD     Name = "dod"
	China   Name = "china" // Microsoft 365 operated by 21Vianet
)

// FirstPartyAppID is the Exchange Online first-party application
// (00000002-0000-0ff1-ce00-000000000000) shared by every tenant.
const FirstPartyAppID = "00000002-0000-0ff1-ce00-000000000000"

// SPNForm says how on-prem host names become service principal names (step 5).
type SPNForm string

const (
	// SPNURL registers https://host/ per host (worldwide and US clouds).
	SPNURL SPNForm = "url"
	// SPNWildcardAuthority registers <appId>/*.<domain> (21Vianet's procedure).
	SPNWildcardAuthority SPNForm = "wildcard-authority"
)

// Profile is one cloud's endpoints and names. Hosts carry no scheme.
type Profile struct {
	Name               Name
	DisplayName        string
	GraphHost          string
	AuthorityHost      string
	ACSName            string
	acsMetadata        string // format with the initial domain
	EvoSTSName         string
	evoSTSMetadata     string // format with the initial domain
	ExchangeOnlineHost string
	RoutingSuffix      string
	InitialSuffix      string
	SPNForm            SPNForm
	LyncProxyFqdn      string
	// Unconfirmed lists the fields (by their inventory override name) whose
	// value for this cloud Microsoft has not published; operators may
	// override them per tenant, and the product warns where it uses one.
	Unconfirmed []string
}

var profiles = map[Name]Profile{
	Global: {
		Name: Global, DisplayName: "Worldwide",
		GraphHost: "graph.microsoft.com", AuthorityHost: "login.microsoftonline.com",
		ACSName: "WindowsAzureACS", acsMetadata: "https://accounts.accesscontrol.windows.net/%s/metadata/json/1",
		EvoSTSName: "evoSTS", evoSTSMetadata: "https://login.windows.net/%s/federationmetadata/2007-06/federationmetadata.xml",
		ExchangeOnlineHost: "outlook.office365.com",
		RoutingSuffix:      "mail.onmicrosoft.com", InitialSuffix: "onmicrosoft.com",
		SPNForm: SPNURL, LyncProxyFqdn: "exap.um.outlook.com",
	},
	GCC: {
		Name: GCC, DisplayName: "GCC",
		GraphHost: "graph.microsoft.com", AuthorityHost: "login.microsoftonline.com",
		ACSName: "WindowsAzureACS", acsMetadata: "https://accounts.accesscontrol.windows.net/%s/metadata/json/1",
		EvoSTSName: "evoSTS", evoSTSMetadata: "https://login.windows.net/%s/federationmetadata/2007-06/federationmetadata.xml",
		ExchangeOnlineHost: "outlook.office365.com",
		RoutingSuffix:      "mail.onmicrosoft.com", InitialSuffix: "onmicrosoft.com",
		SPNForm: SPNURL, LyncProxyFqdn: "exap.um.outlook.com",
		// GCC has no entry of its own in Microsoft's endpoint list: that it
		// uses the worldwide hosts, and the worldwide Lync proxy, is assumed.
		Unconfirmed: []string{"exchange_online_host", "lync_proxy_fqdn"},
	},
	GCCHigh: {
		Name: GCCHigh, DisplayName: "GCC High",
		GraphHost: "graph.microsoft.us", AuthorityHost: "login.microsoftonline.us",
		ACSName: "WindowsAzureACS", acsMetadata: "https://login.microsoftonline.us/%s/metadata/json/1",
		EvoSTSName: "evoSTS", evoSTSMetadata: "https://login.microsoftonline.us/%s/federationmetadata/2007-06/federationmetadata.xml",
		ExchangeOnlineHost: "outlook.office365.us",
		RoutingSuffix:      "mail.onmicrosoft.us", InitialSuffix: "onmicrosoft.us",
		SPNForm: SPNURL, LyncProxyFqdn: "exap.um.office365.us",
		Unconfirmed: []string{"lync_proxy_fqdn"},
	},
	DoD: {
		Name: DoD, DisplayName: "DoD",
		GraphHost: "dod-graph.microsoft.us", AuthorityHost: "login.microsoftonline.us",
		ACSName: "WindowsAzureACS", acsMetadata: "https://login.microsoftonline.us/%s/metadata/json/1",
		EvoSTSName: "evoSTS", evoSTSMetadata: "https://login.microsoftonline.us/%s/federationmetadata/2007-06/federationmetadata.xml",
		ExchangeOnlineHost: "outlook-dod.office365.us",
		RoutingSuffix:      "mail.onmicrosoft.us", InitialSuffix: "onmicrosoft.us",
		SPNForm: SPNURL, LyncProxyFqdn: "exap.um.office365.us",
		Unconfirmed: []string{"lync_proxy_fqdn"},
	},
	China: {
		Name: China, DisplayName: "Microsoft 365 operated by 21Vianet",
		GraphHost: "microsoftgraph.chinacloudapi.cn", AuthorityHost: "login.chinacloudapi.cn",
		ACSName: "MicrosoftAzureACS", acsMetadata: "https://accounts.accesscontrol.chinacloudapi.cn/%s/metadata/json/1",
		EvoSTSName: "EvoSTS", evoSTSMetadata: "https://login.chinacloudapi.cn/%s/federationmetadata/2007-06/federationmetadata.xml",
		ExchangeOnlineHost: "partner.outlook.cn",
		RoutingSuffix:      "partner.mail.onmschina.cn", InitialSuffix: "partner.onmschina.cn",
		SPNForm: SPNWildcardAuthority, LyncProxyFqdn: "exap.um.partner.outlook.cn",
	},
}

var aliases = map[string]Name{"21vianet": China, "worldwide": Global, "gcc-high": GCCHigh}

// Names lists the canonical cloud names, sorted.
func Names() []string {
	out := make([]string, 0, len(profiles))
	for n := range profiles {
		out = append(out, string(n))
	}
	sort.Strings(out)
	return out
}

// Lookup returns the profile for a cloud name or alias (case-insensitive).
func Lookup(name string) (Profile, error) {
	n := Name(strings.ToLower(strings.TrimSpace(name)))
	if a, ok := aliases[string(n)]; ok {
		n = a
	}
	p, ok := profiles[n]
	if !ok {
		return Profile{}, fmt.Errorf("unknown cloud %q (valid: %s)", name, strings.Join(Names(), ", "))
	}
	return p, nil
}

// MustLookup is Lookup for names already validated by configuration.
func MustLookup(name string) Profile {
	p, err := Lookup(name)
	if err != nil {
		panic(err)
	}
	return p
}

// ACSMetadataURL is the metadata URL of the ACS auth server (step 1).
func (p Profile) ACSMetadataURL(initialDomain string) string {
	return fmt.Sprintf(p.acsMetadata, strings.ToLower(initialDomain))
}

// EvoSTSMetadataURL is the metadata URL of the evoSTS (AzureAD) auth server (step 1).
func (p Profile) EvoSTSMetadataURL(initialDomain string) string {
	return fmt.Sprintf(p.evoSTSMetadata, strings.ToLower(initialDomain))
}

// GraphBaseURL is the Graph v1.0 root for this cloud.
func (p Profile) GraphBaseURL() string { return "https://" + p.GraphHost + "/v1.0" }

// GraphScope is the OAuth scope for app-only Graph tokens.
func (p Profile) GraphScope() string { return "https://" + p.GraphHost + "/.default" }

// AuthorityURL is the Entra authority root (azidentity's AuthorityHost).
func (p Profile) AuthorityURL() string { return "https://" + p.AuthorityHost + "/" }

// EWSURL is Exchange Online's EWS endpoint, the target of on-prem → cloud verification.
func (p Profile) EWSURL() string {
	return "https://" + p.ExchangeOnlineHost + "/ews/exchange.asmx"
}

// AutodiscoverURL is Exchange Online's autodiscover endpoint, the discovery
// endpoint of the on-prem → cloud IntraOrganizationConnector (step 6).
func (p Profile) AutodiscoverURL() string {
	return "https://" + p.ExchangeOnlineHost + "/autodiscover/autodiscover.svc"
}

// ExchangeOnlineScope is the OAuth scope for the InvokeCommand REST endpoint.
func (p Profile) ExchangeOnlineScope() string { return "https://" + p.ExchangeOnlineHost + "/.default" }

// RoutingDomain is the default hybrid routing domain for a tenant whose
// initial domain is <name>.<InitialSuffix>.
func (p Profile) RoutingDomain(initialDomain string) string {
	d := strings.ToLower(initialDomain)
	name := strings.TrimSuffix(d, "."+p.InitialSuffix)
	return name + "." + p.RoutingSuffix
}

// IsRoutingDomain reports whether a domain ends in this cloud's routing suffix.
func (p Profile) IsRoutingDomain(domain string) bool {
	return strings.HasSuffix(strings.ToLower(domain), "."+p.RoutingSuffix)
}

// IsInitialDomain reports whether a domain is a tenant initial (MOERA) domain
// of this cloud and not its routing domain.
func (p Profile) IsInitialDomain(domain string) bool {
	d := strings.ToLower(domain)
	return strings.HasSuffix(d, "."+p.InitialSuffix) && !p.IsRoutingDomain(d)
}

// autodiscoverSecureHosts is Microsoft's AutoDiscover "secure" host per
// cloud, the host the Hybrid Configuration Wizard writes into the on-prem
// IntraOrganizationConnector (worldwide: autodiscover-s.outlook.com). GCC
// has no entry of its own in Microsoft's endpoint list and uses the
// worldwide one. Outside the worldwide cloud these are Microsoft's
// published AutoDiscover hosts; that the wizard writes them there is
// unconfirmed, so they are only ever recognised, never written.
var autodiscoverSecureHosts = map[Name]string{
	Global:  "autodiscover-s.outlook.com",
	GCC:     "autodiscover-s.outlook.com",
	GCCHigh: "autodiscover-s.office365.us",
	DoD:     "autodiscover-s-dod.office365.us",
	China:   "autodiscover-s.partner.outlook.cn",
}

// MicrosoftDiscoveryEndpoints lists the Exchange Online autodiscover
// endpoints Microsoft itself puts in an on-prem → Exchange Online
// IntraOrganizationConnector for this cloud: the one the manual procedure
// names (AutodiscoverURL, on the Exchange Online host) and the one the
// Hybrid Configuration Wizard uses (the AutoDiscover secure host). A
// connector pointing at any of them was built by Microsoft's tools or
// documents and can be adopted as it is. The first entry is the one
// hybridflow writes when it creates a connector.
func (p Profile) MicrosoftDiscoveryEndpoints() []string {
	out := []string{p.AutodiscoverURL()}
	if h := autodiscoverSecureHosts[p.Name]; h != "" {
		if u := "https://" + h + "/autodiscover/autodiscover.svc"; !strings.EqualFold(u, out[0]) {
			out = append(out, u)
		}
	}
	return out
}
