package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

const (
	oauthTestTenantID = "6f1b7c2a-0d7e-4c55-9b1e-2a3c4d5e6f70"
	oauthTestOrgGUID  = "3a2b1c0d-1111-2222-3333-444455556666"
	oauthTestAppID    = "9e8d7c6b-aaaa-bbbb-cccc-ddddeeeeffff"
	oauthTestOnPremMB = "alice@contoso.com"
	oauthTestCloudMB  = "bob@contoso.com"
	oauthTestHost     = "mail.contoso.com"
)

var oauthTestNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// oauthTestTenant builds a tenant whose configuration is complete in both
// directions for a cloud, on the dedicated-application path or the legacy
// first-party path. The auth servers carry HCW names on purpose: the
// check must recognise them by type and metadata URL.
func oauthTestTenant(cloudName string, dedicated bool) *Tenant {
	p := cloud.MustLookup(cloudName)
	initial := "contoso." + p.InitialSuffix
	cert := NewCertificate(AuthCertificateSubject, 42, oauthTestNow.AddDate(-1, 0, 0), oauthTestNow.AddDate(4, 0, 0))
	key := KeyCredential{
		KeyID: "k1", CustomKeyIdentifier: strings.ToLower(cert.Thumbprint), Type: "AsymmetricX509Cert", Usage: "Verify",
		StartDateTime: cert.NotBefore, EndDateTime: cert.NotAfter, Key: cert.DER,
	}
	fp := &ServicePrincipal{ID: "sp-first-party", AppID: cloud.FirstPartyAppID, DisplayName: "Office 365 Exchange Online",
		ServicePrincipalNames: p.SPNsForHosts([]string{oauthTestHost, "autodiscover.contoso.com"}),
		AppRoles:              []AppRole{{ID: oauthFullAccessAsApp, Value: "full_access_as_app"}}}
	t := &Tenant{
		ID: oauthTestTenantID, DisplayName: "Contoso", Cloud: cloudName, InitialDomain: initial,
		Entra: Entra{
			Domains:           []Domain{{ID: initial, IsInitial: true, IsVerified: true}, {ID: "contoso.com", IsVerified: true, IsDefault: true}},
			ServicePrincipals: []*ServicePrincipal{fp},
		},
		Online: ExchangeOrg{OrganizationGUID: "0f0f0f0f-0000-0000-0000-000000000001", Mailboxes: []string{oauthTestCloudMB}},
		OnPrem: ExchangeOrg{
			OrganizationGUID: oauthTestOrgGUID,
			AuthServers: []*AuthServer{
				{Name: "ACS - " + oauthTestTenantID, Type: "MicrosoftACS", AuthMetadataURL: p.ACSMetadataURL(initial), Enabled: true},
				{Name: "EvoSts - " + oauthTestTenantID, Type: "AzureAD", AuthMetadataURL: p.EvoSTSMetadataURL(initial), Enabled: true},
			},
			PartnerApplications: []*PartnerApplication{
				{Name: "Exchange Online", ApplicationIdentifier: cloud.FirstPartyAppID, Enabled: true},
			},
			AuthConfig:   AuthConfig{CurrentCertificateThumbprint: cert.Thumbprint},
			Certificates: []*ExchangeCertificate{cert},
			VirtualDirectories: []VirtualDirectory{
				{Kind: "WebServices", Server: "EX1", InternalURL: "https://ex1.corp.contoso.com/EWS/Exchange.asmx", ExternalURL: "https://" + oauthTestHost + "/EWS/Exchange.asmx"},
			},
			Mailboxes: []string{oauthTestOnPremMB},
		},
	}
	if !dedicated {
		fp.KeyCredentials = []KeyCredential{key}
		return t
	}
	t.OnPrem.AuthServers[1].ApplicationIdentifier = oauthTestAppID
	t.Entra.Applications = []*Application{{ID: "app-obj", AppID: oauthTestAppID, DisplayName: "ExchangeServerApp-" + oauthTestOrgGUID,
		SignInAudience: "AzureADMyOrg", KeyCredentials: []KeyCredential{key}}}
	t.Entra.ServicePrincipals = append(t.Entra.ServicePrincipals, &ServicePrincipal{ID: "sp-dedicated", AppID: oauthTestAppID, DisplayName: "ExchangeServerApp-" + oauthTestOrgGUID})
	t.Entra.AppRoleAssignments = []*AppRoleAssignment{{ID: "ara1", PrincipalID: "sp-dedicated", ResourceID: "sp-first-party", AppRoleID: oauthFullAccessAsApp}}
	t.OnPrem.SettingOverrides = []*SettingOverride{{Name: "EnableExchangeHybrid3PAppFeature", Component: "Global", Section: "ExchangeOnpremAsThirdPartyAppId", Parameters: []string{"Enabled=true"}}}
	t.OnPrem.VariantConfigRefreshed = true
	return t
}

