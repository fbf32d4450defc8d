package sim

// Test-OAuthConnectivity for both sides, on the legacy first-party path
// and on the dedicated application's.
//
// The simulated cmdlet does not look at what hybridflow did; it evaluates
// the tenant's real state, the way Exchange and Entra would when a token is
// requested and presented, so a green verification in the simulator means
// the configuration really is complete. A failed test is a result row with
// ResultType Error, never a cmdlet error: that is how Exchange reports it,
// and the verify step must read rows, not exceptions.
//
// The row's Detail carries, one per line:
//
//	[The SMTP address has no mailbox associated with it.]   (noise, see below)
//	The remote server returned an error: (401) Unauthorized.  (or (403) Forbidden, or Unable to connect ...)
//	Reason: <one of the OAuthReason* constants>
//	Hint: <what exactly was expected; free text>
//
// The Reason line is stable and meant for operators; the Hint line is not.
// Real Exchange prints the no-mailbox sentence even when the test passes
// (the seeds say to ignore it), so the simulator prints it whenever the
// mailbox is unknown while ResultType still reports the real outcome.

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
)

// Test-OAuthConnectivity result values and fixed texts.
const (
	OAuthResultSuccess = "Success"
	OAuthResultError   = "Error"
	// OAuthNoMailboxNoise is the sentence Exchange prints when -Mailbox has
	// no mailbox on the calling side; callers must ignore it (docs/microsoft-behaviour.md,
	// "The documented steps").
	OAuthNoMailboxNoise = "The SMTP address has no mailbox associated with it."

	oauthTask           = "Checking EWS API Call Under Oauth"
	oauthResultIdentity = "Microsoft.Exchange.Security.OAuth.ValidationResultNodeId"
)

// Reasons a simulated Test-OAuthConnectivity fails, as printed on the
// "Reason:" line of Detail. They are part of the simulator's contract:
// the verify workflow shows them to operators and tests match them.
const (
	OAuthReasonUnknownTarget            = "TargetUri is not an endpoint of the partner organization"
	OAuthReasonNoACSAuthServer          = "no auth server of type MicrosoftACS for the tenant's realm"
	OAuthReasonACSAuthServerDisabled    = "the ACS auth server is disabled"
	OAuthReasonNoEvoSTSAuthServer       = "no auth server of type AzureAD for the tenant's realm"
	OAuthReasonEvoSTSAuthServerDisabled = "the evoSTS auth server is disabled"
	OAuthReasonNoPartnerApplication     = "no partner application 00000002-0000-0ff1-ce00-000000000000 with an empty realm"
	OAuthReasonPartnerAppDisabled       = "the Exchange Online partner application is disabled"
	OAuthReasonNoAuthCertificate        = "no current auth certificate is configured (Get-AuthConfig)"
	OAuthReasonAuthCertificateNotFound  = "the current auth certificate is not in the certificate store"
	OAuthReasonAuthCertificateExpired   = "the current auth certificate has expired"
	OAuthReasonNoFirstPartySP           = "the Exchange Online first-party service principal does not exist in the tenant"
	OAuthReasonLegacyBlocked            = "EWS access through the shared first-party service principal is blocked; configure the dedicated Exchange hybrid application"
	OAuthReasonKeyNotOnFirstPartySP     = "the auth certificate's key is not on the first-party service principal"
	OAuthReasonNoDedicatedApp           = "the dedicated Exchange hybrid application does not exist"
	OAuthReasonAppIDMismatch            = "the evoSTS auth server's ApplicationIdentifier is not the dedicated application's appId"
	OAuthReasonNoDedicatedSP            = "the dedicated Exchange hybrid application has no service principal"
	OAuthReasonNoConsent                = "the dedicated Exchange hybrid application has no admin consent for full_access_as_app"
	OAuthReasonKeyNotOnDedicatedApp     = "the auth certificate's key is not on the dedicated Exchange hybrid application"
	OAuthReasonNoSettingOverride        = "the EnableExchangeHybrid3PAppFeature setting override is missing"
	OAuthReasonOverrideNotRefreshed     = "the setting override has not been loaded (VariantConfiguration refresh pending)"
	OAuthReasonNoSPN                    = "no service principal name on the first-party service principal covers the target host"
	OAuthReasonNotPropagated            = "the configuration has not propagated yet"
)

