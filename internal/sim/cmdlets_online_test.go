package sim

import (
	"reflect"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

const onlineTestTenantID = "0a1b2c3d-0000-4000-8000-00000000cafe"

// onlineTestWorld has one global tenant with an on-prem organisation to
// describe and one existing cloud → on-prem connector.
func onlineTestWorld() *World {
	return &World{Tenants: []*Tenant{{
		ID: onlineTestTenantID, DisplayName: "Contoso", Cloud: "global", InitialDomain: "contoso.onmicrosoft.com",
		Entra: Entra{Domains: []Domain{
			{ID: "contoso.onmicrosoft.com", IsInitial: true, IsVerified: true},
			{ID: "contoso.mail.onmicrosoft.com", IsVerified: true},
			{ID: "contoso.com", IsVerified: true, IsDefault: true},
			{ID: "unverified.example", IsVerified: false},
		}},
		Online: ExchangeOrg{
			OrganizationGUID: "11111111-2222-3333-4444-555555555555",
			IntraOrganizationConnectors: []*IntraOrgConnector{{
				Name: "Existing", DiscoveryEndpoint: "https://autodiscover.fabrikam.com/autodiscover/autodiscover.svc",
				TargetAddressDomains: []string{"fabrikam.com"}, Enabled: true,
			}},
		},
		OnPrem: ExchangeOrg{
			AcceptedDomains: []AcceptedDomain{{DomainName: "contoso.com", Default: true}, {DomainName: "tailspintoys.com"}, {DomainName: "contoso.mail.onmicrosoft.com"}},
			VirtualDirectories: []VirtualDirectory{
				{Kind: "WebServices", Server: "EX1", ExternalURL: "https://mail.contoso.com/EWS/Exchange.asmx"},
			},
		},
		Behaviour: Behaviour{PropagationChecks: 3},
	}}}
}

func onlineRun(w *World, cmdlet string, params map[string]any) ([]exchange.Row, []string, *exchange.Error) {
	return w.InvokeWithWarnings(Online, onlineTestTenantID, exchange.Command{Cmdlet: cmdlet, Parameters: params})
}

func TestOnlineIntraOrganizationConnector(t *testing.T) {
	newIOC := func(name string, domains ...any) map[string]any {
		return map[string]any{"Name": name, "DiscoveryEndpoint": "https://autodiscover.contoso.com/autodiscover/autodiscover.svc", "TargetAddressDomains": domains}
	}
	cases := []struct {
		name     string
		cmdlet   string
		params   map[string]any
		wantType string // "" = success
		wantRows int
		warns    int
		writes   bool
		check    func(t *testing.T, org *ExchangeOrg)
	}{
		{name: "new", cmdlet: "New-IntraOrganizationConnector", params: newIOC("ExchangeHybridOnlineToOnPremises", "contoso.com", "TailspinToys.com"),
			wantRows: 1, writes: true, check: func(t *testing.T, org *ExchangeOrg) {
				got := org.IntraOrganizationConnectors[1]
				if got.CreatedBy != "client" || !got.Enabled || !reflect.DeepEqual(got.TargetAddressDomains, []string{"contoso.com", "tailspintoys.com"}) {
					t.Errorf("created %+v", got)
				}
			}},
		{name: "new disabled", cmdlet: "New-IntraOrganizationConnector", params: func() map[string]any {
			p := newIOC("X", "contoso.com")
			p["Enabled"] = false
			return p
		}(), wantRows: 1, writes: true, check: func(t *testing.T, org *ExchangeOrg) {
			if org.IntraOrganizationConnectors[1].Enabled {
				t.Error("-Enabled $false ignored")
			}
		}},
		{name: "new duplicate name", cmdlet: "New-IntraOrganizationConnector", params: newIOC("EXISTING", "contoso.com"), wantType: exchange.TypeAlreadyExists},
		{name: "new domain already routed", cmdlet: "New-IntraOrganizationConnector", params: newIOC("Other", "contoso.com", "Fabrikam.COM"), wantType: exchange.TypeDuplicateIOCDomain},
		{name: "new without domains", cmdlet: "New-IntraOrganizationConnector", params: newIOC("Other"), wantType: exchange.TypeParameterBinding},
		{name: "new with a bad domain", cmdlet: "New-IntraOrganizationConnector", params: newIOC("Other", "user@contoso.com"), wantType: exchange.TypeParameterBinding},
		{name: "new with a relative endpoint", cmdlet: "New-IntraOrganizationConnector", params: map[string]any{"Name": "Other", "DiscoveryEndpoint": "/autodiscover", "TargetAddressDomains": "contoso.com"}, wantType: exchange.TypeParameterBinding},
		{name: "get all", cmdlet: "Get-IntraOrganizationConnector", wantRows: 1},
		{name: "get by identity", cmdlet: "Get-IntraOrganizationConnector", params: map[string]any{"Identity": "existing"}, wantRows: 1},
		{name: "get missing", cmdlet: "Get-IntraOrganizationConnector", params: map[string]any{"Identity": "nope"}, wantType: exchange.TypeNotFound},
		{name: "set endpoint", cmdlet: "Set-IntraOrganizationConnector", params: map[string]any{"Identity": "Existing", "DiscoveryEndpoint": "https://ad.fabrikam.com/autodiscover/autodiscover.svc"},
			writes: true, check: func(t *testing.T, org *ExchangeOrg) {
				if org.IntraOrganizationConnectors[0].DiscoveryEndpoint != "https://ad.fabrikam.com/autodiscover/autodiscover.svc" {
					t.Error("endpoint not changed")
				}
			}},
		{name: "set own domains again in another case is a no-op", cmdlet: "Set-IntraOrganizationConnector", params: map[string]any{"Identity": "Existing", "TargetAddressDomains": []any{"FABRIKAM.com"}, "Enabled": true}, warns: 1},
		{name: "set missing", cmdlet: "Set-IntraOrganizationConnector", params: map[string]any{"Identity": "nope", "Enabled": false}, wantType: exchange.TypeNotFound},
		{name: "remove", cmdlet: "Remove-IntraOrganizationConnector", params: map[string]any{"Identity": "EXISTING", "Confirm": false}, writes: true,
			check: func(t *testing.T, org *ExchangeOrg) {
				if len(org.IntraOrganizationConnectors) != 0 {
					t.Error("not removed")
				}
			}},
		{name: "remove missing", cmdlet: "Remove-IntraOrganizationConnector", params: map[string]any{"Identity": "nope"}, wantType: exchange.TypeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := onlineTestWorld()
			rows, warns, err := onlineRun(w, tc.cmdlet, tc.params)
			if tc.wantType != "" {
				if !exchange.HasType(err, tc.wantType) {
					t.Fatalf("want %s, got %v", exchange.ShortType(tc.wantType), err)
				}
				if err.Cmdlet == "" {
					t.Error("error does not name its cmdlet")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.wantRows || len(warns) != tc.warns {
				t.Errorf("rows %d warnings %v, want %d rows %d warnings", len(rows), warns, tc.wantRows, tc.warns)
			}
			tn := w.Tenants[0]
			wrote := w.Stats().ByTenant[onlineTestTenantID] != nil && w.Stats().ByTenant[onlineTestTenantID].Writes > 0
			if wrote != tc.writes || (tn.Behaviour.PendingPropagation == 3) != tc.writes {
				t.Errorf("write recorded %v (pending %d), want %v", wrote, tn.Behaviour.PendingPropagation, tc.writes)
			}
			if tc.check != nil {
				tc.check(t, &tn.Online)
			}
		})
	}
}

func TestOnlineSetIOCDomainConflict(t *testing.T) {
	w := onlineTestWorld()
	if _, _, err := onlineRun(w, "New-IntraOrganizationConnector", map[string]any{"Name": "Second", "DiscoveryEndpoint": "https://a.contoso.com/x", "TargetAddressDomains": "contoso.com"}); err != nil {
		t.Fatal(err)
	}
	_, _, err := onlineRun(w, "Set-IntraOrganizationConnector", map[string]any{"Identity": "Second", "TargetAddressDomains": []any{"contoso.com", "fabrikam.com"}})
	if !exchange.HasType(err, exchange.TypeDuplicateIOCDomain) {
		t.Fatalf("want DuplicateIntraOrganizationConnectorDomainException, got %v", err)
	}
	if got := w.Tenants[0].Online.IntraOrganizationConnectors[1].TargetAddressDomains; !reflect.DeepEqual(got, []string{"contoso.com"}) {
		t.Fatalf("a refused Set must change nothing, domains now %v", got)
	}
}

func TestOnlineDiscoveryCmdlets(t *testing.T) {
	w := onlineTestWorld()
	rows, _, err := onlineRun(w, "Get-OrganizationConfig", nil)
	if err != nil || len(rows) != 1 || rows[0]["Guid"] != "11111111-2222-3333-4444-555555555555" || rows[0]["Name"] != "contoso.onmicrosoft.com" {
		t.Fatalf("Get-OrganizationConfig = %v, %v", rows, err)
	}

	rows, _, err = onlineRun(w, "Get-AcceptedDomain", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	initial := map[string]bool{}
	for _, r := range rows {
		names = append(names, r["DomainName"].(string))
		initial[r["DomainName"].(string)] = r["InitialDomain"].(bool)
	}
	if want := []string{"contoso.onmicrosoft.com", "contoso.mail.onmicrosoft.com", "contoso.com"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("accepted domains %v, want the verified Entra domains %v", names, want)
	}
	if !initial["contoso.onmicrosoft.com"] || initial["contoso.mail.onmicrosoft.com"] {
		t.Fatalf("InitialDomain flags wrong: %v", initial)
	}
	if _, _, err := onlineRun(w, "Get-AcceptedDomain", map[string]any{"Identity": "nope.example"}); !exchange.IsNotFound(err) {
		t.Fatalf("want not found, got %v", err)
	}

	rows, _, err = onlineRun(w, "Get-IntraOrganizationConfiguration", nil)
	if err != nil || len(rows) != 1 {
		t.Fatalf("Get-IntraOrganizationConfiguration = %v, %v", rows, err)
	}
	want := exchange.Row{
		"OnlineDiscoveryEndpoint":     "https://outlook.office365.com/autodiscover/autodiscover.svc",
		"OnlineTargetAddress":         "contoso.mail.onmicrosoft.com",
		"OnPremiseDiscoveryEndpoint":  "https://mail.contoso.com/autodiscover/autodiscover.svc",
		"OnPremiseWebServiceEndpoint": "https://mail.contoso.com/EWS/Exchange.asmx",
		"OnPremiseTargetAddresses":    []string{"contoso.com", "tailspintoys.com"},
	}
	if !reflect.DeepEqual(rows[0], want) {
		t.Fatalf("got  %v\nwant %v", rows[0], want)
	}
}
