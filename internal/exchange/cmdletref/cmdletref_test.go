package cmdletref

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// The embedded table must be the reference copied whole: same header, same
// rows, in the same order (the repository's copy only adds a header
// comment naming its source). When the shared reference is present (it is
// on the machines this project is developed on, not on a clean clone), the
// copy is compared with it.
func TestEmbeddedTableIsTheReference(t *testing.T) {
	ref, err := os.ReadFile("../../../../shared/reference/exchange-cmdlets.tsv")
	if err != nil {
		t.Skipf("shared reference not present (%v); the embedded copy stands on its own", err)
	}
	var own []string
	for _, l := range strings.Split(string(tableTSV), "\n") {
		own = append(own, l)
	}
	// The copy is the reference preceded by comment lines.
	refLines := strings.Split(string(ref), "\n")
	if len(own) < len(refLines) || !slices.Equal(own[len(own)-len(refLines):], refLines) {
		t.Fatalf("%s differs from shared/reference/exchange-cmdlets.tsv beyond its leading comment; copy the reference again", File)
	}
	for _, l := range own[:len(own)-len(refLines)] {
		if !strings.HasPrefix(l, "#") {
			t.Fatalf("%s: line %q precedes the reference and is not a comment", File, l)
		}
	}
}

func TestTableParses(t *testing.T) {
	tb, err := Parse(tableTSV)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tb.Cmdlets()); n < 39 {
		t.Fatalf("only %d cmdlets parsed", n)
	}
	c := tb.Cmdlet("set-authserver")
	if c == nil || c.Name != "Set-AuthServer" || !slices.Equal(sorted(c.Sets), []string{"AppSecret", "AuthMetadataUrl", "NativeClientAuthServer", "RefreshAuthMetadata"}) {
		t.Fatalf("Set-AuthServer parsed as %+v", c)
	}
	if _, err := Parse([]byte("cmdlet\tparameter\n")); err == nil {
		t.Fatal("a header without parameter_set parsed")
	}
}

// Every cmdlet the hosts may run (the allow-list the bootstrap script
// carries too) must be documented in the table.
func TestAllowListIsDocumented(t *testing.T) {
	for _, c := range exchange.AllowedCmdlets {
		if Default().Cmdlet(c) == nil {
			t.Errorf("cmdlet %s is not in the reference table (%s): add its rows from Microsoft's documentation", c, File)
		}
	}
}

func bindErr(t *testing.T, err error) *exchange.Error {
	t.Helper()
	e, ok := err.(*exchange.Error)
	if !ok {
		t.Fatalf("error %v (%T) is not an *exchange.Error", err, err)
	}
	return e
}