// OAuthReasons lists every reason above, for documentation and tests.
var OAuthReasons = []string{
	OAuthReasonUnknownTarget, OAuthReasonNoACSAuthServer, OAuthReasonACSAuthServerDisabled,
	OAuthReasonNoEvoSTSAuthServer, OAuthReasonEvoSTSAuthServerDisabled, OAuthReasonNoPartnerApplication,
	OAuthReasonPartnerAppDisabled, OAuthReasonNoAuthCertificate, OAuthReasonAuthCertificateNotFound,
	OAuthReasonAuthCertificateExpired, OAuthReasonNoFirstPartySP, OAuthReasonLegacyBlocked,
	OAuthReasonKeyNotOnFirstPartySP, OAuthReasonNoDedicatedApp, OAuthReasonAppIDMismatch,
	OAuthReasonNoDedicatedSP, OAuthReasonNoConsent, OAuthReasonKeyNotOnDedicatedApp,
	OAuthReasonNoSettingOverride, OAuthReasonOverrideNotRefreshed, OAuthReasonNoSPN, OAuthReasonNotPropagated,
}

const (
	// oauthFullAccessAsApp is Exchange Online's full_access_as_app app role.
	oauthFullAccessAsApp = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
	// oauthDedicatedAppPrefix + the on-prem organization GUID names the
	// application ConfigureExchangeHybridApplication.ps1 creates.
	oauthDedicatedAppPrefix  = "ExchangeServerApp-"
	oauthOverrideComponent   = "Global"
	oauthOverrideSection     = "ExchangeOnpremAsThirdPartyAppId"
	oauthOverrideEnabledTrue = "enabled=true"
)

// legacyFirstPartyBlockDate is the day Exchange Online stopped accepting
// EWS calls through the shared first-party service principal
// (docs/microsoft-behaviour.md, "Mode choice and mixed builds").
var legacyFirstPartyBlockDate = time.Date(2025, time.October, 31, 0, 0, 0, 0, time.UTC)

// LegacyFirstPartyBlockedByDefault is Microsoft's block as a rule: from 31 October
// 2025 Exchange Online refuses on-prem EWS calls made with tokens for the
// shared first-party application in the worldwide cloud and in 21Vianet.
// GCC counts as worldwide because it is served by the same Exchange Online
// host (outlook.office365.com); GCC High and DoD are not named by
// Microsoft's announcement, so they stay open. World.LegacyFirstPartyBlocked overrides this rule.
func LegacyFirstPartyBlockedByDefault(c cloud.Name, now time.Time) bool {
	switch c {
	case cloud.Global, cloud.GCC, cloud.China:
		return !now.Before(legacyFirstPartyBlockDate)
	}
	return false
}

// legacyFirstPartyBlocked applies the world's override, if any, to the
// default rule. Callers hold w.mu.
func (w *World) legacyFirstPartyBlocked(c cloud.Name) bool {
	if w.LegacyFirstPartyBlocked != nil {
		return *w.LegacyFirstPartyBlocked
	}
	return LegacyFirstPartyBlockedByDefault(c, w.Now())
}

func init() {
	register(OnPrem, "Test-OAuthConnectivity", testOAuthConnectivity)
	register(Online, "Test-OAuthConnectivity", testOAuthConnectivity)
}

// oauthFailure is why a test fails: the HTTP status the caller would have
// seen (0 when no HTTP exchange happened), a stable reason and a hint.
type oauthFailure struct {
	Status int
	Reason string
	Hint   string
}

func oauthFail(status int, reason, hintFormat string, args ...any) *oauthFailure {
	return &oauthFailure{Status: status, Reason: reason, Hint: fmt.Sprintf(hintFormat, args...)}
}

func (f *oauthFailure) statusLine() string {
	switch f.Status {
	case 401:
		return "The remote server returned an error: (401) Unauthorized."
	case 403:
		return "The remote server returned an error: (403) Forbidden."
	case 0:
		return "Unable to connect to the remote server."
	}
	return fmt.Sprintf("The remote server returned an error: (%d).", f.Status)
}

