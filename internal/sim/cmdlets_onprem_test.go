package sim

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

// onpremCase is one cmdlet semantics check on a fresh world: setup must
// succeed, then cmd must fail with errType ("" = succeed) and pass check.
type onpremCase struct {
	name    string
	side    Side   // default OnPrem
	tenant  string // default ShellTestTenant
	setup   []exchange.Command
	cmd     exchange.Command
	errType string
	msg     string // in the error message, when set
	// write says whether a success changes state; default: by verb, and
	// a success that warned of no change must not write.
	write *bool
	check func(t *testing.T, w *World, ten *Tenant, rows []exchange.Row)
}

func onpremCmd(name string, kv ...any) exchange.Command {
	p := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return exchange.Command{Cmdlet: name, Parameters: p}
}

func onpremYes() *bool { b := true; return &b }
func onpremNo() *bool  { b := false; return &b }

func runOnPremCases(t *testing.T, cases []onpremCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := NewShellTestWorld()
			side, tenant := tc.side, tc.tenant
			if side == "" {
				side = OnPrem
			}
			if tenant == "" {
				tenant = ShellTestTenant
			}
			for _, s := range tc.setup {
				if _, err := w.Invoke(side, tenant, s); err != nil {
					t.Fatalf("setup %s: %v", s.Cmdlet, err)
				}
			}
			w.Update(tenant, func(ten *Tenant) { ten.Behaviour.PendingPropagation = 0 })
			before := w.Stats().ByTenant[strings.ToLower(tenant)]
			writesBefore := int64(0)
			if before != nil {
				writesBefore = before.Writes
			}
			rows, warnings, err := w.InvokeWithWarnings(side, tenant, tc.cmd)
			if tc.errType == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.errType != "" {
				if err == nil {
					t.Fatalf("want %s, got success with %v", exchange.ShortType(tc.errType), rows)
				}
				if !exchange.HasType(err, tc.errType) {
					t.Fatalf("want %s, got %v", exchange.ShortType(tc.errType), err)
				}
				if !strings.Contains(err.Message, tc.msg) {
					t.Fatalf("message %q lacks %q", err.Message, tc.msg)
				}
				if err.Cmdlet != tc.cmd.Cmdlet {
					t.Fatalf("error names cmdlet %q", err.Cmdlet)
				}
			}
			wantWrite := err == nil && shellIsWrite(tc.cmd.Cmdlet) && len(warnings) == 0
			if tc.write != nil {
				wantWrite = err == nil && *tc.write
			}
			after := w.Stats().ByTenant[strings.ToLower(tenant)]
			gotWrite := after != nil && after.Writes > writesBefore
			if gotWrite != wantWrite {
				t.Fatalf("write counted %v, want %v (warnings %q)", gotWrite, wantWrite, warnings)
			}
			var ten *Tenant
			w.View(tenant, func(x *Tenant) { ten = x })
			if side == OnPrem && ten.Behaviour.PropagationChecks > 0 && wantWrite != (ten.Behaviour.PendingPropagation == ten.Behaviour.PropagationChecks) {
				t.Fatalf("propagation delay restarted=%v, want %v", !wantWrite, wantWrite)
			}
			if tc.check != nil {
				tc.check(t, w, ten, rows)
			}
		})
	}
}

const onpremInjection = `x'; Remove-Item C:\ -Recurse; '`

