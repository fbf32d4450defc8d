package plan

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Errors Derive wraps; all are non-retryable for the caller because only a
// change to the inventory or to the on-prem organisation fixes them.
var (
	// ErrMissingInput: a value could be neither discovered nor taken from
	// the inventory's overrides.
	ErrMissingInput = errors.New("missing input")
	// ErrAuthCertificate: the auth certificate to upload is absent or
	// expired.
	ErrAuthCertificate = errors.New("auth certificate problem")
	// ErrForeignDomain: a domain the inventory names is not a verified
	// domain of the tenant in Entra, so connectors and auth servers would
	// point at a domain someone else may own.
	ErrForeignDomain = errors.New("domain not verified in the tenant")
)

// Names hybridflow gives what it creates, and the names Microsoft fixes
// (the application prefix, the setting override, the app role).
const (
	OnPremIOCName         = "ExchangeHybridOnPremisesToOnline"
	OnlineIOCName         = "ExchangeHybridOnlineToOnPremises"
	DedicatedAppPrefix    = "ExchangeServerApp-"
	OverrideName          = "EnableExchangeHybrid3PAppFeature"
	OverrideComponent     = "Global"
	OverrideSection       = "ExchangeOnpremAsThirdPartyAppId"
	OverrideParameter     = "Enabled=true"
	FullAccessAsAppRoleID = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
	authCertSubject       = "microsoft exchange server auth certificate"
	uploadedKeyName       = "hybridflow: Exchange auth certificate "
)

// Microsoft-owned suffixes of every cloud. A domain under one of them is a
// tenant's initial or routing domain (or another MOERA-style domain), never
// an on-prem SMTP domain Exchange Online should route back on-prem.
var microsoftSuffixes = []string{"onmicrosoft.com", "onmicrosoft.us", "onmschina.cn"}

// Derive computes what the tenant should look like. Inventory overrides
// win over discovery; where discovery has no answer either, Derive fails
// with every missing value named at once (errors.Join), so an operator
// fixes the inventory in one pass. Warnings are for things that will work
// but deserve a look.
//
// Discovery rules, each overridable per tenant:
//   - routing domain: the accepted domain ending in the cloud's routing
//     suffix; with several, the one named after the initial domain.
//   - SMTP domains: accepted domains, the default first, minus initial,
//     routing and other Microsoft-owned domains (step 7 excludes them).
//   - SPN hosts: every host of the WebServices, Mapi, OAB and Autodiscover
//     virtual directories' internal and external URLs (the manual
//     procedure's SPN step).
//   - on-prem autodiscover: the Autodiscover virtual directory's external
//     host, else autodiscover.<first SMTP domain> — the endpoint the manual
//     procedure names as usual — always with
//     /autodiscover/autodiscover.svc, the endpoint IntraOrganizationConnectors
//     speak.
//   - external EWS: the WebServices ExternalUrl, preferring a server at
//     2013 SP1 or later (the availability address space step asks for
//     exactly that).
//   - mailboxes for verification: the first one discovery found.
func Derive(t TenantFacts, p cloud.Profile, o Observed) (Desired, []string, error) {
	if t.Cloud != "" {
		if lp, err := cloud.Lookup(t.Cloud); err != nil || lp.Name != p.Name {
			return Desired{}, nil, fmt.Errorf("%w: tenant cloud %q does not match profile %q", ErrInvalidSetting, t.Cloud, p.Name)
		}
	}
	if t.ExchangeOnlineHost != "" {
		p.ExchangeOnlineHost = strings.ToLower(strings.TrimSpace(t.ExchangeOnlineHost))
	}
	x := &deriver{t: t, p: p, o: o}
	// Each part reads what the parts before it derived; the order is also
	// the order of the warnings and errors.
	for _, part := range []func(){
		x.authServers, x.domains, x.versions, x.spns, x.endpoints,
		x.connectors, x.verification, x.keys, x.dedicatedApp,
	} {
		part()
	}
	if len(o.TenantDomains) == 0 {
		x.warn = append(x.warn, "Entra reported no verified tenant domains, so the inventory's domains could not be checked against the tenant")
	}
	if len(x.errs) > 0 {
		return Desired{}, x.warn, errors.Join(x.errs...)
	}
	return x.d, x.warn, nil
}