// testOAuthConnectivity implements -Service EWS -TargetUri -Mailbox. Only
// the EWS service is modelled: it is the one the procedure verifies.
func testOAuthConnectivity(c *Call) ([]exchange.Row, *exchange.Error) {
	if svc := c.Params.String("Service"); !strings.EqualFold(svc, "EWS") {
		return nil, invalid("Cannot bind parameter 'Service': the simulator implements only EWS, got %q.", svc)
	}
	raw := c.Params.String("TargetUri")
	target, err := url.Parse(strings.TrimSpace(raw))
	if raw == "" || err != nil || !target.IsAbs() || target.Hostname() == "" {
		return nil, invalid("Cannot bind parameter 'TargetUri': %q is not an absolute URI.", raw)
	}
	mailbox := c.Params.String("Mailbox")
	if mailbox == "" {
		return nil, invalid("Cannot bind parameter 'Mailbox' to an empty value.")
	}
	p, perr := oauthProfile(c.Tenant)
	if perr != nil {
		return nil, perr
	}
	k := &oauthCheck{w: c.World, t: c.Tenant, p: p, now: c.World.Now()}

	var f *oauthFailure
	var mode string
	if c.Side == OnPrem {
		f, mode = k.toCloud(target)
	} else {
		f, mode = k.toOnPrem(target)
	}
	if f == nil && c.Tenant.Behaviour.PendingPropagation > 0 {
		// Only a test that would pass consumes the delay: propagation is
		// about a complete configuration not being visible yet.
		c.Tenant.Behaviour.PendingPropagation--
		f = oauthFail(401, OAuthReasonNotPropagated, "%d more check(s) until the change is visible", c.Tenant.Behaviour.PendingPropagation)
	}

	var lines []string
	if !oauthHasMailbox(c.Org, mailbox) {
		lines = append(lines, OAuthNoMailboxNoise)
	}
	result := OAuthResultSuccess
	if f != nil {
		result = OAuthResultError
		lines = append(lines, f.statusLine(), "Reason: "+f.Reason)
		if f.Hint != "" {
			lines = append(lines, "Hint: "+f.Hint)
		}
	} else {
		lines = append(lines, fmt.Sprintf("The OAuth call to %s succeeded (%s).", target.String(), mode))
	}
	return []exchange.Row{{
		"Task":        oauthTask,
		"Detail":      strings.Join(lines, "\n"),
		"ResultType":  result,
		"Identity":    oauthResultIdentity,
		"IsValid":     true,
		"ObjectState": "New",
	}}, nil
}

// oauthProfile is the tenant's cloud; a world without one is worldwide.
func oauthProfile(t *Tenant) (cloud.Profile, *exchange.Error) {
	name := t.Cloud
	if name == "" {
		name = string(cloud.Global)
	}
	p, err := cloud.Lookup(name)
	if err != nil {
		return cloud.Profile{}, invalid("tenant %s: %v", t.ID, err)
	}
	return p, nil
}

// oauthInitialDomain is the tenant's initial (MOERA) domain, which the
// auth servers' metadata URLs name.
func oauthInitialDomain(t *Tenant) string {
	if t.InitialDomain != "" {
		return t.InitialDomain
	}
	for _, d := range t.Entra.Domains {
		if d.IsInitial {
			return d.ID
		}
	}
	return ""
}

// oauthHasMailbox accepts a full SMTP address or a bare alias, as -Mailbox does.
func oauthHasMailbox(org *ExchangeOrg, mailbox string) bool {
	for _, m := range org.Mailboxes {
		if strings.EqualFold(m, mailbox) {
			return true
		}
		if local, _, ok := strings.Cut(m, "@"); ok && !strings.Contains(mailbox, "@") && strings.EqualFold(local, mailbox) {
			return true
		}
	}
	return false
}

// oauthCheck evaluates one tenant at one instant; callers hold w.mu.
type oauthCheck struct {
	w   *World
	t   *Tenant
	p   cloud.Profile
	now time.Time
}

