package sim

import (
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// TestIOCCmdletsAgreeAcrossSides: New-/Set-IntraOrganizationConnector
// take the same parameters on Exchange Server and Exchange Online
// (shared/reference/exchange-cmdlets.tsv rows New-/Set-
// IntraOrganizationConnector, DiscoveryEndpoint of type Uri and
// TargetAddressDomains a MultiValuedProperty of SMTP domains), so both
// sides of the simulator refuse and accept the same calls.
func TestIOCCmdletsAgreeAcrossSides(t *testing.T) {
	cases := []struct {
		name     string
		cmdlet   string
		params   map[string]any
		wantType string
	}{
		{"an endpoint that is not http(s)", "New-IntraOrganizationConnector",
			map[string]any{"Name": "X", "DiscoveryEndpoint": "ftp://autodiscover.contoso.com/x", "TargetAddressDomains": "contoso.com"}, exchange.TypeParameterBinding},
		{"a domain with a backslash", "New-IntraOrganizationConnector",
			map[string]any{"Name": "X", "DiscoveryEndpoint": "https://autodiscover.contoso.com/x", "TargetAddressDomains": `contoso\com.example`}, exchange.TypeParameterBinding},
		{"an empty identity", "Set-IntraOrganizationConnector",
			map[string]any{"Identity": "  ", "Enabled": false}, exchange.TypeParameterBinding},
		{"a documented parameter the simulator does not implement", "Set-IntraOrganizationConnector",
			map[string]any{"Identity": "Existing", "TargetSharingEpr": "https://x.contoso.com/ews"}, exchange.TypeParameterBinding},
		{"a good create", "New-IntraOrganizationConnector",
			map[string]any{"Name": "X", "DiscoveryEndpoint": "https://autodiscover.contoso.com/x", "TargetAddressDomains": []any{"Contoso.com", "contoso.com"}}, ""},
	}
	for _, side := range []Side{OnPrem, Online} {
		for _, tc := range cases {
			t.Run(string(side)+"/"+tc.name, func(t *testing.T) {
				w := onlineTestWorld()
				tn := w.Tenants[0]
				tn.OnPrem.IntraOrganizationConnectors = []*IntraOrgConnector{{
					Name: "Existing", DiscoveryEndpoint: "https://autodiscover.fabrikam.com/autodiscover/autodiscover.svc",
					TargetAddressDomains: []string{"fabrikam.com"}, Enabled: true,
				}}
				_, _, err := w.InvokeWithWarnings(side, onlineTestTenantID, exchange.Command{Cmdlet: tc.cmdlet, Parameters: tc.params})
				if tc.wantType == "" {
					if err != nil {
						t.Fatal(err)
					}
					org := &tn.OnPrem
					if side == Online {
						org = &tn.Online
					}
					if got := org.IntraOrganizationConnectors[1].TargetAddressDomains; len(got) != 1 || got[0] != "contoso.com" {
						t.Errorf("domains stored as %v, want [contoso.com]", got)
					}
					return
				}
				if !exchange.HasType(err, tc.wantType) {
					t.Fatalf("want %s, got %v", exchange.ShortType(tc.wantType), err)
				}
			})
		}
	}
}