func TestOnPremAuthServers(t *testing.T) {
	global, gov := cloud.MustLookup("global"), cloud.MustLookup("gcchigh")
	acs := global.ACSMetadataURL("contoso.onmicrosoft.com")
	evo := global.EvoSTSMetadataURL("contoso.onmicrosoft.com")
	newACS := onpremCmd("New-AuthServer", "Name", "WindowsAzureACS", "AuthMetadataUrl", acs)
	newEvo := onpremCmd("New-AuthServer", "Name", "evoSTS", "Type", "AzureAD", "AuthMetadataUrl", evo)
	runOnPremCases(t, []onpremCase{
		{name: "ACS created", cmd: newACS, check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			a := ten.OnPrem.AuthServers[0]
			if a.Type != "MicrosoftACS" || a.Realm != ShellTestTenant || !a.Enabled || a.CreatedBy != "client" {
				t.Fatalf("stored %+v", a)
			}
			if rows[0]["Type"] != "MicrosoftACS" || rows[0]["AuthMetadataUrl"] != acs || rows[0]["Realm"] != ShellTestTenant {
				t.Fatalf("row %v", rows[0])
			}
		}},
		{name: "evoSTS next to ACS of the same realm", setup: []exchange.Command{newACS}, cmd: newEvo, check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if len(ten.OnPrem.AuthServers) != 2 || ten.OnPrem.AuthServers[1].Type != "AzureAD" {
				t.Fatalf("%+v", ten.OnPrem.AuthServers)
			}
		}},
		{name: "custom verified domain in the URL", cmd: onpremCmd("New-AuthServer", "Name", "a", "AuthMetadataUrl", global.ACSMetadataURL("contoso.com"))},
		{name: "duplicate name", setup: []exchange.Command{newACS}, cmd: onpremCmd("New-AuthServer", "Name", "windowsazureacs", "AuthMetadataUrl", acs), errType: exchange.TypeAlreadyExists},
		{name: "same realm under an HCW name", setup: []exchange.Command{newACS}, cmd: onpremCmd("New-AuthServer", "Name", "ACS - "+ShellTestTenant, "AuthMetadataUrl", acs), errType: exchange.TypeSameRealmAuthServer},
		{name: "unknown metadata host", cmd: onpremCmd("New-AuthServer", "Name", "x", "AuthMetadataUrl", "https://sts.contoso.com/metadata/json/1"), errType: exchange.TypeAuthMetadata,
			check: nil},
		{name: "another tenant's domain", cmd: onpremCmd("New-AuthServer", "Name", "x", "AuthMetadataUrl", global.ACSMetadataURL("fabrikam.onmicrosoft.com")), errType: exchange.TypeAuthMetadata},
		{name: "evoSTS URL for an ACS server", cmd: onpremCmd("New-AuthServer", "Name", "x", "AuthMetadataUrl", evo), errType: exchange.TypeAuthMetadata},
		{name: "another cloud's endpoint", tenant: ShellTestGov, cmd: onpremCmd("New-AuthServer", "Name", "x", "AuthMetadataUrl", global.ACSMetadataURL("fabrikam.onmicrosoft.us")), errType: exchange.TypeAuthMetadata},
		{name: "GCC High endpoint", tenant: ShellTestGov, cmd: onpremCmd("New-AuthServer", "Name", "evoSTS", "Type", "AzureAD", "AuthMetadataUrl", gov.EvoSTSMetadataURL("fabrikam.onmicrosoft.us"))},
		{name: "http URL", cmd: onpremCmd("New-AuthServer", "Name", "x", "AuthMetadataUrl", "http://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1"), errType: exchange.TypeParameterBinding},
		{name: "bad type", cmd: onpremCmd("New-AuthServer", "Name", "x", "Type", "Kerberos", "AuthMetadataUrl", acs), errType: exchange.TypeParameterBinding},
		{name: "unknown parameter", cmd: onpremCmd("New-AuthServer", "Name", "x", "AuthMetadataUrl", acs, "Realm", "x"), errType: exchange.TypeParameterBinding},
		{name: "missing name", cmd: onpremCmd("New-AuthServer", "AuthMetadataUrl", acs), errType: exchange.TypeParameterBinding},
		{name: "onpremInjection attempt stored verbatim", cmd: onpremCmd("New-AuthServer", "Name", onpremInjection, "AuthMetadataUrl", acs), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if ten.OnPrem.AuthServers[0].Name != onpremInjection {
				t.Fatalf("name %q", ten.OnPrem.AuthServers[0].Name)
			}
		}},
		{name: "get all", setup: []exchange.Command{newACS, newEvo}, cmd: onpremCmd("Get-AuthServer"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 2 || rows[1]["Name"] != "evoSTS" {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "get missing", cmd: onpremCmd("Get-AuthServer", "Identity", "evoSTS"), errType: exchange.TypeNotFound},
		{name: "set dedicated app", setup: []exchange.Command{newEvo}, cmd: onpremCmd("Set-AuthServer", "Identity", "EVOSTS", "ApplicationIdentifier", "11111111-2222-3333-4444-555555555555", "DomainName", []any{"Contoso.com", "contoso.onmicrosoft.com"}),
			check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
				a := ten.OnPrem.AuthServers[0]
				if a.ApplicationIdentifier != "11111111-2222-3333-4444-555555555555" || strings.Join(a.DomainName, ",") != "contoso.com,contoso.onmicrosoft.com" {
					t.Fatalf("%+v", a)
				}
			}},
		{name: "set without change", setup: []exchange.Command{newEvo}, cmd: onpremCmd("Set-AuthServer", "Identity", "evoSTS", "Enabled", true)},
		{name: "set missing", cmd: onpremCmd("Set-AuthServer", "Identity", "evoSTS", "Enabled", false), errType: exchange.TypeNotFound},
		{name: "remove", setup: []exchange.Command{newACS}, cmd: onpremCmd("Remove-AuthServer", "Identity", "WindowsAzureACS", "Confirm", false), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if len(ten.OnPrem.AuthServers) != 0 {
				t.Fatal("not removed")
			}
		}},
		{name: "remove missing", cmd: onpremCmd("Remove-AuthServer", "Identity", "WindowsAzureACS"), errType: exchange.TypeNotFound},
	})
	if !exchange.Retryable(&exchange.Error{Type: exchange.TypeAuthMetadata}) {
		t.Fatal("metadata fetch failures must stay retryable")
	}
}