// toCloud is the on-prem → Exchange Online test. It returns the failure,
// or nil and a description of the path that worked.
func (k *oauthCheck) toCloud(target *url.URL) (*oauthFailure, string) {
	if !strings.EqualFold(target.Hostname(), k.p.ExchangeOnlineHost) {
		return oauthFail(0, OAuthReasonUnknownTarget, "Exchange Online in cloud %s is %s", k.p.Name, k.p.EWSURL()), ""
	}
	evo, f := k.authServers()
	if f != nil {
		return f, ""
	}
	if f := k.partnerApplication(); f != nil {
		return f, ""
	}
	cert, f := k.authCertificate()
	if f != nil {
		return f, ""
	}
	if evo.ApplicationIdentifier != "" {
		return k.dedicated(evo, cert, true)
	}
	if k.w.legacyFirstPartyBlocked(k.p.Name) {
		return oauthFail(403, OAuthReasonLegacyBlocked, "cloud %s enforces the block since %s", k.p.Name, legacyFirstPartyBlockDate.Format(time.DateOnly)), ""
	}
	return k.legacy(cert)
}

// toOnPrem is the Exchange Online → on-prem test. Exchange Online asks for
// a token whose audience is the on-prem host, so the first-party SPN must
// cover it; on-prem then needs its partner application enabled and the
// key of its auth certificate on the principal it trusts. Consent and the
// setting override concern only calls into Exchange Online, so they are
// not checked here.
func (k *oauthCheck) toOnPrem(target *url.URL) (*oauthFailure, string) {
	host := strings.ToLower(target.Hostname())
	if !k.onPremHost(host) {
		return oauthFail(0, OAuthReasonUnknownTarget, "host %s is not the internal or external host of an on-premises virtual directory", host), ""
	}
	fp := k.firstPartySP()
	if fp == nil {
		return oauthFail(401, OAuthReasonNoFirstPartySP, "no service principal with appId %s", cloud.FirstPartyAppID), ""
	}
	if !k.spnCovers(fp, host) {
		want := k.p.SPNsForHosts([]string{host})
		return oauthFail(401, OAuthReasonNoSPN, "cloud %s expects %s", k.p.Name, strings.Join(want, ", ")), ""
	}
	if f := k.partnerApplication(); f != nil {
		return f, ""
	}
	cert, f := k.authCertificate()
	if f != nil {
		return f, ""
	}
	// The mode is the on-prem organization's: dedicated once its evoSTS
	// auth server names an application.
	if evo := k.findAuthServer(oauthIsAzureAD); evo != nil && evo.ApplicationIdentifier != "" {
		return k.dedicated(evo, cert, false)
	}
	return k.legacy(cert)
}

func oauthIsACS(a *AuthServer) bool {
	return a.Type == "" || strings.EqualFold(a.Type, "MicrosoftACS") || strings.EqualFold(a.Type, "ACS")
}

func oauthIsAzureAD(a *AuthServer) bool { return strings.EqualFold(a.Type, "AzureAD") }

func oauthSameURL(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(strings.TrimSpace(a), "/"), strings.TrimRight(strings.TrimSpace(b), "/"))
}

// findAuthServer recognises the tenant's auth server of a kind the way
// Exchange tells issuers apart: by type and realm (the tenant ID the
// metadata document names), not by name or metadata URL. The Hybrid
// Configuration Wizard names them "ACS - <guid>" and "EvoSts - <guid>" and
// puts the tenant ID in the ACS URL where the manual procedure puts the
// initial domain; both are the same issuer. An enabled match wins over a
// disabled one.
func (k *oauthCheck) findAuthServer(kind func(*AuthServer) bool) *AuthServer {
	var found *AuthServer
	for _, a := range k.t.OnPrem.AuthServers {
		if !kind(a) || !strings.EqualFold(onpremRealm(k.t, a), k.t.ID) {
			continue
		}
		if a.Enabled {
			return a
		}
		if found == nil {
			found = a
		}
	}
	return found
}

// authServers checks step 1 and returns the evoSTS server, whose
// ApplicationIdentifier decides the mode.
func (k *oauthCheck) authServers() (*AuthServer, *oauthFailure) {
	initial := oauthInitialDomain(k.t)
	acs := k.findAuthServer(oauthIsACS)
	if acs == nil {
		return nil, oauthFail(401, OAuthReasonNoACSAuthServer, "expected an auth server of type MicrosoftACS for realm %s, such as AuthMetadataUrl %s", k.t.ID, k.p.ACSMetadataURL(initial))
	}
	if !acs.Enabled {
		return nil, oauthFail(401, OAuthReasonACSAuthServerDisabled, "auth server %q", acs.Name)
	}
	evo := k.findAuthServer(oauthIsAzureAD)
	if evo == nil {
		return nil, oauthFail(401, OAuthReasonNoEvoSTSAuthServer, "expected an auth server of type AzureAD for realm %s, such as AuthMetadataUrl %s", k.t.ID, k.p.EvoSTSMetadataURL(initial))
	}
	if !evo.Enabled {
		return nil, oauthFail(401, OAuthReasonEvoSTSAuthServerDisabled, "auth server %q", evo.Name)
	}
	return evo, nil
}