func oauthTestWorld(t *Tenant, legacyBlocked *bool) *World {
	return &World{FixedNow: oauthTestNow, Tenants: []*Tenant{t}, LegacyFirstPartyBlocked: legacyBlocked}
}

type oauthTestResult struct {
	ResultType, Detail, Reason string
}

// oauthTestRun runs Test-OAuthConnectivity as the procedure does: from
// on-prem to the cloud's EWS, or from the cloud to the on-prem metadata URL.
func oauthTestRun(t *testing.T, w *World, side Side, target, mailbox string) oauthTestResult {
	t.Helper()
	rows, err := w.Invoke(side, oauthTestTenantID, exchange.Command{Cmdlet: "Test-OAuthConnectivity",
		Parameters: map[string]any{"Service": "EWS", "TargetUri": target, "Mailbox": mailbox}})
	if err != nil {
		t.Fatalf("Test-OAuthConnectivity must report failures as rows, got error %v", err)
	}
	if len(rows) != 1 {
		t.Fatalf("want 1 row, got %d", len(rows))
	}
	r := oauthTestResult{ResultType: rows[0]["ResultType"].(string), Detail: rows[0]["Detail"].(string)}
	for _, line := range strings.Split(r.Detail, "\n") {
		if reason, ok := strings.CutPrefix(line, "Reason: "); ok {
			r.Reason = reason
		}
	}
	return r
}

func oauthToCloud(t *testing.T, w *World, cloudName string) oauthTestResult {
	return oauthTestRun(t, w, OnPrem, cloud.MustLookup(cloudName).EWSURL(), oauthTestOnPremMB)
}

func oauthToOnPrem(t *testing.T, w *World) oauthTestResult {
	return oauthTestRun(t, w, Online, "https://"+oauthTestHost+"/metadata/json/1", oauthTestCloudMB)
}

func oauthTestFalse() *bool { f := false; return &f }

