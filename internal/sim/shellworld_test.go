package sim

import (
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// The on-prem and Lync tests (internal and, through these exported names,
// the external contract tests in pshost_test.go) share one small world.
const (
	ShellTestTenant = "0f2c6a52-6f1e-4c4e-9d1b-5a7f3c2e1d00" // Contoso, worldwide, with Lync
	ShellTestGov    = "7d4e9b10-2a3c-4f5e-8a6b-1c2d3e4f5a6b" // Fabrikam, GCC High, no Lync
)

// ShellTestNow is the world's fixed clock.
var ShellTestNow = time.Date(2026, time.November, 2, 12, 0, 0, 0, time.UTC)

// Certificates in Contoso's store, by what Set-AuthConfig must make of them.
var (
	shellCertCurrent     = NewCertificate(AuthCertificateSubject, 101, ShellTestNow.AddDate(-1, 0, 0), ShellTestNow.AddDate(4, 0, 0))
	shellCertGood        = NewCertificate(AuthCertificateSubject, 102, ShellTestNow.AddDate(0, 0, -1), ShellTestNow.AddDate(5, 0, 0))
	shellCertExpired     = NewCertificate("expired", 103, ShellTestNow.AddDate(-6, 0, 0), ShellTestNow.AddDate(0, 0, -1))
	shellCertFuture      = NewCertificate("future", 104, ShellTestNow.AddDate(0, 1, 0), ShellTestNow.AddDate(5, 0, 0))
	shellCertShort       = NewCertificate("short", 105, ShellTestNow.AddDate(-1, 0, 0), ShellTestNow.AddDate(0, 0, 10))
	shellCertUnexporting = func() *ExchangeCertificate {
		c := NewCertificate("unexportable", 106, ShellTestNow.AddDate(0, 0, -1), ShellTestNow.AddDate(5, 0, 0))
		c.Exportable = false
		return c
	}()
)

// NewShellTestWorld builds the world afresh (tests mutate it).
func NewShellTestWorld() *World {
	contoso := &Tenant{
		ID: ShellTestTenant, DisplayName: "Contoso", Cloud: "global", InitialDomain: "contoso.onmicrosoft.com", Site: "site-1",
		Entra: Entra{Domains: []Domain{
			{ID: "contoso.onmicrosoft.com", IsInitial: true, IsVerified: true},
			{ID: "contoso.mail.onmicrosoft.com", IsVerified: true},
			{ID: "contoso.com", IsDefault: true, IsVerified: true},
		}},
		OnPrem: ExchangeOrg{
			OrganizationGUID: "5b8f0c3e-1d2a-4e6f-9a7b-3c4d5e6f7a8b",
			Servers: []ExchangeServer{
				{Name: "EX01", Version: "15.2.1748.24", Roles: "Mailbox"},
				{Name: "EX2010", Version: "14.3.513.0", Roles: "Mailbox, ClientAccess"},
			},
			AcceptedDomains: []AcceptedDomain{{DomainName: "contoso.com", Default: true}, {DomainName: "tailspintoys.com"}, {DomainName: "contoso.mail.onmicrosoft.com"}},
			VirtualDirectories: []VirtualDirectory{
				{Kind: "WebServices", Server: "EX01", InternalURL: "https://ex01.contoso.com/EWS/Exchange.asmx", ExternalURL: "https://mail.contoso.com/EWS/Exchange.asmx"},
				{Kind: "Mapi", Server: "EX01", InternalURL: "https://ex01.contoso.com/mapi", ExternalURL: "https://mail.contoso.com/mapi"},
				{Kind: "OAB", Server: "EX01", InternalURL: "https://ex01.contoso.com/OAB"},
				{Kind: "Autodiscover", Server: "EX01", InternalURL: "https://ex01.contoso.com/Autodiscover/Autodiscover.xml", ExternalURL: "https://autodiscover.contoso.com/Autodiscover/Autodiscover.xml"},
				{Kind: "WebServices", Server: "EX2010", InternalURL: "https://ex2010.contoso.com/EWS/Exchange.asmx"},
			},
			PartnerApplications: []*PartnerApplication{{Name: "Exchange Online", ApplicationIdentifier: cloud.FirstPartyAppID, Enabled: false}},
			AuthConfig:          AuthConfig{CurrentCertificateThumbprint: shellCertCurrent.Thumbprint},
			Certificates: []*ExchangeCertificate{
				shellCertCurrent, shellCertGood, shellCertExpired, shellCertFuture, shellCertShort, shellCertUnexporting,
			},
			Mailboxes: []string{"admin@contoso.com"},
		},
		Lync: &LyncDeployment{
			Site:     "site-1",
			Replicas: []*Replica{{Fqdn: "fe01.contoso.com", UpToDate: true, LagChecks: 2}, {Fqdn: "edge01.contoso.com", UpToDate: true}},
			ExternalAccessPolicies: []ExternalAccessPolicy{
				{Identity: "Global", EnableOutsideAccess: false},
				{Identity: "Tag:RemoteUsers", EnableOutsideAccess: true},
			},
		},
		Behaviour: Behaviour{PropagationChecks: 3},
	}
	// Copies: tests change certificates (New-ExchangeCertificate appends).
	for i, c := range contoso.OnPrem.Certificates {
		cp := *c
		contoso.OnPrem.Certificates[i] = &cp
	}
	fabrikam := &Tenant{
		ID: ShellTestGov, DisplayName: "Fabrikam", Cloud: "gcchigh", InitialDomain: "fabrikam.onmicrosoft.us", Site: "site-2",
		Entra: Entra{Domains: []Domain{{ID: "fabrikam.onmicrosoft.us", IsInitial: true, IsVerified: true}}},
		OnPrem: ExchangeOrg{
			OrganizationGUID: "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
			Servers:          []ExchangeServer{{Name: "FEX01", Version: "15.2.2562.17", Roles: "Mailbox"}},
			AcceptedDomains:  []AcceptedDomain{{DomainName: "fabrikam.com", Default: true}},
		},
	}
	return &World{FixedNow: ShellTestNow, Tenants: []*Tenant{contoso, fabrikam}}
}