// partnerApplication checks step 2 on the on-prem side.
func (k *oauthCheck) partnerApplication() *oauthFailure {
	var disabled *PartnerApplication
	for _, pa := range k.t.OnPrem.PartnerApplications {
		if !strings.EqualFold(pa.ApplicationIdentifier, cloud.FirstPartyAppID) || pa.Realm != "" {
			continue
		}
		if pa.Enabled {
			return nil
		}
		disabled = pa
	}
	if disabled != nil {
		return oauthFail(401, OAuthReasonPartnerAppDisabled, "partner application %q", disabled.Name)
	}
	return oauthFail(401, OAuthReasonNoPartnerApplication, "")
}

// authCertificate finds the current auth certificate in the store and
// checks it is valid now: tokens signed with anything else are refused.
func (k *oauthCheck) authCertificate() (*ExchangeCertificate, *oauthFailure) {
	thumb := k.t.OnPrem.AuthConfig.CurrentCertificateThumbprint
	if thumb == "" {
		return nil, oauthFail(401, OAuthReasonNoAuthCertificate, "")
	}
	for _, c := range k.t.OnPrem.Certificates {
		if !certs.SameThumbprint(c.Thumbprint, thumb) {
			continue
		}
		if k.now.After(c.NotAfter) {
			return nil, oauthFail(401, OAuthReasonAuthCertificateExpired, "certificate %s expired on %s", c.Thumbprint, c.NotAfter.UTC().Format(time.DateOnly))
		}
		return c, nil
	}
	return nil, oauthFail(401, OAuthReasonAuthCertificateNotFound, "thumbprint %s", thumb)
}

func (k *oauthCheck) firstPartySP() *ServicePrincipal {
	for _, sp := range k.t.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			return sp
		}
	}
	return nil
}

// spnCovers accepts only SPNs in this cloud's form (docs/microsoft-behaviour.md,
// "Per-cloud endpoints and SPNs"): a 21Vianet
// tenant with https://host/ SPNs is as broken as one without any.
func (k *oauthCheck) spnCovers(sp *ServicePrincipal, host string) bool {
	for _, spn := range sp.ServicePrincipalNames {
		s := strings.ToLower(spn)
		inForm := strings.HasPrefix(s, "https://")
		if k.p.SPNForm == cloud.SPNWildcardAuthority {
			inForm = strings.HasPrefix(s, cloud.FirstPartyAppID+"/")
		}
		if inForm && cloud.SPNCovers(spn, host) {
			return true
		}
	}
	return false
}

// onPremHost reports whether host serves one of the on-prem virtual
// directories, i.e. whether Exchange Online could reach on-prem there.
func (k *oauthCheck) onPremHost(host string) bool {
	for _, vd := range k.t.OnPrem.VirtualDirectories {
		if cloud.HostOfURL(vd.ExternalURL) == host || cloud.HostOfURL(vd.InternalURL) == host {
			return true
		}
	}
	return false
}

// hasKey reports whether keys hold an unexpired credential for cert.
// Entra checks a token's signature with the key material itself, so a key
// matches by the certificate it holds (its DER), whatever its keyId,
// customKeyIdentifier or display name say.
func (k *oauthCheck) hasKey(keys []KeyCredential, cert *ExchangeCertificate) bool {
	for _, kc := range keys {
		if !kc.EndDateTime.IsZero() && !k.now.Before(kc.EndDateTime) {
			continue
		}
		if len(kc.Key) > 0 && bytes.Equal(kc.Key, cert.DER) {
			return true
		}
	}
	return false
}