func TestOAuthConnectivityMissingPieces(t *testing.T) {
	const (
		both      = ""
		legacy    = "legacy"
		dedicated = "dedicated"
	)
	const (
		toCloud  = 1
		toOnPrem = 2
	)
	cases := []struct {
		name      string
		mode      string // which configurations the row applies to
		direction int    // which test shows the failure
		mutate    func(t *Tenant)
		reason    string
		status    string
		// onPremReason is set when the to-on-prem test fails for another
		// reason than reason (a change that switches the on-prem mode).
		onPremReason string
	}{
		{"ACS auth server missing", both, toCloud, func(t *Tenant) { t.OnPrem.AuthServers = t.OnPrem.AuthServers[1:] }, OAuthReasonNoACSAuthServer, "(401)", ""},
		{"ACS auth server for another tenant", both, toCloud, func(t *Tenant) {
			t.OnPrem.AuthServers[0].AuthMetadataURL = strings.Replace(t.OnPrem.AuthServers[0].AuthMetadataURL, "contoso", "fabrikam", 1)
		}, OAuthReasonNoACSAuthServer, "(401)", ""},
		{"ACS auth server disabled", both, toCloud, func(t *Tenant) { t.OnPrem.AuthServers[0].Enabled = false }, OAuthReasonACSAuthServerDisabled, "(401)", ""},
		{"evoSTS auth server missing", legacy, toCloud, func(t *Tenant) { t.OnPrem.AuthServers = t.OnPrem.AuthServers[:1] }, OAuthReasonNoEvoSTSAuthServer, "(401)", ""},
		{"evoSTS auth server has the wrong type", legacy, toCloud, func(t *Tenant) { t.OnPrem.AuthServers[1].Type = "MicrosoftACS" }, OAuthReasonNoEvoSTSAuthServer, "(401)", ""},
		// Without its evoSTS server on-prem falls back to the legacy path,
		// where the dedicated setup has no key.
		{"evoSTS auth server missing", dedicated, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.AuthServers = t.OnPrem.AuthServers[:1] }, OAuthReasonNoEvoSTSAuthServer, "(401)", OAuthReasonKeyNotOnFirstPartySP},
		{"evoSTS auth server has the wrong type", dedicated, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.AuthServers[1].Type = "MicrosoftACS" }, OAuthReasonNoEvoSTSAuthServer, "(401)", OAuthReasonKeyNotOnFirstPartySP},
		{"evoSTS auth server disabled", both, toCloud, func(t *Tenant) { t.OnPrem.AuthServers[1].Enabled = false }, OAuthReasonEvoSTSAuthServerDisabled, "(401)", ""},
		{"partner application missing", both, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.PartnerApplications = nil }, OAuthReasonNoPartnerApplication, "(401)", ""},
		{"partner application with a realm only", both, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.PartnerApplications[0].Realm = "contoso.com" }, OAuthReasonNoPartnerApplication, "(401)", ""},
		{"partner application disabled", both, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.PartnerApplications[0].Enabled = false }, OAuthReasonPartnerAppDisabled, "(401)", ""},
		{"no current auth certificate", both, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.AuthConfig.CurrentCertificateThumbprint = "" }, OAuthReasonNoAuthCertificate, "(401)", ""},
		{"auth certificate not in the store", both, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.Certificates = nil }, OAuthReasonAuthCertificateNotFound, "(401)", ""},
		{"auth certificate expired", both, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.Certificates[0].NotAfter = oauthTestNow.Add(-time.Hour) }, OAuthReasonAuthCertificateExpired, "(401)", ""},
		{"first-party service principal missing", both, toCloud | toOnPrem, func(t *Tenant) { t.Entra.ServicePrincipals = t.Entra.ServicePrincipals[1:] }, OAuthReasonNoFirstPartySP, "(401)", ""},
		{"SPN missing", both, toOnPrem, func(t *Tenant) { t.Entra.ServicePrincipals[0].ServicePrincipalNames = nil }, OAuthReasonNoSPN, "(401)", ""},
		{"SPN for another host only", both, toOnPrem, func(t *Tenant) {
			t.Entra.ServicePrincipals[0].ServicePrincipalNames = cloud.MustLookup(t.Cloud).SPNsForHosts([]string{"mail.fabrikam.com"})
		}, OAuthReasonNoSPN, "(401)", ""},
		{"SPN in the other cloud's form", both, toOnPrem, func(t *Tenant) {
			other := "global"
			if t.Cloud == "global" {
				other = "china"
			}
			t.Entra.ServicePrincipals[0].ServicePrincipalNames = cloud.MustLookup(other).SPNsForHosts([]string{oauthTestHost})
		}, OAuthReasonNoSPN, "(401)", ""},
		{"target is not an on-prem host", both, toOnPrem, func(t *Tenant) { t.OnPrem.VirtualDirectories = nil }, OAuthReasonUnknownTarget, "Unable to connect", ""},

		{"legacy: key missing", legacy, toCloud | toOnPrem, func(t *Tenant) { t.Entra.ServicePrincipals[0].KeyCredentials = nil }, OAuthReasonKeyNotOnFirstPartySP, "(401)", ""},
		{"legacy: key expired", legacy, toCloud | toOnPrem, func(t *Tenant) {
			t.Entra.ServicePrincipals[0].KeyCredentials[0].EndDateTime = oauthTestNow.Add(-time.Minute)
		}, OAuthReasonKeyNotOnFirstPartySP, "(401)", ""},
		{"legacy: thumbprint matches, key material differs", legacy, toCloud | toOnPrem, func(t *Tenant) {
			t.Entra.ServicePrincipals[0].KeyCredentials[0].Key = NewCertificate(AuthCertificateSubject, 7, oauthTestNow, oauthTestNow.AddDate(1, 0, 0)).DER
		}, OAuthReasonKeyNotOnFirstPartySP, "(401)", ""},
		{"legacy: key of another certificate", legacy, toCloud | toOnPrem, func(t *Tenant) {
			other := NewCertificate(AuthCertificateSubject, 7, oauthTestNow, oauthTestNow.AddDate(1, 0, 0))
			t.Entra.ServicePrincipals[0].KeyCredentials[0].Key = other.DER
			t.Entra.ServicePrincipals[0].KeyCredentials[0].CustomKeyIdentifier = other.Thumbprint
		}, OAuthReasonKeyNotOnFirstPartySP, "(401)", ""},
		{"legacy: key on the wrong principal", legacy, toCloud | toOnPrem, func(t *Tenant) {
			t.Entra.Applications = []*Application{{ID: "x", AppID: oauthTestAppID, DisplayName: "ExchangeServerApp-" + oauthTestOrgGUID, KeyCredentials: t.Entra.ServicePrincipals[0].KeyCredentials}}
			t.Entra.ServicePrincipals[0].KeyCredentials = nil
		}, OAuthReasonKeyNotOnFirstPartySP, "(401)", ""},

		{"dedicated: application missing", dedicated, toCloud | toOnPrem, func(t *Tenant) { t.Entra.Applications = nil }, OAuthReasonNoDedicatedApp, "(401)", ""},
		{"dedicated: application named for another organization", dedicated, toCloud | toOnPrem, func(t *Tenant) { t.OnPrem.OrganizationGUID = "00000000-0000-0000-0000-000000000000" }, OAuthReasonNoDedicatedApp, "(401)", ""},
		{"dedicated: auth server names another appId", dedicated, toCloud | toOnPrem, func(t *Tenant) {
			t.OnPrem.AuthServers[1].ApplicationIdentifier = "11111111-2222-3333-4444-555555555555"
		}, OAuthReasonAppIDMismatch, "(401)", ""},
		{"dedicated: service principal missing", dedicated, toCloud | toOnPrem, func(t *Tenant) { t.Entra.ServicePrincipals = t.Entra.ServicePrincipals[:1] }, OAuthReasonNoDedicatedSP, "(401)", ""},
		{"dedicated: consent missing", dedicated, toCloud, func(t *Tenant) { t.Entra.AppRoleAssignments = nil }, OAuthReasonNoConsent, "(401)", ""},
		{"dedicated: consent for another role", dedicated, toCloud, func(t *Tenant) { t.Entra.AppRoleAssignments[0].AppRoleID = "dc50a0fb-09a3-484d-be87-e023b12c6440" }, OAuthReasonNoConsent, "(401)", ""},
		{"dedicated: key missing on the application", dedicated, toCloud | toOnPrem, func(t *Tenant) { t.Entra.Applications[0].KeyCredentials = nil }, OAuthReasonKeyNotOnDedicatedApp, "(401)", ""},
		{"dedicated: key only on the first-party SP", dedicated, toCloud | toOnPrem, func(t *Tenant) {
			t.Entra.ServicePrincipals[0].KeyCredentials = t.Entra.Applications[0].KeyCredentials
			t.Entra.Applications[0].KeyCredentials = nil
		}, OAuthReasonKeyNotOnDedicatedApp, "(401)", ""},
		{"dedicated: setting override missing", dedicated, toCloud, func(t *Tenant) { t.OnPrem.SettingOverrides = nil }, OAuthReasonNoSettingOverride, "(403)", ""},
		{"dedicated: setting override disabled", dedicated, toCloud, func(t *Tenant) { t.OnPrem.SettingOverrides[0].Parameters = []string{"Enabled=false"} }, OAuthReasonNoSettingOverride, "(403)", ""},
		{"dedicated: setting override not refreshed", dedicated, toCloud, func(t *Tenant) { t.OnPrem.VariantConfigRefreshed = false }, OAuthReasonOverrideNotRefreshed, "(403)", ""},
	}
	for _, cloudName := range []string{"global", "china"} {
		for _, mode := range []string{legacy, dedicated} {
			base := fmt.Sprintf("%s/%s", cloudName, mode)
			t.Run(base+"/complete", func(t *testing.T) {
				w := oauthTestWorld(oauthTestTenant(cloudName, mode == dedicated), oauthTestFalse())
				for dir, r := range map[string]oauthTestResult{"to cloud": oauthToCloud(t, w, cloudName), "to on-prem": oauthToOnPrem(t, w)} {
					if r.ResultType != OAuthResultSuccess || r.Reason != "" {
						t.Errorf("%s: complete configuration must pass, got %s: %s", dir, r.ResultType, r.Detail)
					}
					if strings.Contains(r.Detail, OAuthNoMailboxNoise) {
						t.Errorf("%s: no-mailbox noise for an existing mailbox: %s", dir, r.Detail)
					}
				}
			})
			for _, tc := range cases {
				if tc.mode != both && tc.mode != mode {
					continue
				}
				t.Run(base+"/"+tc.name, func(t *testing.T) {
					tn := oauthTestTenant(cloudName, mode == dedicated)
					tc.mutate(tn)
					w := oauthTestWorld(tn, oauthTestFalse())
					check := func(dir string, r oauthTestResult, wantFail bool, reason string) {
						t.Helper()
						if !wantFail {
							if r.ResultType != OAuthResultSuccess {
								t.Errorf("%s must still pass, got %q: %s", dir, r.Reason, r.Detail)
							}
							return
						}
						if r.ResultType != OAuthResultError || r.Reason != reason {
							t.Errorf("%s: got %s %q, want Error %q\n%s", dir, r.ResultType, r.Reason, reason, r.Detail)
						}
						if !strings.Contains(r.Detail, tc.status) {
							t.Errorf("%s: Detail lacks %q:\n%s", dir, tc.status, r.Detail)
						}
					}
					onPremReason := tc.reason
					if tc.onPremReason != "" {
						onPremReason = tc.onPremReason
					}
					check("to cloud", oauthToCloud(t, w, cloudName), tc.direction&toCloud != 0, tc.reason)
					check("to on-prem", oauthToOnPrem(t, w), tc.direction&toOnPrem != 0, onPremReason)
				})
			}
		}
	}
}