// deriver is one Derive call: its inputs, the configuration so far, what
// the later parts need from the earlier ones, and the warnings and errors
// collected on the way (every problem is reported, not just the first).
type deriver struct {
	t TenantFacts
	p cloud.Profile
	o Observed
	d Desired

	smtp    []string
	servers []Server
	need    bool
	needWhy string

	warn []string
	errs []error
}

func (x *deriver) missing(format string, args ...any) {
	x.errs = append(x.errs, fmt.Errorf("%w: "+format, append([]any{ErrMissingInput}, args...)...))
}

func (x *deriver) fail(err error) {
	if err != nil {
		x.errs = append(x.errs, err)
	}
}

// authServers: step 1's names and URLs for new servers; an existing server
// is the tenant's when its realm is the tenant ID, and the URL forms
// naming the tenant ID (the Hybrid Configuration Wizard's ACS URL)
// identify one whose realm is not known.
func (x *deriver) authServers() {
	p, d := x.p, &x.d
	d.TenantID, d.Cloud = strings.ToLower(x.t.ID), string(p.Name)
	d.InitialDomain = normDomain(x.t.InitialDomain)
	if d.InitialDomain == "" {
		x.missing("the tenant's initial domain is not set (initial_domain)")
	}
	d.ACS = AuthServerSpec{Name: p.ACSName, Type: AuthServerTypeACS, MetadataURL: p.ACSMetadataURL(d.InitialDomain),
		Realm: d.TenantID, OtherMetadataURLs: otherURLs(p.ACSMetadataURL, d.InitialDomain, d.TenantID)}
	d.EvoSTS = AuthServerSpec{Name: p.EvoSTSName, Type: AuthServerTypeAzureAD, MetadataURL: p.EvoSTSMetadataURL(d.InitialDomain),
		Realm: d.TenantID, OtherMetadataURLs: otherURLs(p.EvoSTSMetadataURL, d.InitialDomain, d.TenantID)}
}

// domains: the routing and SMTP domains (steps 6, 7, 8), each checked
// against the tenant's verified domains.
func (x *deriver) domains() {
	routing, err := deriveRouting(x.t, x.p, x.o, x.d.InitialDomain)
	x.fail(err)
	x.d.RoutingDomain = routing
	smtp, w := deriveSMTP(x.t, x.p, x.o, x.d.InitialDomain, routing)
	x.warn = append(x.warn, w...)
	if len(smtp) == 0 {
		x.missing("no on-premises SMTP domain is left once initial, routing and Microsoft-owned domains are excluded; set smtp_domains")
	}
	x.d.SMTPDomains, x.smtp = smtp, smtp
	x.errs = append(x.errs, foreignDomains(x.t, x.o, x.d.InitialDomain, routing, smtp)...)
}

// versions: the servers' builds decide the mode and whether step 8's
// availability address space is needed.
func (x *deriver) versions() {
	servers, err := ParseServers(x.o.Servers)
	x.fail(err)
	x.servers = servers
	mode, why, w, err := deriveMode(x.t, x.p, servers)
	x.warn = append(x.warn, w...)
	x.fail(err)
	x.d.Mode, x.d.ModeReason = mode, why
	x.need, x.needWhy = NeedsAvailabilityAddressSpace(servers)
}

// spns: step 5's hosts and the names registered for them.
func (x *deriver) spns() {
	x.d.SPNHosts = deriveSPNHosts(x.t, x.o)
	if len(x.d.SPNHosts) == 0 {
		x.missing("no internal or external URL on the WebServices, Mapi, OAB or Autodiscover virtual directories; set spn_hosts")
	}
	x.d.SPNs = x.p.SPNsForDomainHosts(x.d.SPNHosts, SPNDomains(x.o, x.smtp))
}