// legacy checks the pre-2025 path: the key on the first-party SP.
func (k *oauthCheck) legacy(cert *ExchangeCertificate) (*oauthFailure, string) {
	fp := k.firstPartySP()
	if fp == nil {
		return oauthFail(401, OAuthReasonNoFirstPartySP, "no service principal with appId %s", cloud.FirstPartyAppID), ""
	}
	if !k.hasKey(fp.KeyCredentials, cert) {
		return oauthFail(401, OAuthReasonKeyNotOnFirstPartySP, "no unexpired key for certificate %s", cert.Thumbprint), ""
	}
	return nil, "first-party service principal " + cloud.FirstPartyAppID
}

// dedicated checks the dedicated-application path. toCloud adds
// what only calls into Exchange Online need: consent and the override.
func (k *oauthCheck) dedicated(evo *AuthServer, cert *ExchangeCertificate, toCloud bool) (*oauthFailure, string) {
	name := oauthDedicatedAppPrefix + k.t.OnPrem.OrganizationGUID
	var app *Application
	for _, a := range k.t.Entra.Applications {
		if strings.EqualFold(a.DisplayName, name) {
			app = a
			break
		}
	}
	if app == nil {
		return oauthFail(401, OAuthReasonNoDedicatedApp, "expected an application named %s", name), ""
	}
	if !strings.EqualFold(app.AppID, evo.ApplicationIdentifier) {
		return oauthFail(401, OAuthReasonAppIDMismatch, "auth server %q has %s, application %s has %s", evo.Name, evo.ApplicationIdentifier, name, app.AppID), ""
	}
	var sp *ServicePrincipal
	for _, s := range k.t.Entra.ServicePrincipals {
		if strings.EqualFold(s.AppID, app.AppID) {
			sp = s
			break
		}
	}
	if sp == nil {
		return oauthFail(401, OAuthReasonNoDedicatedSP, "no service principal with appId %s", app.AppID), ""
	}
	if toCloud {
		fp := k.firstPartySP()
		if fp == nil {
			return oauthFail(401, OAuthReasonNoFirstPartySP, "no service principal with appId %s", cloud.FirstPartyAppID), ""
		}
		if !k.consented(sp, fp) {
			return oauthFail(401, OAuthReasonNoConsent, "no appRoleAssignment principal %s resource %s appRole %s", sp.ID, fp.ID, oauthFullAccessAsApp), ""
		}
	}
	if !k.hasKey(app.KeyCredentials, cert) {
		return oauthFail(401, OAuthReasonKeyNotOnDedicatedApp, "no unexpired key for certificate %s on application %s", cert.Thumbprint, app.AppID), ""
	}
	if toCloud {
		// Without the override on-prem keeps asking for first-party tokens,
		// which Exchange Online refuses for a tenant that has the dedicated
		// app: the documented 403 symptom.
		if !k.hasOverride() {
			return oauthFail(403, OAuthReasonNoSettingOverride, "New-SettingOverride -Component %s -Section %s -Parameters Enabled=true", oauthOverrideComponent, oauthOverrideSection), ""
		}
		if !k.t.OnPrem.VariantConfigRefreshed {
			return oauthFail(403, OAuthReasonOverrideNotRefreshed, "Get-ExchangeDiagnosticInfo -Process Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh"), ""
		}
	}
	return nil, "dedicated application " + app.AppID
}

func (k *oauthCheck) consented(sp, fp *ServicePrincipal) bool {
	for _, a := range k.t.Entra.AppRoleAssignments {
		if strings.EqualFold(a.PrincipalID, sp.ID) && strings.EqualFold(a.ResourceID, fp.ID) && strings.EqualFold(a.AppRoleID, oauthFullAccessAsApp) {
			return true
		}
	}
	return false
}

// hasOverride recognises the override by component, section and value,
// not by name: the CSS-Exchange script skips creating one when any
// override for the section exists.
func (k *oauthCheck) hasOverride() bool {
	for _, o := range k.t.OnPrem.SettingOverrides {
		if !strings.EqualFold(o.Component, oauthOverrideComponent) || !strings.EqualFold(o.Section, oauthOverrideSection) {
			continue
		}
		for _, p := range o.Parameters {
			if strings.EqualFold(strings.ReplaceAll(p, " ", ""), oauthOverrideEnabledTrue) {
				return true
			}
		}
	}
	return false
}
