package sim

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

// The simulated hosts bind parameters as Microsoft's cmdlet reference says
// the real cmdlets do (internal/exchange/cmdletref, a copy of
// shared/reference/exchange-cmdlets.tsv), before any cmdlet
// implementation runs: each case below is a call the implementation alone
// would have accepted, and a real host refuses. Rows are cited as
// "cmdlet / parameter set / parameter: required, applies_to".

const (
	psNotFound  = "A parameter cannot be found that matches parameter name '%s'."
	psAmbiguous = "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued cannot be used together or an insufficient number of parameters were provided."
)

func TestHostsBindAsDocumented(t *testing.T) {
	evoSTS := onpremCmd("New-AuthServer", "Name", "evoSTS", "Type", "AzureAD", "AuthMetadataUrl", cloud.MustLookup("global").EvoSTSMetadataURL("contoso.onmicrosoft.com"))
	for _, tc := range []struct {
		name  string
		side  Side
		setup []exchange.Command
		cmd   exchange.Command
		msg   string
		// state reads what the refused call must not have changed.
		state func(*Tenant) string
	}{
		{
			// Set-AuthServer / AppSecret / ApplicationIdentifier and
			// Set-AuthServer / AuthMetadataUrl / AuthMetadataUrl: no set has both.
			name: "Set-AuthServer mixing AppSecret and AuthMetadataUrl sets", side: OnPrem, setup: []exchange.Command{evoSTS},
			cmd: onpremCmd("Set-AuthServer", "Identity", "evoSTS", "ApplicationIdentifier", "11111111-2222-3333-4444-555555555555", "AuthMetadataUrl", "https://login.microsoftonline.com/x/federationmetadata/2007-06/federationmetadata.xml"),
			msg: psAmbiguous,
			state: func(ten *Tenant) string {
				a := ten.OnPrem.AuthServers[0]
				return a.ApplicationIdentifier + " " + a.AuthMetadataURL
			},
		},
		{
			// Get-AuthServer / (All): Identity, DomainController; no Confirm
			// (only ShouldProcess cmdlets have it, e.g. Remove-AuthServer /
			// (All) / Confirm).
			name: "Confirm on a Get- cmdlet", side: OnPrem, cmd: onpremCmd("Get-AuthServer", "Confirm", false),
			msg: fmt.Sprintf(psNotFound, "Confirm"),
		},
		{
			// New-SettingOverride / (All) / Reason: required true, on-prem.
			name: "New-SettingOverride without Reason", side: OnPrem,
			cmd: onpremCmd("New-SettingOverride", "Name", "EnableExchangeHybrid3PAppFeature", "Component", "Global", "Section", "ExchangeOnpremAsThirdPartyAppId", "Parameters", []string{"Enabled=true"}),
			msg: "Cannot process command because of one or more missing mandatory parameters: Reason.",
			state: func(ten *Tenant) string {
				return fmt.Sprintf("%d overrides", len(ten.OnPrem.SettingOverrides))
			},
		},
		{
			// Get-Mailbox / ServerSet / Server: applies_to on-prem.
			name: "on-prem-only parameter sent to Exchange Online", side: Online, cmd: onpremCmd("Get-Mailbox", "Server", "EX01"),
			msg: fmt.Sprintf(psNotFound, "Server"),
		},
		{
			// Get-IntraOrganizationConnector / (All) / DomainController: on-prem.
			name: "DomainController sent to Exchange Online", side: Online, cmd: onpremCmd("Get-IntraOrganizationConnector", "DomainController", "dc01.contoso.com"),
			msg: fmt.Sprintf(psNotFound, "DomainController"),
		},
		{
			// Get-CsExternalAccessPolicy / Identity / Tenant: applies_to
			// online (Skype for Business Online only).
			name: "Skype Online parameter sent to Lync Server", side: Lync, cmd: onpremCmd("Get-CsExternalAccessPolicy", "Tenant", "11111111-2222-3333-4444-555555555555"),
			msg: fmt.Sprintf(psNotFound, "Tenant"),
		},
		{
			// Set-CsAccessEdgeConfiguration / Identity / Identity and
			// Set-CsAccessEdgeConfiguration / DnsSrvRouting / UseDnsSrvRouting.
			name: "Set-CsAccessEdgeConfiguration mixing sets", side: Lync, cmd: onpremCmd("Set-CsAccessEdgeConfiguration", "Identity", "Global", "UseDnsSrvRouting", true, "AllowFederatedUsers", true),
			msg: psAmbiguous,
			state: func(ten *Tenant) string {
				return fmt.Sprintf("AllowFederatedUsers=%v", ten.Lync.AllowFederatedUsers)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewShellTestWorld()
			for _, s := range tc.setup {
				if _, err := w.Invoke(tc.side, ShellTestTenant, s); err != nil {
					t.Fatalf("setup %s: %v", s.Cmdlet, err)
				}
			}
			var before string
			if tc.state != nil {
				w.Update(ShellTestTenant, func(ten *Tenant) { before = tc.state(ten) })
			}
			writes := tenantWrites(w)
			_, err := w.Invoke(tc.side, ShellTestTenant, tc.cmd)
			if err == nil {
				t.Fatalf("%s was accepted", tc.cmd.Cmdlet)
			}
			if err.Type != exchange.TypeParameterBinding || err.Message != tc.msg || err.Category != "InvalidArgument" || err.Cmdlet != tc.cmd.Cmdlet {
				t.Fatalf("error %+v, want ParameterBindingException %q", err, tc.msg)
			}
			if got := tenantWrites(w); got != writes {
				t.Fatalf("a refused call counted %d writes", got-writes)
			}
			if tc.state != nil {
				var after string
				w.Update(ShellTestTenant, func(ten *Tenant) { after = tc.state(ten) })
				if after != before {
					t.Fatalf("a refused call changed the world: %q → %q", before, after)
				}
			}
		})
	}
}

