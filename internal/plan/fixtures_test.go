package plan

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
)

// A Contoso organisation in the shapes discovery returns, fresh (nothing
// configured yet) unless a test changes it.

const (
	tenantID = "6a1c3d5e-0f2b-4c7d-9e8f-1a2b3c4d5e6f"
	orgGUID  = "b7e1c9a0-3d4f-4e5a-8b6c-7d8e9f0a1b2c"
	appID    = "0e4d2c1b-aaaa-4bbb-8ccc-123456789abc"
	fpApp    = cloud.FirstPartyAppID
)

var (
	derCur     = []byte("contoso auth certificate 2025")
	derNext    = []byte("contoso auth certificate 2026")
	derPrev    = []byte("contoso auth certificate 2020")
	derForeign = []byte("a partner's certificate")
	derSSL     = []byte("mail.contoso.com TLS certificate")
	tpCur      = certs.Thumbprint(derCur)
	tpNext     = certs.Thumbprint(derNext)
	tpPrev     = certs.Thumbprint(derPrev)
	tpForeign  = certs.Thumbprint(derForeign)
)

type world struct {
	t TenantFacts
	p cloud.Profile
	o Observed
}

func contoso(cloudName string) world {
	p := cloud.MustLookup(cloudName)
	initial := "contoso." + p.InitialSuffix
	w := world{
		t: TenantFacts{ID: tenantID, Cloud: cloudName, InitialDomain: initial},
		p: p,
	}
	authSubject := "CN=Microsoft Exchange Server Auth Certificate"
	w.o = Observed{
		At:               genNow,
		OrganizationGUID: orgGUID,
		Servers: []ExchangeServer{
			{Name: "EX01", Version: "15.2.2562.17", Roles: "Mailbox"},
			{Name: "EX02", Version: "Version 15.2 (Build 1748.24)", Roles: "Mailbox"},
			// An Edge server below every minimum must not decide the mode.
			{Name: "EDGE01", Version: "15.2.1544.14", Roles: "Edge"},
		},
		AcceptedDomains: []AcceptedDomain{
			{DomainName: initial},
			{DomainName: "contoso.com", Default: true},
			{DomainName: "fabrikam.com"},
			{DomainName: p.RoutingDomain(initial)},
		},
		VirtualDirectories: []VirtualDirectory{
			{Kind: VDirWebServices, Server: "EX01", InternalURL: "https://ex01.contoso.local/EWS/Exchange.asmx", ExternalURL: "https://mail.contoso.com/EWS/Exchange.asmx"},
			{Kind: VDirWebServices, Server: "EX02", InternalURL: "https://ex02.contoso.local/EWS/Exchange.asmx", ExternalURL: "https://mail.contoso.com/ews/exchange.asmx"},
			{Kind: VDirMapi, Server: "EX01", InternalURL: "https://ex01.contoso.local/mapi", ExternalURL: "https://mail.contoso.com/mapi"},
			{Kind: VDirOAB, Server: "EX01", InternalURL: "https://ex01.contoso.local/OAB", ExternalURL: "https://mail.contoso.com/OAB"},
			{Kind: VDirAutodiscover, Server: "EX01"},
			{Kind: "Owa", Server: "EX01", ExternalURL: "https://webmail.contoso.com/owa"}, // not an SPN source
		},
		PartnerApp: PartnerApp{Found: true, Name: "Exchange Online", Enabled: false},
		AuthConfig: AuthConfig{CurrentThumbprint: tpCur},
		Certificates: []Certificate{
			{Thumbprint: tpCur, Subject: authSubject, NotBefore: date(2025, 6, 1), NotAfter: date(2030, 6, 1), DER: derCur},
			{Thumbprint: certs.Thumbprint(derSSL), Subject: "CN=mail.contoso.com", NotBefore: date(2025, 1, 1), NotAfter: date(2027, 1, 1), DER: derSSL},
		},
		OnPremMailboxes: []string{"alice@contoso.com", "bob@contoso.com"},
		CloudMailboxes:  []string{"carol@contoso.com"},
		FirstPartySP: ServicePrincipal{
			ID:   "sp-exo",
			Keys: []Key{{KeyID: "partner", DER: derForeign, End: date(2028, 1, 1), Type: KeyTypeX509, Usage: KeyUsageVerify}},
			SPNs: []string{fpApp, fpApp + "/outlook.office365.com", fpApp + "/outlook.com"},
		},
		TenantDomains: []string{"contoso.com", "fabrikam.com", initial},
	}
	return w
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func mustDerive(t *testing.T, w world) (Desired, []string) {
	t.Helper()
	d, warn, err := Derive(w.t, w.p, w.o)
	if err != nil {
		t.Fatalf("Derive: %v", err)
	}
	return d, warn
}

// apply is what a perfect set of activities would leave behind after
// running a plan: it exists to prove that a second plan writes nothing.
// It deliberately works from Desired alone, not from the plan's actions.
func apply(d Desired, o Observed) Observed {
	o.AuthServers = slices.Clone(o.AuthServers)
	for _, spec := range []AuthServerSpec{d.ACS, d.EvoSTS} {
		if !slices.ContainsFunc(o.AuthServers, func(s AuthServer) bool {
			return strings.EqualFold(s.Type, spec.Type) && sameURL(s.MetadataURL, spec.MetadataURL) && s.Enabled
		}) {
			o.AuthServers = append(o.AuthServers, AuthServer{Name: spec.Name, Type: spec.Type, MetadataURL: spec.MetadataURL, Enabled: true})
		}
	}
	o.PartnerApp = PartnerApp{Found: true, Name: "Exchange Online", Enabled: true}
	o.FirstPartySP.SPNs = UnionSPNs(o.FirstPartySP.SPNs, d.SPNs).SPNs
	o.OnPremIOCs = applyIOC(o.OnPremIOCs, d.OnPremIOC)
	o.OnlineIOCs = applyIOC(o.OnlineIOCs, d.OnlineIOC)
	if d.Availability.Needed {
		o.AvailabilitySpaces = []AvailabilitySpace{{ForestName: d.Availability.ForestName, AccessMethod: "InternalProxy", ProxyURL: d.Availability.ProxyURL}}
	}
	switch d.Mode {
	case ModeLegacyFirstParty:
		o.FirstPartySP.Keys = MergeKeys(o.FirstPartySP.Keys, d.Keys, genNow, MergeOptions{}).Keys
	case ModeDedicatedApp:
		o.DedicatedApp = Application{Exists: true, ID: "app-object", AppID: appID, HasFullAccessAsApp: true,
			Keys: MergeKeys(o.DedicatedApp.Keys, d.Keys, genNow, MergeOptions{}).Keys}
		o.DedicatedSP = DedicatedSP{Exists: true, ID: "sp-app"}
		o.ConsentGranted = true
		for i, s := range o.AuthServers {
			if strings.EqualFold(s.Type, AuthServerTypeAzureAD) && sameURL(s.MetadataURL, d.EvoSTS.MetadataURL) {
				o.AuthServers[i].ApplicationIdentifier = appID
				o.AuthServers[i].DomainName = unionFold(s.DomainName, d.AuthServerDomains)
			}
		}
		if !slices.ContainsFunc(o.SettingOverrides, func(s SettingOverride) bool { return strings.EqualFold(s.Section, OverrideSection) }) {
			o.SettingOverrides = append(o.SettingOverrides, SettingOverride{Name: OverrideName, Component: OverrideComponent, Section: OverrideSection, Parameters: []string{OverrideParameter}})
		}
		if r := RemoveKeys(o.FirstPartySP.Keys, d.LegacyThumbprints, genNow); r.Changed {
			o.FirstPartySP.Keys = r.Keys
		}
	}
	return o
}

func applyIOC(list []IOC, spec IOCSpec) []IOC {
	list = slices.Clone(list)
	for i, c := range list {
		if strings.EqualFold(c.Name, spec.Name) || (sameURL(c.DiscoveryEndpoint, spec.DiscoveryEndpoint) && len(intersectFold(c.TargetAddressDomains, spec.TargetAddressDomains)) > 0) {
			list[i].DiscoveryEndpoint = spec.DiscoveryEndpoint
			list[i].TargetAddressDomains = unionFold(c.TargetAddressDomains, spec.TargetAddressDomains)
			list[i].Enabled = true
			return list
		}
	}
	return append(list, IOC{Name: spec.Name, DiscoveryEndpoint: spec.DiscoveryEndpoint, TargetAddressDomains: spec.TargetAddressDomains, Enabled: true})
}

func byStep(actions []Action) map[Step]Action {
	m := map[Step]Action{}
	for _, a := range actions {
		m[a.Step] = a
	}
	return m
}

func changes(actions []Action) map[Step]Change {
	m := map[Step]Change{}
	for _, a := range actions {
		m[a.Step] = a.Change
	}
	return m
}