// TestOAuthConnectivityReasonsAreDistinct keeps the operator-facing
// reasons unambiguous: each must identify exactly one cause.
func TestOAuthConnectivityReasonsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range OAuthReasons {
		if r == "" || strings.Contains(r, "\n") || seen[r] {
			t.Errorf("reason %q is empty, multi-line or duplicated", r)
		}
		seen[r] = true
	}
}

func TestOAuthConnectivityLegacyBlocking(t *testing.T) {
	blockDay := time.Date(2025, 10, 31, 0, 0, 0, 0, time.UTC)
	on := true
	cases := []struct {
		name      string
		cloud     string
		dedicated bool
		now       time.Time
		override  *bool
		blocked   bool
	}{
		{"global after the block date", "global", false, oauthTestNow, nil, true},
		{"global on the block date", "global", false, blockDay, nil, true},
		{"global the day before", "global", false, blockDay.Add(-time.Second), nil, false},
		{"gcc shares the worldwide service", "gcc", false, oauthTestNow, nil, true},
		{"21Vianet after the block date", "china", false, oauthTestNow, nil, true},
		{"GCC High is not covered", "gcchigh", false, oauthTestNow, nil, false},
		{"DoD is not covered", "dod", false, oauthTestNow, nil, false},
		{"switch off lifts the block", "global", false, oauthTestNow, oauthTestFalse(), false},
		{"switch on enforces it anywhere", "gcchigh", false, blockDay.AddDate(-1, 0, 0), &on, true},
		{"dedicated mode is never blocked", "global", true, oauthTestNow, &on, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.override == nil && LegacyFirstPartyBlockedByDefault(cloud.Name(tc.cloud), tc.now) != tc.blocked {
				t.Fatalf("LegacyFirstPartyBlockedByDefault(%s, %s) disagrees with the table", tc.cloud, tc.now)
			}
			w := oauthTestWorld(oauthTestTenant(tc.cloud, tc.dedicated), tc.override)
			w.FixedNow = tc.now
			r := oauthToCloud(t, w, tc.cloud)
			if tc.blocked {
				if r.ResultType != OAuthResultError || r.Reason != OAuthReasonLegacyBlocked || !strings.Contains(r.Detail, "(403) Forbidden") {
					t.Fatalf("want 403 %q, got %s %q\n%s", OAuthReasonLegacyBlocked, r.ResultType, r.Reason, r.Detail)
				}
			} else if r.ResultType != OAuthResultSuccess {
				t.Fatalf("want Success, got %q\n%s", r.Reason, r.Detail)
			}
			// Cloud → on-prem never goes through the blocked path.
			if r := oauthToOnPrem(t, w); r.ResultType != OAuthResultSuccess {
				t.Fatalf("to on-prem must pass, got %q", r.Reason)
			}
		})
	}
}