func TestBind(t *testing.T) {
	c := func(name string, kv ...any) exchange.Command {
		cmd := exchange.Command{Cmdlet: name, Parameters: map[string]any{}}
		for i := 0; i+1 < len(kv); i += 2 {
			cmd.Parameters[kv[i].(string)] = kv[i+1]
		}
		return cmd
	}
	for _, tc := range []struct {
		name    string
		side    Side
		cmd     exchange.Command
		set     string   // wanted resolved set ("" = several, default set)
		cands   []string // wanted candidates when set is ""
		errType string
		errMsg  string
	}{
		// shared/reference/exchange-cmdlets.tsv: Set-AuthServer
		// ApplicationIdentifier appears only in set AppSecret, where
		// Identity is required and DomainName optional.
		{name: "Set-AuthServer dedicated app", side: OnPrem, cmd: c("Set-AuthServer", "Identity", "EvoSts - x", "ApplicationIdentifier", "a", "DomainName", []string{"contoso.com"}), set: "AppSecret"},
		// AuthMetadataUrl is in sets AuthMetadataUrl and
		// NativeClientAuthServer only: with ApplicationIdentifier no set has both.
		{name: "Set-AuthServer mixed sets", side: OnPrem, cmd: c("Set-AuthServer", "Identity", "x", "ApplicationIdentifier", "a", "AuthMetadataUrl", "https://x"),
			errType: exchange.TypeParameterBinding, errMsg: "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued cannot be used together or an insufficient number of parameters were provided."},
		// Set-AuthServer AppSecret Identity: required true.
		{name: "Set-AuthServer without Identity", side: OnPrem, cmd: c("Set-AuthServer", "ApplicationIdentifier", "a"),
			errType: exchange.TypeParameterBinding, errMsg: "Cannot process command because of one or more missing mandatory parameters: Identity."},
		// Set-AuthServer -Enabled is in all four sets, each needing only
		// Identity: PowerShell takes the default set, which the Exchange
		// documentation does not name.
		{name: "Set-AuthServer Enabled", side: OnPrem, cmd: c("Set-AuthServer", "Identity", "x", "Enabled", true), cands: []string{"AppSecret", "AuthMetadataUrl", "NativeClientAuthServer", "RefreshAuthMetadata"}},
		// Get-AuthServer has only Identity and DomainController.
		{name: "undocumented parameter", side: OnPrem, cmd: c("Get-AuthServer", "Foo", 1),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'Foo'."},
		// Get-Mailbox InactiveMailboxOnly: applies_to online.
		{name: "online-only parameter on-prem", side: OnPrem, cmd: c("Get-Mailbox", "InactiveMailboxOnly", true),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'InactiveMailboxOnly'."},
		{name: "online-only parameter online", side: Online, cmd: c("Get-Mailbox", "InactiveMailboxOnly", true), cands: []string{"AnrSet", "Identity", "MailboxPlanSet"}},
		// Get-Mailbox ServerSet Server: applies_to on-prem.
		{name: "on-prem-only parameter online", side: Online, cmd: c("Get-Mailbox", "Server", "ex01"),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'Server'."},
		// Get-Mailbox ResultSize: in every set on both sides.
		{name: "Get-Mailbox ResultSize", side: Online, cmd: c("Get-Mailbox", "ResultSize", 1), cands: []string{"AnrSet", "DatabaseSet", "Identity", "MailboxPlanSet", "ServerSet"}},
		// Remove-SettingOverride Identity: applies_to on-prem (the cmdlet is
		// on-premises only).
		{name: "on-prem cmdlet parameter online", side: Online, cmd: c("Remove-SettingOverride", "Identity", "x"),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'Identity'."},
		// New-AuthServer: Name and AuthMetadataUrl required in set
		// AuthMetadataUrl; Type is only in AppSecret and NativeClientAuthServer.
		{name: "New-AuthServer ACS", side: OnPrem, cmd: c("New-AuthServer", "Name", "ACS", "AuthMetadataUrl", "https://x"), set: "AuthMetadataUrl"},
		{name: "New-AuthServer evoSTS", side: OnPrem, cmd: c("New-AuthServer", "Name", "EvoSts", "AuthMetadataUrl", "https://x", "Type", "AzureAD"), set: "NativeClientAuthServer"},
		{name: "New-AuthServer name only", side: OnPrem, cmd: c("New-AuthServer", "Name", "x"),
			errType: exchange.TypeParameterBinding, errMsg: "Cannot process command because of one or more missing mandatory parameters: AuthMetadataUrl."},
		// Get-ExchangeCertificate: Server in sets Instance and Thumbprint,
		// Identity only in set Identity ("You can't use this parameter with
		// the Server parameter").
		{name: "Get-ExchangeCertificate server thumbprint", side: OnPrem, cmd: c("Get-ExchangeCertificate", "Server", "ex01", "Thumbprint", "AB"), set: "Thumbprint"},
		{name: "Get-ExchangeCertificate identity server", side: OnPrem, cmd: c("Get-ExchangeCertificate", "Server", "ex01", "Identity", "ex01\\AB"),
			errType: exchange.TypeParameterBinding, errMsg: "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued cannot be used together or an insufficient number of parameters were provided."},
		// Common parameters are accepted by every cmdlet; Confirm only where
		// the table lists it (Remove-AuthServer (All) Confirm, alias cf).
		{name: "common parameters", side: OnPrem, cmd: c("Get-AuthServer", "ErrorAction", "Stop", "Verbose", true, "wa", "SilentlyContinue"), set: "(All)"},
		{name: "Confirm where documented", side: OnPrem, cmd: c("Remove-AuthServer", "Identity", "x", "Confirm", false), set: "(All)"},
		{name: "Confirm by alias", side: OnPrem, cmd: c("Remove-AuthServer", "Identity", "x", "cf", false), set: "(All)"},
		{name: "Confirm on a Get- cmdlet", side: OnPrem, cmd: c("Get-AuthServer", "Confirm", false),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'Confirm'."},
		{name: "names are case-insensitive", side: OnPrem, cmd: c("remove-authserver", "IDENTITY", "x"), set: "(All)"},
		{name: "bound twice", side: OnPrem, cmd: c("Remove-AuthServer", "Identity", "x", "identity", "y"),
			errType: exchange.TypeParameterBinding, errMsg: "Cannot bind parameter because parameter 'Identity' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, \"-parameter value1,value2,value3\"."},
		{name: "prefixes are refused", side: OnPrem, cmd: c("Remove-AuthServer", "Ident", "x"),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'Ident'."},
		// Lync: documented under skype/; Get-CsExternalAccessPolicy Tenant
		// applies to Skype for Business Online only.
		{name: "Lync cmdlet on Exchange", side: OnPrem, cmd: c("Get-CsHostingProvider"), errType: TypeCommandNotFound},
		{name: "Exchange cmdlet on Lync", side: Lync, cmd: c("Get-AuthServer"), errType: TypeCommandNotFound},
		{name: "online-only Lync parameter", side: Lync, cmd: c("Get-CsExternalAccessPolicy", "Tenant", "x"),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'Tenant'."},
		// Get-CsHostingProvider LocalStore: sets Identity and Filter.
		{name: "Get-CsHostingProvider LocalStore", side: Lync, cmd: c("Get-CsHostingProvider", "LocalStore", true), cands: []string{"Filter", "Identity"}},
		// New-CsHostingProvider (All): Identity, Enabled,
		// EnabledSharedAddressSpace, HostsOCSUsers, ProxyFqdn required.
		{name: "New-CsHostingProvider without ProxyFqdn", side: Lync, cmd: c("New-CsHostingProvider", "Identity", "Exchange Online", "Enabled", true, "EnabledSharedAddressSpace", true, "HostsOCSUsers", false),
			errType: exchange.TypeParameterBinding, errMsg: "Cannot process command because of one or more missing mandatory parameters: ProxyFqdn."},
		// Test-OAuthConnectivity (All): Service and TargetUri required, both sides.
		{name: "Test-OAuthConnectivity online", side: Online, cmd: c("Test-OAuthConnectivity", "Service", "EWS", "TargetUri", "https://x", "Mailbox", "a@b"), set: "(All)"},
		// Get-OrganizationConfig / (All) / DomainController is its only row,
		// on-prem: online the cmdlet binds with no parameters, and
		// -DomainController is refused.
		{name: "no parameter on this side", side: Online, cmd: c("Get-OrganizationConfig"), set: "(All)"},
		{name: "no parameter on this side, one sent", side: Online, cmd: c("Get-OrganizationConfig", "DomainController", "dc01"),
			errType: exchange.TypeParameterBinding, errMsg: "A parameter cannot be found that matches parameter name 'DomainController'."},
		{name: "not in the table", side: OnPrem, cmd: c("Import-ExchangeCertificate", "FileData", "x"), errType: TypeNotInReference,
			errMsg: "cmdlet Import-ExchangeCertificate is not in the reference table (internal/exchange/cmdletref/exchange-cmdlets.tsv); add its rows from Microsoft's documentation before sending it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Bind(tc.side, tc.cmd)
			if tc.errType != "" {
				if err == nil {
					t.Fatalf("bound as %+v, want %s", b, tc.errType)
				}
				e := bindErr(t, err)
				if e.Type != tc.errType || (tc.errMsg != "" && e.Message != tc.errMsg) {
					t.Fatalf("error %s: %q, want %s: %q", e.Type, e.Message, tc.errType, tc.errMsg)
				}
				if e.Cmdlet != tc.cmd.Cmdlet {
					t.Fatalf("error names cmdlet %q", e.Cmdlet)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Set != tc.set {
				t.Fatalf("resolved to set %q (candidates %v), want %q", b.Set, b.Candidates, tc.set)
			}
			if tc.set == "" && !slices.Equal(sorted(b.Candidates), tc.cands) {
				t.Fatalf("candidates %v, want %v", b.Candidates, tc.cands)
			}
			// The rows a binding names are the table's lines.
			lines := strings.Split(string(tableTSV), "\n")
			for _, r := range b.Rows {
				f := strings.Split(lines[r.Line-1], "\t")
				if f[0] != r.Cmdlet || f[1] != r.Set || f[2] != r.Parameter {
					t.Fatalf("row %s is line %q", r, lines[r.Line-1])
				}
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