// endpoints: the on-premises EWS and autodiscover URLs Exchange Online
// reaches.
func (x *deriver) endpoints() {
	ews, w := deriveEWS(x.t, x.o, x.servers)
	x.warn = append(x.warn, w...)
	x.d.OnPremEWSURL = ews
	if ews == "" {
		x.missing("no external EWS URL: Get-WebServicesVirtualDirectory shows no ExternalUrl, and Exchange Online needs one to reach on-premises; set onprem_ews_external_url")
	}
	x.d.OnPremAutodiscoverURL = deriveAutodiscover(x.t, x.o, x.smtp)
}

// connectors: steps 6-8. Connectors pointing at an endpoint Microsoft uses
// for their direction are adopted whatever their name: towards Exchange
// Online the manual procedure's and the wizard's autodiscover hosts,
// towards on-premises the organisation's own hosts.
func (x *deriver) connectors() {
	p, d := x.p, &x.d
	d.OnPremIOC = IOCSpec{Name: OnPremIOCName, DiscoveryEndpoint: p.AutodiscoverURL(), TargetAddressDomains: nonEmpty(d.RoutingDomain),
		AcceptedEndpoints: p.MicrosoftDiscoveryEndpoints()}
	d.OnlineIOC = IOCSpec{Name: OnlineIOCName, DiscoveryEndpoint: d.OnPremAutodiscoverURL, TargetAddressDomains: x.smtp,
		AcceptedEndpoints: onPremAutodiscoverEndpoints(x.o), AcceptedHostDomains: ownDomains(p, x.o, d.InitialDomain, d.RoutingDomain, x.smtp)}
	d.Availability = AvailabilitySpec{Needed: x.need, Reason: x.needWhy, ForestName: d.RoutingDomain, ProxyURL: d.OnPremEWSURL}
}

// verification: what Test-OAuthConnectivity is run against, both ways.
func (x *deriver) verification() {
	d := &x.d
	d.VerifyCloudTarget = x.p.EWSURL()
	if u, err := url.Parse(d.OnPremEWSURL); err == nil && u.Host != "" {
		d.VerifyOnPremTarget = u.Scheme + "://" + u.Host + "/metadata/json/1"
	}
	d.OnPremMailbox = firstNonEmpty(x.t.OnPremMailbox, x.o.OnPremMailboxes...)
	d.CloudMailbox = firstNonEmpty(x.t.CloudMailbox, x.o.CloudMailboxes...)
	if d.OnPremMailbox == "" {
		x.warn = append(x.warn, "no on-premises mailbox was found for Test-OAuthConnectivity; set onprem_mailbox or verification cannot run")
	}
	if d.CloudMailbox == "" {
		x.warn = append(x.warn, "no Exchange Online mailbox was found for Test-OAuthConnectivity; set cloud_mailbox or verification cannot run")
	}
}

// keys: steps 3 and 4, and the first-party service principal they (or
// the SPNs) go on.
func (x *deriver) keys() {
	keys, w, err := deriveKeys(x.o)
	x.warn = append(x.warn, w...)
	x.fail(err)
	x.d.Keys = keys
	if x.o.FirstPartySP.ID == "" {
		x.missing("the tenant has no Exchange Online first-party service principal (%s); is Exchange Online licensed?", cloud.FirstPartyAppID)
	}
}

// dedicatedApp: the dedicated application's name, the domains its auth
// server is set up with, and the legacy keys the clean-up removes.
func (x *deriver) dedicatedApp() {
	if x.d.Mode != ModeDedicatedApp {
		return
	}
	guid := strings.ToLower(firstNonEmpty(x.t.OrganizationGUID, x.o.OrganizationGUID))
	if guid == "" {
		x.missing("the Exchange organization GUID (Get-OrganizationConfig) is unknown, and the dedicated application is named after it; set organization_guid")
	} else {
		x.d.DedicatedAppName = DedicatedAppPrefix + guid
	}
	doms, err := authServerDomains(x.o, x.d.ACS, x.d.InitialDomain)
	x.fail(err)
	x.d.AuthServerDomains = doms
	x.d.LegacyThumbprints = legacyThumbprints(x.o)
}