func TestOAuthConnectivityPropagation(t *testing.T) {
	tn := oauthTestTenant("global", true)
	tn.Behaviour.PendingPropagation = 2
	w := oauthTestWorld(tn, nil)

	// A failing test does not consume the delay: only a complete
	// configuration is "waiting to propagate".
	w.Update(oauthTestTenantID, func(t *Tenant) { t.OnPrem.VariantConfigRefreshed = false })
	if r := oauthToCloud(t, w, "global"); r.Reason != OAuthReasonOverrideNotRefreshed {
		t.Fatalf("got %q", r.Reason)
	}
	w.Update(oauthTestTenantID, func(t *Tenant) { t.OnPrem.VariantConfigRefreshed = true })

	for i, want := range []string{OAuthReasonNotPropagated, OAuthReasonNotPropagated, ""} {
		var r oauthTestResult
		if i%2 == 0 {
			r = oauthToCloud(t, w, "global")
		} else {
			r = oauthToOnPrem(t, w)
		}
		if r.Reason != want {
			t.Fatalf("check %d: reason %q, want %q\n%s", i+1, r.Reason, want, r.Detail)
		}
		if want == "" && r.ResultType != OAuthResultSuccess {
			t.Fatalf("check %d: want Success, got %s", i+1, r.ResultType)
		}
	}
	var left int
	w.View(oauthTestTenantID, func(tn *Tenant) { left = tn.Behaviour.PendingPropagation })
	if left != 0 {
		t.Fatalf("PendingPropagation = %d after the delay was consumed", left)
	}
}