func TestOnPremPartnerApplication(t *testing.T) {
	runOnPremCases(t, []onpremCase{
		{name: "get", cmd: onpremCmd("Get-PartnerApplication"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["ApplicationIdentifier"] != cloud.FirstPartyAppID || rows[0]["Realm"] != "" || rows[0]["Enabled"] != false {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "enable by name", cmd: onpremCmd("Set-PartnerApplication", "Identity", "Exchange Online", "Enabled", true), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if !ten.OnPrem.PartnerApplications[0].Enabled {
				t.Fatal("not enabled")
			}
		}},
		{name: "enable by application identifier", cmd: onpremCmd("Set-PartnerApplication", "Identity", cloud.FirstPartyAppID, "Enabled", true)},
		{name: "already disabled", cmd: onpremCmd("Set-PartnerApplication", "Identity", "Exchange Online", "Enabled", false)},
		{name: "missing", cmd: onpremCmd("Set-PartnerApplication", "Identity", "Skype", "Enabled", true), errType: exchange.TypeNotFound},
		{name: "get missing", cmd: onpremCmd("Get-PartnerApplication", "Identity", "Skype"), errType: exchange.TypeNotFound},
	})
}

func TestOnPremAuthConfig(t *testing.T) {
	effective := ShellTestNow.AddDate(0, 0, 30).Format(time.RFC3339)
	stage := func(c *ExchangeCertificate) exchange.Command {
		return onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", c.Thumbprint, "NewCertificateEffectiveDate", effective)
	}
	runOnPremCases(t, []onpremCase{
		{name: "get", cmd: onpremCmd("Get-AuthConfig"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			r := rows[0]
			if r["CurrentCertificateThumbprint"] != shellCertCurrent.Thumbprint || r["NextCertificateThumbprint"] != "" || r["NextCertificateEffectiveDate"] != nil || r["PreviousCertificateThumbprint"] != "" {
				t.Fatalf("%v", r)
			}
		}},
		{name: "stage", cmd: stage(shellCertGood), check: func(t *testing.T, w *World, _ *Tenant, _ []exchange.Row) {
			rows, _ := w.Invoke(OnPrem, ShellTestTenant, onpremCmd("Get-AuthConfig"))
			if rows[0]["NextCertificateThumbprint"] != shellCertGood.Thumbprint || rows[0]["NextCertificateEffectiveDate"] != effective {
				t.Fatalf("%v", rows[0])
			}
		}},
		{name: "stage lower-case thumbprint", cmd: onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", strings.ToLower(shellCertGood.Thumbprint), "NewCertificateEffectiveDate", effective)},
		{name: "stage again unchanged", setup: []exchange.Command{stage(shellCertGood)}, cmd: stage(shellCertGood)},
		{name: "not exportable", cmd: stage(shellCertUnexporting), errType: exchange.TypeInvalidCertificate, msg: "not exportable"},
		{name: "expired", cmd: stage(shellCertExpired), errType: exchange.TypeInvalidCertificate, msg: "expired on"},
		{name: "not yet valid", cmd: stage(shellCertFuture), errType: exchange.TypeInvalidCertificate, msg: "is not valid until"},
		{name: "expires before the effective date", cmd: stage(shellCertShort), errType: exchange.TypeInvalidCertificate, msg: "before its effective date"},
		{name: "expires after an earlier effective date", cmd: onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", shellCertShort.Thumbprint, "NewCertificateEffectiveDate", ShellTestNow.AddDate(0, 0, 5).Format(time.RFC3339))},
		{name: "absent from the store", cmd: onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", strings.Repeat("AB", 20), "NewCertificateEffectiveDate", effective), errType: exchange.TypeInvalidCertificate, msg: "was not found"},
		{name: "not a thumbprint", cmd: onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", "abc", "NewCertificateEffectiveDate", effective), errType: exchange.TypeParameterBinding},
		{name: "bad date", cmd: onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", shellCertGood.Thumbprint, "NewCertificateEffectiveDate", "soon"), errType: exchange.TypeParameterBinding},
		{name: "publish", setup: []exchange.Command{stage(shellCertGood)}, cmd: onpremCmd("Set-AuthConfig", "PublishCertificate", true), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			ac := ten.OnPrem.AuthConfig
			if ac.CurrentCertificateThumbprint != shellCertGood.Thumbprint || ac.PreviousCertificateThumbprint != shellCertCurrent.Thumbprint || ac.NextCertificateThumbprint != "" || ac.NextCertificateEffectiveDate != nil {
				t.Fatalf("%+v", ac)
			}
		}},
		{name: "publish without a next certificate", cmd: onpremCmd("Set-AuthConfig", "PublishCertificate", true), errType: exchange.TypeInvalidCertificate},
		{name: "clear previous", setup: []exchange.Command{stage(shellCertGood), onpremCmd("Set-AuthConfig", "PublishCertificate", true)}, cmd: onpremCmd("Set-AuthConfig", "ClearPreviousCertificate", true),
			check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
				if ten.OnPrem.AuthConfig.PreviousCertificateThumbprint != "" || ten.OnPrem.AuthConfig.CurrentCertificateThumbprint != shellCertGood.Thumbprint {
					t.Fatalf("%+v", ten.OnPrem.AuthConfig)
				}
			}},
		{name: "clear with nothing to clear", cmd: onpremCmd("Set-AuthConfig", "ClearPreviousCertificate", true)},
		{name: "two parameter sets", cmd: onpremCmd("Set-AuthConfig", "PublishCertificate", true, "ClearPreviousCertificate", true), errType: exchange.TypeParameterBinding},
		{name: "no parameter set", cmd: onpremCmd("Set-AuthConfig"), errType: exchange.TypeParameterBinding},
	})
}

func TestOnPremCertificates(t *testing.T) {
	newCert := onpremCmd("New-ExchangeCertificate", "KeySize", 2048, "PrivateKeyExportable", true, "SubjectName", "cn=Microsoft Exchange Server Auth Certificate", "DomainName", []any{}, "Services", "SMTP")
	runOnPremCases(t, []onpremCase{
		{name: "list with raw data", cmd: onpremCmd("Get-ExchangeCertificate"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 6 {
				t.Fatalf("%d rows", len(rows))
			}
			for _, r := range rows {
				der, err := base64.StdEncoding.DecodeString(r["RawData"].(string))
				if err != nil || certs.Thumbprint(der) != r["Thumbprint"] {
					t.Fatalf("RawData does not match Thumbprint in %v", r["Thumbprint"])
				}
			}
		}},
		{name: "one by thumbprint", cmd: onpremCmd("Get-ExchangeCertificate", "Thumbprint", strings.ToLower(shellCertExpired.Thumbprint)), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			r := rows[0]
			if r["Status"] != "DateInvalid" || r["PublicKeySize"] != 2048 || r["Subject"] != "CN=expired" || r["NotAfter"] != shellCertExpired.NotAfter.Format(time.RFC3339) || r["IsSelfSigned"] != true {
				t.Fatalf("%v", r)
			}
		}},
		{name: "unexportable shows as such", cmd: onpremCmd("Get-ExchangeCertificate", "Thumbprint", shellCertUnexporting.Thumbprint), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if rows[0]["PrivateKeyExportable"] != false || rows[0]["IsExportable"] != false {
				t.Fatalf("%v", rows[0])
			}
		}},
		{name: "missing", cmd: onpremCmd("Get-ExchangeCertificate", "Thumbprint", strings.Repeat("0", 40)), errType: exchange.TypeNotFound},
		{name: "new", cmd: newCert, check: func(t *testing.T, w *World, ten *Tenant, rows []exchange.Row) {
			c := ten.OnPrem.Certificates[len(ten.OnPrem.Certificates)-1]
			if rows[0]["Thumbprint"] != c.Thumbprint || c.Subject != "CN="+AuthCertificateSubject || !c.Exportable ||
				!c.NotBefore.Equal(ShellTestNow) || !c.NotAfter.Equal(ShellTestNow.AddDate(5, 0, 0)) {
				t.Fatalf("%+v", c)
			}
			if _, err := certs.Check(c.DER, ShellTestNow, false); err != nil {
				t.Fatal(err)
			}
			// It can be staged right away (the renewal's emergency path).
			if _, err := w.Invoke(OnPrem, ShellTestTenant, onpremCmd("Set-AuthConfig", "NewCertificateThumbprint", c.Thumbprint, "NewCertificateEffectiveDate", ShellTestNow.AddDate(0, 0, 30).Format(time.RFC3339))); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "new twice differs", setup: []exchange.Command{newCert}, cmd: newCert, check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			n := len(ten.OnPrem.Certificates)
			if ten.OnPrem.Certificates[n-1].Thumbprint == ten.OnPrem.Certificates[n-2].Thumbprint {
				t.Fatal("same certificate twice")
			}
		}},
		{name: "not exportable by default", cmd: onpremCmd("New-ExchangeCertificate", "SubjectName", "cn=x"), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if ten.OnPrem.Certificates[len(ten.OnPrem.Certificates)-1].Exportable {
				t.Fatal("exportable without -PrivateKeyExportable")
			}
		}},
		{name: "unsupported key size", cmd: onpremCmd("New-ExchangeCertificate", "KeySize", 4096, "SubjectName", "cn=x"), errType: exchange.TypeParameterBinding},
		{name: "no subject", cmd: onpremCmd("New-ExchangeCertificate", "KeySize", 2048), errType: exchange.TypeParameterBinding},
	})
	// Serials differ between tenants at the same instant.
	w := NewShellTestWorld()
	a, _ := w.Invoke(OnPrem, ShellTestTenant, newCert)
	b, _ := w.Invoke(OnPrem, ShellTestGov, newCert)
	if a[0]["SerialNumber"] == b[0]["SerialNumber"] || a[0]["Thumbprint"] == b[0]["Thumbprint"] {
		t.Fatal("two tenants got the same certificate")
	}
}

func TestOnPremIntraOrganizationConnectors(t *testing.T) {
	newIOC := onpremCmd("New-IntraOrganizationConnector", "Name", "ExchangeHybridOnPremisesToOnline", "DiscoveryEndpoint", "https://outlook.office365.com/autodiscover/autodiscover.svc", "TargetAddressDomains", "contoso.mail.onmicrosoft.com")
	runOnPremCases(t, []onpremCase{
		{name: "new", cmd: newIOC, check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			ioc := ten.OnPrem.IntraOrganizationConnectors[0]
			if !ioc.Enabled || ioc.CreatedBy != "client" || ioc.TargetAddressDomains[0] != "contoso.mail.onmicrosoft.com" || rows[0]["Name"] != ioc.Name {
				t.Fatalf("%+v", ioc)
			}
		}},
		{name: "domains normalised", cmd: onpremCmd("New-IntraOrganizationConnector", "Name", "x", "DiscoveryEndpoint", "https://a.example/x", "TargetAddressDomains", []any{"A.com, b.com", "a.com"}),
			check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
				if got := strings.Join(ten.OnPrem.IntraOrganizationConnectors[0].TargetAddressDomains, ","); got != "a.com,b.com" {
					t.Fatal(got)
				}
			}},
		{name: "duplicate name", setup: []exchange.Command{newIOC}, cmd: onpremCmd("New-IntraOrganizationConnector", "Name", "exchangehybridonpremisestoonline", "DiscoveryEndpoint", "https://a.example/x", "TargetAddressDomains", "other.com"), errType: exchange.TypeAlreadyExists},
		{name: "domain on another connector", setup: []exchange.Command{newIOC}, cmd: onpremCmd("New-IntraOrganizationConnector", "Name", "second", "DiscoveryEndpoint", "https://a.example/x", "TargetAddressDomains", "Contoso.mail.onmicrosoft.com"), errType: exchange.TypeDuplicateIOCDomain},
		{name: "relative endpoint", cmd: onpremCmd("New-IntraOrganizationConnector", "Name", "x", "DiscoveryEndpoint", "/autodiscover", "TargetAddressDomains", "a.com"), errType: exchange.TypeParameterBinding},
		{name: "no domains", cmd: onpremCmd("New-IntraOrganizationConnector", "Name", "x", "DiscoveryEndpoint", "https://a.example/x", "TargetAddressDomains", []any{}), errType: exchange.TypeParameterBinding},
		{name: "get one", setup: []exchange.Command{newIOC}, cmd: onpremCmd("Get-IntraOrganizationConnector", "Identity", "ExchangeHybridOnPremisesToOnline")},
		{name: "get missing", cmd: onpremCmd("Get-IntraOrganizationConnector", "Identity", "x"), errType: exchange.TypeNotFound},
		{name: "set disables", setup: []exchange.Command{newIOC}, cmd: onpremCmd("Set-IntraOrganizationConnector", "Identity", "ExchangeHybridOnPremisesToOnline", "Enabled", false), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if ten.OnPrem.IntraOrganizationConnectors[0].Enabled {
				t.Fatal("still enabled")
			}
		}},
		{name: "set unchanged", setup: []exchange.Command{newIOC}, cmd: onpremCmd("Set-IntraOrganizationConnector", "Identity", "ExchangeHybridOnPremisesToOnline", "TargetAddressDomains", "CONTOSO.mail.onmicrosoft.com")},
		{name: "set onto another's domain", setup: []exchange.Command{newIOC, onpremCmd("New-IntraOrganizationConnector", "Name", "second", "DiscoveryEndpoint", "https://a.example/x", "TargetAddressDomains", "b.com")},
			cmd: onpremCmd("Set-IntraOrganizationConnector", "Identity", "second", "TargetAddressDomains", "contoso.mail.onmicrosoft.com"), errType: exchange.TypeDuplicateIOCDomain},
		{name: "remove", setup: []exchange.Command{newIOC}, cmd: onpremCmd("Remove-IntraOrganizationConnector", "Identity", "ExchangeHybridOnPremisesToOnline")},
		{name: "remove missing", cmd: onpremCmd("Remove-IntraOrganizationConnector", "Identity", "x"), errType: exchange.TypeNotFound},
	})
}