// otherURLs are the metadata URL forms naming the tenant ID, when they
// differ from the one naming the initial domain.
func otherURLs(format func(string) string, initial, tenantID string) []string {
	if tenantID == "" || strings.EqualFold(format(tenantID), format(initial)) {
		return nil
	}
	return []string{format(tenantID)}
}

// onPremAutodiscoverEndpoints are the autodiscover endpoints on the hosts
// the on-prem virtual directories publish externally: where the Hybrid
// Configuration Wizard points the Exchange Online → on-premises connector
// (https://mail.contoso.com/autodiscover/autodiscover.svc).
func onPremAutodiscoverEndpoints(o Observed) []string {
	var out []string
	for _, v := range o.VirtualDirectories {
		if h := cloud.HostOfURL(v.ExternalURL); h != "" {
			out = appendFold(out, "https://"+h+"/autodiscover/autodiscover.svc")
		}
	}
	return out
}

// ownDomains are the organisation's own (not Microsoft-owned) domains:
// the SMTP domains the connectors serve and every other accepted domain.
func ownDomains(p cloud.Profile, o Observed, initial, routing string, smtp []string) []string {
	out := slices.Clone(smtp)
	for _, a := range o.AcceptedDomains {
		dn := normDomain(a.DomainName)
		if dn == "" || strings.Contains(dn, "*") || dn == initial || dn == routing || p.IsRoutingDomain(dn) || p.IsInitialDomain(dn) || microsoftOwned(dn) || slices.Contains(out, dn) {
			continue
		}
		out = append(out, dn)
	}
	return out
}

// authServerDomains is the evoSTS server's DomainName, chosen the way
// Microsoft's ConfigureExchangeHybridApplication.ps1 chooses it: when the
// tenant has exactly one enabled ACS auth server with DomainName values
// (the Hybrid Configuration Wizard sets the on-prem and routing domains
// there), those; otherwise every on-prem accepted domain that is also a
// verified domain of the tenant, except the initial domain. An empty
// result is an error: Exchange could not tell which tenant the server
// serves.
func authServerDomains(o Observed, acs AuthServerSpec, initial string) ([]string, error) {
	var withDomains []AuthServer
	for _, s := range o.AuthServers {
		if IsTenantAuthServer(s, acs) && s.Enabled && len(dedupeDomains(s.DomainName)) > 0 {
			withDomains = append(withDomains, s)
		}
	}
	if len(withDomains) == 1 {
		return dedupeDomains(withDomains[0].DomainName), nil
	}
	tenant := dedupeDomains(o.TenantDomains)
	var out []string
	for _, a := range o.AcceptedDomains {
		dn := normDomain(a.DomainName)
		if dn != "" && dn != initial && slices.Contains(tenant, dn) && !slices.Contains(out, dn) {
			out = append(out, dn)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the evoSTS auth server's DomainName cannot be chosen: no enabled ACS auth server of the tenant lists domains, and no on-premises accepted domain other than the initial domain is a verified domain of the tenant in Entra (accepted: %s; Entra: %s)",
			ErrMissingInput, orNone(strings.Join(acceptedNames(o), ", ")), orNone(strings.Join(tenant, ", ")))
	}
	return out, nil
}

func acceptedNames(o Observed) []string {
	var out []string
	for _, a := range o.AcceptedDomains {
		out = append(out, normDomain(a.DomainName))
	}
	return out
}