func TestOAuthConnectivityNoMailboxNoise(t *testing.T) {
	cases := []struct {
		name       string
		side       Side
		mutate     func(*Tenant)
		wantResult string
	}{
		{"to cloud, passing", OnPrem, func(*Tenant) {}, OAuthResultSuccess},
		{"to on-prem, passing", Online, func(*Tenant) {}, OAuthResultSuccess},
		{"to cloud, failing", OnPrem, func(t *Tenant) { t.OnPrem.PartnerApplications = nil }, OAuthResultError},
		{"to on-prem, failing", Online, func(t *Tenant) { t.Entra.ServicePrincipals[0].ServicePrincipalNames = nil }, OAuthResultError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := oauthTestTenant("global", true)
			tc.mutate(tn)
			w := oauthTestWorld(tn, nil)
			target := cloud.MustLookup("global").EWSURL()
			if tc.side == Online {
				target = "https://" + oauthTestHost + "/metadata/json/1"
			}
			r := oauthTestRun(t, w, tc.side, target, "nobody@contoso.com")
			if !strings.Contains(r.Detail, OAuthNoMailboxNoise) {
				t.Errorf("unknown mailbox must produce the documented noise:\n%s", r.Detail)
			}
			if r.ResultType != tc.wantResult {
				t.Errorf("ResultType %s, want %s: the noise must not change the outcome", r.ResultType, tc.wantResult)
			}
			// An alias resolves like the seed's "-Mailbox ExchangeOnlineBox1".
			alias := strings.SplitN(oauthTestOnPremMB, "@", 2)[0]
			if tc.side == Online {
				alias = strings.SplitN(oauthTestCloudMB, "@", 2)[0]
			}
			if r := oauthTestRun(t, w, tc.side, target, alias); strings.Contains(r.Detail, OAuthNoMailboxNoise) {
				t.Errorf("alias %s must resolve:\n%s", alias, r.Detail)
			}
		})
	}
}