func TestOnPremAvailabilityAddressSpace(t *testing.T) {
	add := onpremCmd("Add-AvailabilityAddressSpace", "AccessMethod", "InternalProxy", "ProxyUrl", "https://mail.contoso.com/EWS/Exchange.asmx", "ForestName", "contoso.mail.onmicrosoft.com", "UseServiceAccount", true)
	runOnPremCases(t, []onpremCase{
		{name: "add", cmd: add, check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			a := ten.OnPrem.AvailabilityAddressSpaces[0]
			if a.AccessMethod != "InternalProxy" || !a.UseServiceAccount || rows[0]["Identity"] != "contoso.mail.onmicrosoft.com" {
				t.Fatalf("%+v", a)
			}
		}},
		{name: "same forest", setup: []exchange.Command{add}, cmd: onpremCmd("Add-AvailabilityAddressSpace", "AccessMethod", "InternalProxy", "ProxyUrl", "https://x.example/ews", "ForestName", "Contoso.Mail.OnMicrosoft.com"),
			errType: exchange.TypeAddressSpaceExists, check: func(t *testing.T, _ *World, _ *Tenant, _ []exchange.Row) {}},
		{name: "proxy without URL", cmd: onpremCmd("Add-AvailabilityAddressSpace", "AccessMethod", "InternalProxy", "ForestName", "x.com"), errType: exchange.TypeParameterBinding},
		{name: "bad access method", cmd: onpremCmd("Add-AvailabilityAddressSpace", "AccessMethod", "Magic", "ForestName", "x.com"), errType: exchange.TypeParameterBinding},
		{name: "get by forest", setup: []exchange.Command{add}, cmd: onpremCmd("Get-AvailabilityAddressSpace", "Identity", "contoso.mail.onmicrosoft.com")},
		{name: "remove", setup: []exchange.Command{add}, cmd: onpremCmd("Remove-AvailabilityAddressSpace", "Identity", "contoso.mail.onmicrosoft.com")},
		{name: "remove missing", cmd: onpremCmd("Remove-AvailabilityAddressSpace", "Identity", "contoso.mail.onmicrosoft.com"), errType: exchange.TypeNotFound},
	})
	if !exchange.IsAlreadyExists(&exchange.Error{Type: exchange.TypeAddressSpaceExists}) {
		t.Fatal("address-space duplicates must classify as already-exists")
	}
}