// foreignDomains checks every domain the inventory sets (and the plan
// uses) against the tenant's verified Entra domains, naming the inventory
// field. A typo or another customer's domain in routing_domain or
// smtp_domains would aim this tenant's connectors at someone else's mail.
// Discovered domains come from the tenant's own organisation and are not
// checked; with no Entra domains at all nothing can be checked (warned).
func foreignDomains(t TenantFacts, o Observed, initial, routing string, smtp []string) []error {
	if len(o.TenantDomains) == 0 {
		return nil
	}
	verified := dedupeDomains(o.TenantDomains)
	list := strings.Join(verified, ", ")
	var errs []error
	check := func(field, dom string) {
		if dom != "" && !slices.Contains(verified, dom) {
			errs = append(errs, fmt.Errorf("%w: %s %q is not a verified domain of tenant %s (Entra lists %s)", ErrForeignDomain, field, dom, t.ID, list))
		}
	}
	check("initial_domain", initial)
	if normDomain(t.RoutingDomain) != "" {
		check("routing_domain", routing)
	}
	if len(t.SMTPDomains) > 0 {
		for _, dom := range smtp {
			check("smtp_domains", dom)
		}
	}
	return errs
}

func deriveRouting(t TenantFacts, p cloud.Profile, o Observed, initial string) (string, error) {
	if r := normDomain(t.RoutingDomain); r != "" {
		return r, nil
	}
	var found []string
	for _, a := range o.AcceptedDomains {
		if dn := normDomain(a.DomainName); p.IsRoutingDomain(dn) && !slices.Contains(found, dn) {
			found = append(found, dn)
		}
	}
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("%w: no accepted domain ends in .%s, so the hybrid routing domain is unknown; set routing_domain (usually %s)",
			ErrMissingInput, p.RoutingSuffix, p.RoutingDomain(initial))
	case len(found) == 1:
		return found[0], nil
	case initial != "" && slices.Contains(found, p.RoutingDomain(initial)):
		return p.RoutingDomain(initial), nil
	}
	return "", fmt.Errorf("%w: several accepted domains end in .%s (%s) and none is named after the initial domain; set routing_domain",
		ErrMissingInput, p.RoutingSuffix, strings.Join(found, ", "))
}

// deriveSMTP applies step 7's exclusions to overrides too: a connector that
// claims the routing domain for on-prem would loop mail back to the cloud.
func deriveSMTP(t TenantFacts, p cloud.Profile, o Observed, initial, routing string) ([]string, []string) {
	var src []string
	fromInventory := len(t.SMTPDomains) > 0
	if fromInventory {
		src = t.SMTPDomains
	} else {
		for _, a := range o.AcceptedDomains {
			if a.Default {
				src = append(src, a.DomainName)
			}
		}
		for _, a := range o.AcceptedDomains {
			if !a.Default {
				src = append(src, a.DomainName)
			}
		}
	}
	var out, warn []string
	for _, s := range src {
		dn := normDomain(s)
		switch {
		case dn == "" || slices.Contains(out, dn):
		case dn == initial || dn == routing || p.IsRoutingDomain(dn) || p.IsInitialDomain(dn) || microsoftOwned(dn):
			if fromInventory {
				warn = append(warn, fmt.Sprintf("smtp_domains lists %s, a Microsoft-owned (initial or routing) domain; it is left out of %s", dn, OnlineIOCName))
			}
		case strings.Contains(dn, "*"):
			warn = append(warn, fmt.Sprintf("accepted domain %s is a wildcard; IntraOrganizationConnector target domains must be literal, so it is left out", dn))
		default:
			out = append(out, dn)
		}
	}
	return out, warn
}

func microsoftOwned(dn string) bool {
	for _, s := range microsoftSuffixes {
		if dn == s || strings.HasSuffix(dn, "."+s) {
			return true
		}
	}
	return false
}

func isSPNKind(kind string) bool {
	for _, k := range []string{VDirWebServices, VDirMapi, VDirOAB, VDirAutodiscover} {
		if strings.EqualFold(kind, k) {
			return true
		}
	}
	return false
}