func TestOAuthConnectivityParameters(t *testing.T) {
	w := oauthTestWorld(oauthTestTenant("global", true), nil)
	cases := []struct {
		name   string
		params map[string]any
	}{
		{"service other than EWS", map[string]any{"Service": "AutoD", "TargetUri": "https://outlook.office365.com/ews/exchange.asmx", "Mailbox": oauthTestOnPremMB}},
		{"relative target", map[string]any{"Service": "EWS", "TargetUri": "/ews/exchange.asmx", "Mailbox": oauthTestOnPremMB}},
		{"no target", map[string]any{"Service": "EWS", "Mailbox": oauthTestOnPremMB}},
		{"no mailbox", map[string]any{"Service": "EWS", "TargetUri": "https://outlook.office365.com/ews/exchange.asmx"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.Invoke(OnPrem, oauthTestTenantID, exchange.Command{Cmdlet: "Test-OAuthConnectivity", Parameters: tc.params})
			if !exchange.HasType(err, exchange.TypeParameterBinding) {
				t.Fatalf("want a parameter-binding error, got %v", err)
			}
		})
	}
	// The wrong cloud's EWS is not this tenant's partner.
	r := oauthTestRun(t, w, OnPrem, cloud.MustLookup("china").EWSURL(), oauthTestOnPremMB)
	if r.Reason != OAuthReasonUnknownTarget {
		t.Fatalf("got %q", r.Reason)
	}
}