func TestOnPremDiscovery(t *testing.T) {
	runOnPremCases(t, []onpremCase{
		{name: "accepted domains", cmd: onpremCmd("Get-AcceptedDomain"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 3 || rows[0]["DomainName"] != "contoso.com" || rows[0]["Default"] != true || rows[2]["DomainName"] != "contoso.mail.onmicrosoft.com" {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "ews directories", cmd: onpremCmd("Get-WebServicesVirtualDirectory", "ADPropertiesOnly", true), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 2 || rows[0]["Identity"] != `EX01\EWS (Default Web Site)` || rows[0]["ExternalUrl"] != "https://mail.contoso.com/EWS/Exchange.asmx" || rows[1]["ExternalUrl"] != nil {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "ews of one server", cmd: onpremCmd("Get-WebServicesVirtualDirectory", "Server", "ex2010"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["Server"] != "EX2010" {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "oab without external URL", cmd: onpremCmd("Get-OABVirtualDirectory"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["ExternalUrl"] != nil || rows[0]["InternalUrl"] != "https://ex01.contoso.com/OAB" {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "mapi", cmd: onpremCmd("Get-MapiVirtualDirectory"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 || rows[0]["Name"] != "mapi (Default Web Site)" {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "autodiscover", cmd: onpremCmd("Get-AutodiscoverVirtualDirectory"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if len(rows) != 1 {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "servers", cmd: onpremCmd("Get-ExchangeServer"), check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			for i, r := range rows {
				major, minor, build, rev, err := exchange.ParseAdminDisplayVersion(r["AdminDisplayVersion"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join([]string{strconv.Itoa(major), strconv.Itoa(minor), strconv.Itoa(build), strconv.Itoa(rev)}, "."); got != ten.OnPrem.Servers[i].Version {
					t.Fatalf("%s parses to %s, world has %s", r["AdminDisplayVersion"], got, ten.OnPrem.Servers[i].Version)
				}
			}
			if rows[0]["AdminDisplayVersion"] != "Version 15.2 (Build 1748.24)" {
				t.Fatalf("%v", rows[0])
			}
		}},
		{name: "server missing", cmd: onpremCmd("Get-ExchangeServer", "Identity", "EX99"), errType: exchange.TypeNotFound},
		{name: "organization", cmd: onpremCmd("Get-OrganizationConfig"), check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			if rows[0]["Guid"] != ten.OnPrem.OrganizationGUID || rows[0]["Name"] != "Contoso" {
				t.Fatalf("%v", rows)
			}
		}},
		{name: "intra-organization configuration", cmd: onpremCmd("Get-IntraOrganizationConfiguration"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			r := rows[0]
			if r["OnlineTargetAddress"] != "contoso.mail.onmicrosoft.com" || r["OnlineDiscoveryEndpoint"] != "https://outlook.office365.com/autodiscover/autodiscover.svc" ||
				r["OnPremiseDiscoveryEndpoint"] != "https://autodiscover.contoso.com/autodiscover/autodiscover.svc" ||
				strings.Join(r["OnPremiseTargetAddresses"].([]string), ",") != "contoso.com,tailspintoys.com" ||
				r["HasNonIOCReadyExchangeMailboxServerVersions"] != true || r["DeploymentIsCompleteIOCReady"] != false {
				t.Fatalf("%v", r)
			}
		}},
		{name: "modern-only organisation is IOC ready", tenant: ShellTestGov, cmd: onpremCmd("Get-IntraOrganizationConfiguration"), check: func(t *testing.T, _ *World, _ *Tenant, rows []exchange.Row) {
			if rows[0]["DeploymentIsCompleteIOCReady"] != true || rows[0]["OnlineTargetAddress"] != "fabrikam.mail.onmicrosoft.us" {
				t.Fatalf("%v", rows[0])
			}
		}},
	})
}

func TestParseAdminDisplayVersion(t *testing.T) {
	tests := []struct {
		in   string
		want [4]int
		ok   bool
	}{
		{"Version 15.2 (Build 1748.24)", [4]int{15, 2, 1748, 24}, true},
		{"  Version 15.0 (Build 847.32) ", [4]int{15, 0, 847, 32}, true},
		{"15.1.2507.55", [4]int{15, 1, 2507, 55}, true},
		{"Version 15.2", [4]int{}, false},
		{"15.2.1748", [4]int{}, false},
		{"", [4]int{}, false},
	}
	for _, tt := range tests {
		a, b, c, d, err := exchange.ParseAdminDisplayVersion(tt.in)
		if (err == nil) != tt.ok || (tt.ok && [4]int{a, b, c, d} != tt.want) {
			t.Errorf("%q: %v %v", tt.in, [4]int{a, b, c, d}, err)
		}
	}
}

func TestOnPremSettingOverrides(t *testing.T) {
	newOverride := onpremCmd("New-SettingOverride", "Name", "EnableExchangeHybrid3PAppFeature", "Component", "Global", "Section", "ExchangeOnpremAsThirdPartyAppId", "Parameters", []any{"Enabled=true"}, "Reason", "test")
	refresh := onpremCmd("Get-ExchangeDiagnosticInfo", "Process", "Microsoft.Exchange.Directory.TopologyService", "Component", "VariantConfiguration", "Argument", "Refresh")
	runOnPremCases(t, []onpremCase{
		{name: "new", cmd: newOverride, check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			o := ten.OnPrem.SettingOverrides[0]
			if o.Section != "ExchangeOnpremAsThirdPartyAppId" || o.Parameters[0] != "Enabled=true" || ten.OnPrem.VariantConfigRefreshed || rows[0]["SectionName"] != o.Section {
				t.Fatalf("%+v refreshed=%v", o, ten.OnPrem.VariantConfigRefreshed)
			}
		}},
		{name: "duplicate", setup: []exchange.Command{newOverride}, cmd: newOverride, errType: exchange.TypeAlreadyExists},
		{name: "no parameters", cmd: onpremCmd("New-SettingOverride", "Name", "x", "Component", "Global", "Section", "s"), errType: exchange.TypeParameterBinding},
		{name: "refresh loads it", setup: []exchange.Command{newOverride}, cmd: refresh, write: onpremYes(), check: func(t *testing.T, _ *World, ten *Tenant, rows []exchange.Row) {
			if !ten.OnPrem.VariantConfigRefreshed || !strings.Contains(rows[0]["Result"].(string), "Success") || rows[0]["Server"] != "EX01" {
				t.Fatalf("refreshed=%v %v", ten.OnPrem.VariantConfigRefreshed, rows)
			}
		}},
		{name: "second refresh changes nothing", setup: []exchange.Command{newOverride, refresh}, cmd: refresh, write: onpremNo()},
		{name: "other diagnostics change nothing", cmd: onpremCmd("Get-ExchangeDiagnosticInfo", "Process", "EdgeTransport"), write: onpremNo()},
		{name: "a new override needs a new refresh", setup: []exchange.Command{newOverride, refresh}, cmd: onpremCmd("New-SettingOverride", "Name", "other", "Component", "c", "Section", "s", "Parameters", "a=b", "Reason", "test"),
			check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
				if ten.OnPrem.VariantConfigRefreshed {
					t.Fatal("still refreshed")
				}
			}},
		{name: "get one", setup: []exchange.Command{newOverride}, cmd: onpremCmd("Get-SettingOverride", "Identity", "EnableExchangeHybrid3PAppFeature")},
		{name: "remove", setup: []exchange.Command{newOverride, refresh}, cmd: onpremCmd("Remove-SettingOverride", "Identity", "EnableExchangeHybrid3PAppFeature"), check: func(t *testing.T, _ *World, ten *Tenant, _ []exchange.Row) {
			if len(ten.OnPrem.SettingOverrides) != 0 || ten.OnPrem.VariantConfigRefreshed {
				t.Fatal("not removed or still loaded")
			}
		}},
		{name: "remove missing", cmd: onpremCmd("Remove-SettingOverride", "Identity", "x"), errType: exchange.TypeNotFound},
	})
}