func deriveSPNHosts(t TenantFacts, o Observed) []string {
	var hosts []string
	add := func(h string) {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if len(t.SPNHosts) > 0 {
		for _, h := range t.SPNHosts {
			add(h)
		}
	} else {
		for _, v := range o.VirtualDirectories {
			if isSPNKind(v.Kind) {
				add(cloud.HostOfURL(v.InternalURL))
				add(cloud.HostOfURL(v.ExternalURL))
			}
		}
	}
	slices.Sort(hosts)
	return hosts
}

func deriveEWS(t TenantFacts, o Observed, servers []Server) (string, []string) {
	if u := strings.TrimSpace(t.OnPremEWSExternalURL); u != "" {
		return u, nil
	}
	build := map[string]Build{}
	for _, s := range servers {
		build[strings.ToLower(s.Name)] = s.Build
	}
	var modern, any []string
	for _, v := range o.VirtualDirectories {
		u := strings.TrimSpace(v.ExternalURL)
		if !strings.EqualFold(v.Kind, VDirWebServices) || u == "" {
			continue
		}
		any = appendFold(any, u)
		if b, ok := build[strings.ToLower(v.Server)]; !ok || !b.Less(exchange2013SP1.Build) {
			modern = appendFold(modern, u)
		}
	}
	pick := modern
	if len(pick) == 0 {
		pick = any
	}
	if len(pick) == 0 {
		return "", nil
	}
	var warn []string
	if len(modern) == 0 {
		warn = append(warn, fmt.Sprintf("the only external EWS URL, %s, is on a server older than %s; Exchange Online needs a newer server behind it", pick[0], exchange2013SP1))
	}
	if len(pick) > 1 {
		warn = append(warn, fmt.Sprintf("several external EWS URLs (%s); using %s — set onprem_ews_external_url to choose", strings.Join(pick, ", "), pick[0]))
	}
	return pick[0], warn
}

func deriveAutodiscover(t TenantFacts, o Observed, smtp []string) string {
	if u := strings.TrimSpace(t.OnPremAutodiscoverURL); u != "" {
		return u
	}
	for _, v := range o.VirtualDirectories {
		if !strings.EqualFold(v.Kind, VDirAutodiscover) {
			continue
		}
		// The virtual directory usually shows the POX endpoint
		// (/Autodiscover/Autodiscover.xml); connectors need the SOAP one.
		if u, err := url.Parse(strings.TrimSpace(v.ExternalURL)); err == nil && u.Host != "" {
			return "https://" + strings.ToLower(u.Host) + "/autodiscover/autodiscover.svc"
		}
	}
	if len(smtp) == 0 {
		return ""
	}
	return "https://autodiscover." + smtp[0] + "/autodiscover/autodiscover.svc"
}

// deriveMode applies DecideMode to the tenant's cloud and servers. On an
// error the reason is the error's text, so that a plan shown with its
// errors still says why no mode was chosen.
func deriveMode(t TenantFacts, p cloud.Profile, servers []Server) (Mode, string, []string, error) {
	path, err := LegacyPath(p, t.LegacyFirstPartyBlocked)
	if err != nil {
		return "", err.Error(), nil, err
	}
	dec, err := DecideMode(ModeInput{Setting: t.ModeSetting, Path: path, Servers: servers})
	if err != nil {
		return "", err.Error(), nil, err
	}
	return dec.Mode, dec.Reason, dec.Warnings, nil
}

// deriveKeys turns Get-AuthConfig and the certificate store into the keys
// to upload. A missing or expired current certificate is an error, not a
// warning: OAuth cannot work without it, and uploading a dead key would
// only make the failure surface later, at verification.
func deriveKeys(o Observed) ([]Key, []string, error) {
	cur := normThumbprint(o.AuthConfig.CurrentThumbprint)
	if cur == "" {
		return nil, nil, fmt.Errorf("%w: Get-AuthConfig shows no current certificate; create and publish one (New-ExchangeCertificate, Set-AuthConfig)", ErrAuthCertificate)
	}
	if !certs.ValidThumbprint(cur) {
		// Read from the organisation, not typed, but still data: refuse it
		// before it names a key to keep or remove.
		return nil, nil, fmt.Errorf("%w: Get-AuthConfig CurrentCertificateThumbprint %q is not a thumbprint (40 hex digits)", ErrAuthCertificate, cur)
	}
	c, ok := findCert(o.Certificates, cur)
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("%w: the current auth certificate %s is not in the Exchange certificate store, so it cannot be exported", ErrAuthCertificate, cur)
	case len(c.DER) == 0:
		return nil, nil, fmt.Errorf("%w: the current auth certificate %s was found without its public certificate bytes", ErrAuthCertificate, cur)
	case !o.At.IsZero() && c.NotAfter.Before(o.At):
		return nil, nil, fmt.Errorf("%w: the current auth certificate %s expired on %s; free/busy is down until a new certificate is published — run the renewal's emergency path first",
			ErrAuthCertificate, cur, day(c.NotAfter))
	}
	keys := []Key{certKey(c)}
	var warn []string
	if next := normThumbprint(o.AuthConfig.NextThumbprint); next != "" && next != cur {
		n, ok := findCert(o.Certificates, next)
		switch {
		case !certs.ValidThumbprint(next):
			warn = append(warn, fmt.Sprintf("Get-AuthConfig NextCertificateThumbprint %q is not a thumbprint (40 hex digits); it is not uploaded", next))
		case !ok || len(n.DER) == 0:
			warn = append(warn, fmt.Sprintf("the next auth certificate %s (effective %s) is not in the certificate store; it is not uploaded now", next, day(o.AuthConfig.NextEffective)))
		case !o.At.IsZero() && n.NotAfter.Before(o.At):
			warn = append(warn, fmt.Sprintf("the next auth certificate %s expired on %s; it is not uploaded", next, day(n.NotAfter)))
		default:
			keys = append(keys, certKey(n))
		}
	}
	return keys, warn, nil
}