// What the hosts add or the product sends as documented binds: common
// parameters on any cmdlet, -Confirm where the cmdlet has it (the
// bootstrap script adds -Confirm:$false there and -ErrorAction Stop
// everywhere), and a cmdlet the table documents no parameter of on a side
// (Get-OrganizationConfig / (All) / DomainController is on-prem only, the
// cmdlet exists online too).
func TestHostsAcceptDocumentedCalls(t *testing.T) {
	w := NewShellTestWorld()
	for _, c := range []struct {
		side Side
		cmd  exchange.Command
	}{
		{OnPrem, onpremCmd("New-AuthServer", "Name", "evoSTS", "Type", "AzureAD", "AuthMetadataUrl", cloud.MustLookup("global").EvoSTSMetadataURL("contoso.onmicrosoft.com"), "ErrorAction", "Stop", "Confirm", false)},
		{OnPrem, onpremCmd("Get-AuthServer", "ErrorAction", "Stop", "WarningAction", "SilentlyContinue", "Verbose", false)},
		{OnPrem, onpremCmd("Remove-AuthServer", "Identity", "evoSTS", "ErrorAction", "Stop", "Confirm", false)},
		{Online, onpremCmd("Get-OrganizationConfig", "ErrorAction", "Stop")},
		{Lync, onpremCmd("Get-CsHostingProvider", "LocalStore", true, "ErrorAction", "Stop")},
	} {
		if _, err := w.Invoke(c.side, ShellTestTenant, c.cmd); err != nil {
			t.Errorf("%s %s: %v", c.side, c.cmd.Cmdlet, err)
		}
	}
}

// Through Exchange Online's InvokeCommand endpoint the refusal arrives as
// Exchange Online reports a cmdlet error: HTTP 400 naming the exception.
// Get-IntraOrganizationConnector / (All) / DomainController: on-prem.
func TestEXORefusesUndocumentedParameter(t *testing.T) {
	srv := exoTestServer(t, onlineTestWorld())
	resp, body := exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "Get-IntraOrganizationConnector", map[string]any{"DomainController": "dc01.contoso.com"}))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if !strings.Contains(msg, "System.Management.Automation.ParameterBindingException|"+fmt.Sprintf(psNotFound, "DomainController")) {
		t.Fatalf("error message %q", msg)
	}
	// The same call without it is served.
	resp, body = exoTestDo(t, srv, exoTestDefaults(onlineTestTenantID, "Get-IntraOrganizationConnector", map[string]any{}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
}

func tenantWrites(w *World) int64 {
	if c := w.Stats().ByTenant[strings.ToLower(ShellTestTenant)]; c != nil {
		return c.Writes
	}
	return 0
}