// The two world-level switches this file and exo.go read load from YAML.
func TestWorldSwitchesFromYAML(t *testing.T) {
	w, err := Parse("switches.yaml", []byte("legacy_first_party_blocked: false\nexo_page_size: 2\ntenants: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w.LegacyFirstPartyBlocked == nil || *w.LegacyFirstPartyBlocked || w.EXOPageSize != 2 {
		t.Fatalf("switches not loaded: %v %d", w.LegacyFirstPartyBlocked, w.EXOPageSize)
	}
	w, err = Parse("default.yaml", []byte("tenants: []\n"))
	if err != nil || w.LegacyFirstPartyBlocked != nil {
		t.Fatalf("an absent switch must stay nil (follow Microsoft's rule): %v %v", w.LegacyFirstPartyBlocked, err)
	}
}

// TestOAuthConnectivityHCWBuilt: an organisation as the Hybrid
// Configuration Wizard leaves it verifies exactly as one built by hand
// (shared/reference/hybrid-facts.md (a) "Auth servers (on-prem)": the ACS
// server "ACS - <G1>" with the tenant ID in its metadata URL, the evoSTS
// server "EvoSts - <G1>" with the initial domain, both with realm = the
// tenant ID). The realm, not the URL or the name, makes a server the
// tenant's; a server of another realm is another tenant's.
func TestOAuthConnectivityHCWBuilt(t *testing.T) {
	const g1 = "177cd94d-0000-4000-8000-00000000a3e8"
	hcw := func(cloudName string, dedicated, storeRealm bool) *Tenant {
		tn := oauthTestTenant(cloudName, dedicated)
		p := cloud.MustLookup(cloudName)
		acs, evo := tn.OnPrem.AuthServers[0], tn.OnPrem.AuthServers[1]
		acs.Name, acs.AuthMetadataURL = "ACS - "+g1, p.ACSMetadataURL(oauthTestTenantID)
		acs.DomainName = []string{"contoso.com", "contoso." + p.RoutingSuffix}
		evo.Name = "EvoSts - " + g1
		if storeRealm {
			acs.Realm, evo.Realm = oauthTestTenantID, oauthTestTenantID
		}
		return tn
	}
	for _, cloudName := range []string{"global", "china"} {
		for _, dedicated := range []bool{false, true} {
			for _, storeRealm := range []bool{true, false} {
				name := fmt.Sprintf("%s/dedicated=%v/realm stored=%v", cloudName, dedicated, storeRealm)
				t.Run(name, func(t *testing.T) {
					w := oauthTestWorld(hcw(cloudName, dedicated, storeRealm), oauthTestFalse())
					for dir, r := range map[string]oauthTestResult{"to cloud": oauthToCloud(t, w, cloudName), "to on-prem": oauthToOnPrem(t, w)} {
						if r.ResultType != OAuthResultSuccess {
							t.Errorf("%s: an HCW-built organisation must verify, got %q\n%s", dir, r.Reason, r.Detail)
						}
					}
				})
			}
		}
	}
	t.Run("an ACS server of another realm is not the tenant's", func(t *testing.T) {
		tn := hcw("global", true, true)
		tn.OnPrem.AuthServers[0].Realm = "0f0f0f0f-0000-4000-8000-000000000000"
		if r := oauthToCloud(t, oauthTestWorld(tn, oauthTestFalse()), "global"); r.Reason != OAuthReasonNoACSAuthServer {
			t.Errorf("got %s %q", r.ResultType, r.Reason)
		}
	})
	t.Run("an evoSTS server of another realm is not the tenant's", func(t *testing.T) {
		tn := hcw("global", false, true)
		tn.OnPrem.AuthServers[1].Realm = "0f0f0f0f-0000-4000-8000-000000000000"
		if r := oauthToCloud(t, oauthTestWorld(tn, oauthTestFalse()), "global"); r.Reason != OAuthReasonNoEvoSTSAuthServer {
			t.Errorf("got %s %q", r.ResultType, r.Reason)
		}
	})
	t.Run("New-AuthServer accepts the wizard's tenant-ID URL", func(t *testing.T) {
		tn := hcw("global", false, true)
		tn.OnPrem.AuthServers = nil
		w := oauthTestWorld(tn, oauthTestFalse())
		p := cloud.MustLookup("global")
		for _, c := range []exchange.Command{
			{Cmdlet: "New-AuthServer", Parameters: map[string]any{"Name": "ACS - " + g1, "AuthMetadataUrl": p.ACSMetadataURL(oauthTestTenantID)}},
			{Cmdlet: "New-AuthServer", Parameters: map[string]any{"Name": "EvoSts - " + g1, "AuthMetadataUrl": p.EvoSTSMetadataURL("contoso.onmicrosoft.com"), "Type": "AzureAD"}},
		} {
			rows, err := w.Invoke(OnPrem, oauthTestTenantID, c)
			if err != nil || len(rows) != 1 || rows[0]["Realm"] != oauthTestTenantID {
				t.Fatalf("%v: rows %v, err %v", c.Parameters["Name"], rows, err)
			}
		}
		if r := oauthToCloud(t, w, "global"); r.ResultType != OAuthResultSuccess {
			t.Errorf("got %q\n%s", r.Reason, r.Detail)
		}
	})
}

// TestOAuthConnectivityKeyMatchedByCertificate: Entra checks signatures
// with the key bytes, so a key is the auth certificate's when it holds
// that certificate, whatever its keyId or customKeyIdentifier
// (shared/reference/graph-entities.tsv keyCredential; the portal and
// Microsoft's scripts each label keys their own way).
func TestOAuthConnectivityKeyMatchedByCertificate(t *testing.T) {
	for _, dedicated := range []bool{false, true} {
		keys := func(tn *Tenant) []KeyCredential {
			if dedicated {
				return tn.Entra.Applications[0].KeyCredentials
			}
			return tn.Entra.ServicePrincipals[0].KeyCredentials
		}
		for name, mutate := range map[string]func(k *KeyCredential){
			"no customKeyIdentifier":      func(k *KeyCredential) { k.CustomKeyIdentifier = "" },
			"another customKeyIdentifier": func(k *KeyCredential) { k.CustomKeyIdentifier = "UG9ydGFsIHVwbG9hZA==" },
			"another keyId and label": func(k *KeyCredential) {
				k.KeyID, k.DisplayName = "5d2e3f40-0000-4000-8000-000000000000", "CN=Microsoft Exchange Server Auth Certificate"
			},
			"identifier of another cert":   func(k *KeyCredential) { k.CustomKeyIdentifier = strings.Repeat("AB", 20) },
			"upper-case thumbprint string": func(k *KeyCredential) { k.CustomKeyIdentifier = strings.ToUpper(k.CustomKeyIdentifier) },
		} {
			t.Run(fmt.Sprintf("dedicated=%v/%s", dedicated, name), func(t *testing.T) {
				tn := oauthTestTenant("global", dedicated)
				mutate(&keys(tn)[0])
				w := oauthTestWorld(tn, oauthTestFalse())
				for dir, r := range map[string]oauthTestResult{"to cloud": oauthToCloud(t, w, "global"), "to on-prem": oauthToOnPrem(t, w)} {
					if r.ResultType != OAuthResultSuccess {
						t.Errorf("%s: the key holds the auth certificate, got %q", dir, r.Reason)
					}
				}
			})
		}
	}
}