func findCert(cs []Certificate, tp string) (Certificate, bool) {
	for _, c := range cs {
		if certThumbprint(c) == tp {
			return c, true
		}
	}
	return Certificate{}, false
}

func certThumbprint(c Certificate) string {
	return thumbprintOf(Key{Thumbprint: c.Thumbprint, DER: c.DER})
}

func certKey(c Certificate) Key {
	tp := certThumbprint(c)
	return Key{
		Thumbprint:  tp,
		DisplayName: uploadedKeyName + tp,
		Type:        KeyTypeX509,
		Usage:       KeyUsageVerify,
		Start:       c.NotBefore.UTC(),
		End:         c.NotAfter.UTC(),
		DER:         c.DER,
	}
}

// legacyThumbprints lists every on-prem auth certificate Get-AuthConfig
// knows plus any other certificate with the auth certificate's subject:
// renewals leave older ones behind, and all of them belong to the legacy
// path the clean-up retires.
func legacyThumbprints(o Observed) []string {
	var out []string
	add := func(tp string) {
		if tp = normThumbprint(tp); tp != "" && !slices.Contains(out, tp) {
			out = append(out, tp)
		}
	}
	add(o.AuthConfig.CurrentThumbprint)
	add(o.AuthConfig.NextThumbprint)
	add(o.AuthConfig.PreviousThumbprint)
	var rest []string
	for _, c := range o.Certificates {
		if strings.Contains(strings.ToLower(c.Subject), authCertSubject) {
			rest = append(rest, certThumbprint(c))
		}
	}
	slices.Sort(rest)
	for _, tp := range rest {
		add(tp)
	}
	return out
}

func normDomain(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

func dedupeDomains(ds []string) []string {
	var out []string
	for _, d := range ds {
		if n := normDomain(d); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func firstNonEmpty(first string, rest ...string) string {
	if s := strings.TrimSpace(first); s != "" {
		return s
	}
	for _, r := range rest {
		if s := strings.TrimSpace(r); s != "" {
			return s
		}
	}
	return ""
}

func appendFold(list []string, s string) []string {
	for _, l := range list {
		if strings.EqualFold(strings.TrimRight(l, "/"), strings.TrimRight(s, "/")) {
			return list
		}
	}
	return append(list, s)
}
