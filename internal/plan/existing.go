package plan

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Decisions about objects that may already exist in the organisation,
// shared by the plan and by the activities that carry it out. An activity
// re-reads the objects and asks the same function the plan asked, so what
// the plan says it will do to an existing object (adopt it, change it,
// leave it, refuse because of it) is exactly what the activity does.

// ---- auth servers ---------------------------------------------------------

// IsTenantAuthServer reports whether s is the tenant's auth server of
// spec's kind: the right type and the tenant's realm, whatever it is called
// and whichever of Microsoft's metadata URLs it was created from. Only when
// either realm is unknown does the metadata URL decide.
func IsTenantAuthServer(s AuthServer, spec AuthServerSpec) bool {
	if !sameAuthServerType(s.Type, spec.Type) {
		return false
	}
	if r, want := strings.TrimSpace(s.Realm), strings.TrimSpace(spec.Realm); r != "" && want != "" {
		return strings.EqualFold(r, want)
	}
	if sameURL(s.MetadataURL, spec.MetadataURL) {
		return true
	}
	return slices.ContainsFunc(spec.OtherMetadataURLs, func(u string) bool { return sameURL(s.MetadataURL, u) })
}

// sameAuthServerType: New-AuthServer without -Type makes a MicrosoftACS
// server, so an empty type counts as that.
func sameAuthServerType(have, want string) bool {
	if strings.TrimSpace(have) == "" {
		have = AuthServerTypeACS
	}
	return strings.EqualFold(have, want)
}

// FindTenantAuthServer returns the tenant's server of spec's kind, an
// enabled one before a disabled one.
func FindTenantAuthServer(list []AuthServer, spec AuthServerSpec) (AuthServer, bool) {
	var found *AuthServer
	for i := range list {
		if !IsTenantAuthServer(list[i], spec) {
			continue
		}
		if list[i].Enabled {
			return list[i], true
		}
		if found == nil {
			found = &list[i]
		}
	}
	if found == nil {
		return AuthServer{}, false
	}
	return *found, true
}

// AuthServerDecision is what step 1 does about one auth server.
type AuthServerDecision struct {
	// Change: none (the tenant's server exists and is enabled), update
	// (it exists disabled and is enabled), create, or blocked (a server
	// with the wanted name exists but is not the tenant's).
	Change Change
	// Server is the tenant's server (none, update) or the one in the way
	// (blocked).
	Server  AuthServer
	Reason  string
	Details []string
}

// DecideAuthServer decides step 1 for one server. A server that carries
// the name hybridflow would use but another type or realm belongs to
// something else (another tenant of a multi-tenant hybrid, an ADFS trust):
// it is reported and never changed, since rewriting its metadata URL would
// break whatever relies on it.
func DecideAuthServer(label string, list []AuthServer, spec AuthServerSpec) AuthServerDecision {
	if s, ok := FindTenantAuthServer(list, spec); ok {
		if s.Enabled {
			return AuthServerDecision{Change: ChangeNone, Server: s,
				Reason: fmt.Sprintf("auth server %s exists as '%s' (%s, realm %s)", label, s.Name, typeOf(s), orUnknownRealm(s.Realm, s.MetadataURL))}
		}
		return AuthServerDecision{Change: ChangeUpdate, Server: s,
			Reason:  fmt.Sprintf("auth server %s exists as '%s' (%s, realm %s) but is disabled; it will be enabled", label, s.Name, typeOf(s), orUnknownRealm(s.Realm, s.MetadataURL)),
			Details: []string{fmt.Sprintf("Set-AuthServer -Identity '%s' -Enabled $true", s.Name)}}
	}
	for _, s := range list {
		if strings.EqualFold(s.Name, spec.Name) {
			return AuthServerDecision{Change: ChangeBlocked, Server: s,
				Reason: fmt.Sprintf("auth server '%s' exists with type %s, realm %s and metadata URL %s, so it is not this tenant's %s server (type %s, realm %s); hybridflow does not change a server it did not create: rename or remove it, then retry",
					s.Name, typeOf(s), orNone(s.Realm), orNone(s.MetadataURL), label, spec.Type, orNone(spec.Realm))}
		}
	}
	typ := ""
	if spec.Type == AuthServerTypeAzureAD {
		typ = " -Type AzureAD"
	}
	return AuthServerDecision{Change: ChangeCreate,
		Reason:  fmt.Sprintf("auth server %s will be created as '%s' with metadata URL %s", label, spec.Name, spec.MetadataURL),
		Details: []string{fmt.Sprintf("New-AuthServer -Name '%s'%s -AuthMetadataUrl %s", spec.Name, typ, spec.MetadataURL)}}
}

func typeOf(s AuthServer) string {
	if strings.TrimSpace(s.Type) == "" {
		return AuthServerTypeACS
	}
	return s.Type
}

func orUnknownRealm(realm, metadataURL string) string {
	if realm != "" {
		return realm
	}
	return "unknown, metadata URL " + orNone(metadataURL)
}

// ---- the evoSTS server of the dedicated application -----------------------

// evoSTSName is how Microsoft's script recognises the evoSTS server by
// name: the Hybrid Configuration Wizard's "EvoSts - <GUID>", or any name
// containing EvoSTS (the manual procedure's "evoSTS", 21Vianet's "EvoSTS").
var evoSTSName = regexp.MustCompile(`(?i)^EvoSts - [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|evosts`)

// IsEvoSTSName reports whether an auth server's name marks it as the
// evoSTS server in Microsoft's script's terms.
func IsEvoSTSName(name string) bool { return evoSTSName.MatchString(strings.TrimSpace(name)) }

// AuthServerAppDecision is what the dedicated application's on-prem step
// does: Set-AuthServer -ApplicationIdentifier -DomainName on the evoSTS
// server.
type AuthServerAppDecision struct {
	Change Change // none, update or blocked
	// Missing: blocked because there is no server to use at all (rather
	// than one that cannot be used).
	Missing bool
	Server  AuthServer
	// SetApp: ApplicationIdentifier changes to the application's appId.
	SetApp bool
	// AddDomains are the wanted DomainName values the server lacks;
	// Domains is the list written (the server's own values, then these).
	AddDomains []string
	Domains    []string
	Reason     string
	Details    []string
}

// DecideAuthServerApp chooses the server as Microsoft's script does (type
// AzureAD, named like an evoSTS server, enabled), restricted to the
// tenant's realm: with several tenants in one organisation the script
// would take another tenant's server when it is the only one named so,
// and hybridflow never does. The ACS server never gets an
// ApplicationIdentifier.
//
// DomainName is merged, not replaced as the script does: values already
// on the server stay (an administrator or another tool put them there) and
// the wanted ones are added, so an undo removes exactly what was added.
func DecideAuthServerApp(list []AuthServer, spec AuthServerSpec, appID string, domains []string) AuthServerAppDecision {
	var cands []AuthServer
	var unnamed []string
	for _, s := range list {
		if !IsTenantAuthServer(s, spec) || !s.Enabled {
			continue
		}
		if !IsEvoSTSName(s.Name) {
			unnamed = append(unnamed, "'"+s.Name+"'")
			continue
		}
		cands = append(cands, s)
	}
	switch {
	case len(cands) == 0 && len(unnamed) > 0:
		return AuthServerAppDecision{Change: ChangeBlocked,
			Reason: fmt.Sprintf("the tenant's AzureAD auth server %s is not named like an evoSTS server (EvoSts - <GUID>, or a name containing EvoSTS), and Exchange looks for the dedicated application on such a server only; rename it (Set-AuthServer -Name), then retry",
				strings.Join(unnamed, ", "))}
	case len(cands) == 0:
		return AuthServerAppDecision{Change: ChangeBlocked, Missing: true,
			Reason: fmt.Sprintf("there is no enabled AzureAD auth server for realm %s to carry the dedicated application (step %s has not set it up)", orNone(spec.Realm), StepAuthServers)}
	case len(cands) > 1:
		var names []string
		for _, c := range cands {
			names = append(names, "'"+c.Name+"'")
		}
		return AuthServerAppDecision{Change: ChangeBlocked,
			Reason: fmt.Sprintf("several enabled evoSTS auth servers serve realm %s (%s); remove the duplicate (or re-run the Hybrid Configuration Wizard), then retry", orNone(spec.Realm), strings.Join(names, ", "))}
	}
	s := cands[0]
	d := AuthServerAppDecision{Server: s, AddDomains: missingFold(s.DomainName, domains)}
	d.Domains = append(slices.Clone(s.DomainName), d.AddDomains...)
	d.SetApp = appID == "" || !strings.EqualFold(strings.TrimSpace(s.ApplicationIdentifier), appID)
	if !d.SetApp && len(d.AddDomains) == 0 {
		d.Change = ChangeNone
		d.Reason = fmt.Sprintf("auth server '%s' already has ApplicationIdentifier %s and DomainName %s", s.Name, appID, strings.Join(s.DomainName, ","))
		return d
	}
	d.Change = ChangeUpdate
	app := appID
	if app == "" {
		app = "<appId of the dedicated application>"
	}
	var what []string
	if d.SetApp {
		what = append(what, fmt.Sprintf("ApplicationIdentifier %s instead of %s", app, orNone(s.ApplicationIdentifier)))
	}
	if len(d.AddDomains) > 0 {
		what = append(what, "DomainName gains "+strings.Join(d.AddDomains, ","))
	}
	d.Reason = fmt.Sprintf("auth server '%s' will get %s", s.Name, strings.Join(what, " and "))
	d.Details = []string{fmt.Sprintf("Set-AuthServer -Identity '%s' -ApplicationIdentifier %s -DomainName %s", s.Name, app, strings.Join(d.Domains, ","))}
	return d
}

// ---- partner application --------------------------------------------------

// DecidePartnerApp decides step 2. Exchange creates the Exchange Online
// partner application itself; Microsoft's procedures only enable it, and
// no documented cmdlet call recreates it, so a missing one blocks the step.
func DecidePartnerApp(pa PartnerApp) (Change, string) {
	name := pa.Name
	if name == "" {
		name = "Exchange Online"
	}
	switch {
	case pa.Found && pa.Enabled:
		return ChangeNone, fmt.Sprintf("partner application '%s' (%s, empty realm) is enabled", name, cloud.FirstPartyAppID)
	case pa.Found:
		return ChangeUpdate, fmt.Sprintf("partner application '%s' (%s, empty realm) is disabled; it will be enabled", name, cloud.FirstPartyAppID)
	}
	return ChangeBlocked, fmt.Sprintf("there is no partner application %s with an empty realm: Exchange creates it at installation and Microsoft's procedures only enable it, so the organisation needs attention (check Get-PartnerApplication) before hybridflow can go on", cloud.FirstPartyAppID)
}

// ---- setting override -----------------------------------------------------

// OverrideState sorts the setting overrides of the dedicated application's
// section (component Global, section ExchangeOnpremAsThirdPartyAppId, any
// name): those that enable the feature and those that do not.
func OverrideState(list []SettingOverride) (enabling, other []SettingOverride) {
	for _, so := range list {
		if !strings.EqualFold(strings.TrimSpace(so.Section), OverrideSection) {
			continue
		}
		if c := strings.TrimSpace(so.Component); c != "" && !strings.EqualFold(c, OverrideComponent) {
			continue
		}
		if hasParameter(so.Parameters, OverrideParameter) {
			enabling = append(enabling, so)
		} else {
			other = append(other, so)
		}
	}
	return enabling, other
}

// OverrideConflict describes overrides of the section that do not enable
// the feature (Enabled=false or anything else): Exchange would not use the
// dedicated application, and since someone made them on purpose hybridflow
// neither changes nor outvotes them. Empty when there are none.
func OverrideConflict(other []SettingOverride) string {
	if len(other) == 0 {
		return ""
	}
	var parts []string
	for _, so := range other {
		parts = append(parts, fmt.Sprintf("'%s' (parameters %s)", so.Name, orNone(strings.Join(so.Parameters, ","))))
	}
	return fmt.Sprintf("setting override %s for %s\\%s does not enable the dedicated application, so Exchange keeps using the shared first-party application; hybridflow does not change or remove an override it did not create: remove it (Remove-SettingOverride) or change it to %s, then retry",
		strings.Join(parts, ", "), OverrideComponent, OverrideSection, OverrideParameter)
}

// OverridePreconditions are what Microsoft's script requires before it
// creates the override, checked in this order. Each Why says what is
// missing, for the reason shown when it does not hold.
type OverridePreconditions struct {
	Consent, PartnerApp, Connector          bool
	ConsentWhy, PartnerAppWhy, ConnectorWhy string
}

// Unmet returns the first precondition that does not hold, in the
// script's order (consent, partner application, an enabled connector), or
// "" when all hold.
func (p OverridePreconditions) Unmet() string {
	switch {
	case !p.Consent:
		return "admin consent for full_access_as_app is not granted to the dedicated application" + why(p.ConsentWhy)
	case !p.PartnerApp:
		return "the Exchange Online partner application is not enabled" + why(p.PartnerAppWhy)
	case !p.Connector:
		return "there is no enabled on-premises IntraOrganizationConnector" + why(p.ConnectorWhy)
	}
	return ""
}

func why(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// OverridePreconditionsUnmet words an unmet precondition as the step's
// reason.
func OverridePreconditionsUnmet(unmet string) string {
	return fmt.Sprintf("setting override %s is created only once OAuth is in place, and %s; Exchange would otherwise ask for dedicated-application tokens it cannot use", OverrideName, unmet)
}

// ---- the dedicated application ----------------------------------------------

// DedicatedAppUniqueName is the uniqueName hybridflow gives the dedicated
// application it creates (Graph's second alternate key of an application,
// set by the upsert that creates it and never changed): the application's
// own name, ExchangeServerApp-<organization GUID>. It is one per Exchange
// organisation and the same in every run and every workflow, so whoever
// creates or looks for the application addresses the same one, and a
// create repeated after a lost reply finds the application the first one
// made instead of making a second. An application made by other tools
// (the Hybrid Configuration Wizard, Microsoft's scripts) has no uniqueName
// and is found by its display name.
func DedicatedAppUniqueName(appName string) string { return appName }

// ---- intra-organization connectors ----------------------------------------

// IsSentIOC reports whether c is exactly the connector hybridflow's
// New-IntraOrganizationConnector for spec creates: its name, discovery
// endpoint and target domains, enabled. A connector found by name after a
// create whose reply was lost (or that Exchange says already exists) is
// taken for the one that create made only when it is.
func IsSentIOC(c IOC, spec IOCSpec) bool {
	return strings.EqualFold(c.Name, spec.Name) && sameURL(c.DiscoveryEndpoint, spec.DiscoveryEndpoint) && c.Enabled &&
		len(missingFold(c.TargetAddressDomains, spec.TargetAddressDomains)) == 0 &&
		len(missingFold(spec.TargetAddressDomains, c.TargetAddressDomains)) == 0
}

// Accepts reports whether a connector's discovery endpoint is one
// Microsoft's tools or documents use for the spec's direction and cloud.
func (s IOCSpec) Accepts(endpoint string) bool {
	if sameURL(endpoint, s.DiscoveryEndpoint) || slices.ContainsFunc(s.AcceptedEndpoints, func(e string) bool { return sameURL(endpoint, e) }) {
		return true
	}
	if len(s.AcceptedHostDomains) == 0 {
		return false
	}
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || !strings.EqualFold(u.Scheme, "https") || !strings.EqualFold(strings.TrimRight(u.Path, "/"), "/autodiscover/autodiscover.svc") {
		return false
	}
	host := strings.ToLower(u.Hostname())
	return slices.ContainsFunc(s.AcceptedHostDomains, func(d string) bool {
		d = normDomain(d)
		return d != "" && (host == d || strings.HasSuffix(host, "."+d))
	})
}

// IOCUpdate is one change to an existing connector.
type IOCUpdate struct {
	Before IOC
	// DiscoveryEndpoint is the new endpoint, "" to keep it.
	DiscoveryEndpoint string
	// AddDomains are target domains the connector gains.
	AddDomains []string
	// Enable: the connector is disabled and will be enabled.
	Enable bool
}

// Domains is the connector's target domain list after the update.
func (u IOCUpdate) Domains() []string {
	return append(slices.Clone(u.Before.TargetAddressDomains), u.AddDomains...)
}

// IOCDecision is what steps 6 and 7 do on one side.
type IOCDecision struct {
	Change Change // none, create, update or blocked
	Reason string
	// Adopted are connectors of any name already serving some of the
	// wanted domains through an endpoint Microsoft uses, kept as they are
	// (apart from Updates).
	Adopted []IOC
	Updates []IOCUpdate
	// Create: no connector serves the wanted domains; the spec's one is
	// created.
	Create  bool
	Details []string
}

// DecideIOC decides one direction's connector. Exchange routes each
// domain through one connector, so a connector of any name that already
// lists a wanted domain is the one to use: adopted as it is when its
// discovery endpoint is one Microsoft uses for that direction (the
// Hybrid Configuration Wizard's "HybridIOC - <GUID>"), reported and never
// changed when it is not. An adopted connector gains any wanted domain no
// connector lists yet, and is enabled if it is disabled, as hybridflow's
// own would be. A connector carrying hybridflow's name is hybridflow's:
// its endpoint is corrected when it is not one Microsoft uses. Domains
// another connector lists stay where they are.
func DecideIOC(where string, list []IOC, spec IOCSpec) IOCDecision {
	var own *IOC
	var sharing []IOC
	for i, c := range list {
		switch {
		case strings.EqualFold(c.Name, spec.Name):
			own = &list[i]
		case len(intersectFold(c.TargetAddressDomains, spec.TargetAddressDomains)) > 0:
			sharing = append(sharing, c)
		}
	}
	var blocked []string
	for _, c := range sharing {
		if !spec.Accepts(c.DiscoveryEndpoint) {
			blocked = append(blocked, fmt.Sprintf("connector '%s' already routes %s through %s, which is not an endpoint Microsoft uses for this direction (%s)",
				c.Name, strings.Join(intersectFold(c.TargetAddressDomains, spec.TargetAddressDomains), ","), orNone(c.DiscoveryEndpoint), strings.Join(spec.acceptedList(), ", ")))
		}
	}
	if len(blocked) > 0 {
		return IOCDecision{Change: ChangeBlocked, Reason: fmt.Sprintf("%s: %s; Exchange routes a domain through one connector only and hybridflow does not change a connector it did not create: point it at one of those endpoints or remove it, then retry",
			where, strings.Join(blocked, "; "))}
	}
	var covered []string
	for _, c := range sharing {
		covered = append(covered, intersectFold(c.TargetAddressDomains, spec.TargetAddressDomains)...)
	}
	missing := missingFold(covered, spec.TargetAddressDomains)
	d := IOCDecision{Adopted: sharing}
	if own == nil && len(sharing) == 0 {
		targets := strings.Join(spec.TargetAddressDomains, ",")
		d.Change, d.Create = ChangeCreate, true
		d.Reason = fmt.Sprintf("%s connector %s will be created: discovery endpoint %s, target domains %s", where, spec.Name, spec.DiscoveryEndpoint, targets)
		d.Details = []string{fmt.Sprintf("New-IntraOrganizationConnector -Name %s -DiscoveryEndpoint %s -TargetAddressDomains %s -Enabled $true", spec.Name, spec.DiscoveryEndpoint, targets)}
		return d
	}
	// The connector that gains the missing domains: ours if there is one,
	// else the first adopted one.
	all := append(slices.Clone(sharing), ownOrNone(own)...)
	host := all[0]
	if own != nil {
		host = *own
	}
	for _, c := range all {
		u := IOCUpdate{Before: c, Enable: !c.Enabled}
		if c.Name == host.Name {
			u.AddDomains = missingFold(c.TargetAddressDomains, missing)
		}
		if own != nil && c.Name == own.Name && !spec.Accepts(c.DiscoveryEndpoint) {
			u.DiscoveryEndpoint = spec.DiscoveryEndpoint
		}
		if u.Enable || len(u.AddDomains) > 0 || u.DiscoveryEndpoint != "" {
			d.Updates = append(d.Updates, u)
		}
	}
	var serving []string
	for _, c := range all {
		serving = append(serving, fmt.Sprintf("'%s' (%s for %s)", c.Name, orNone(c.DiscoveryEndpoint), strings.Join(c.TargetAddressDomains, ",")))
	}
	if len(d.Updates) == 0 {
		d.Change = ChangeNone
		d.Reason = fmt.Sprintf("%s connector %s already serves %s", where, strings.Join(serving, ", "), strings.Join(spec.TargetAddressDomains, ","))
		if own == nil {
			d.Reason += "; adopted as it is"
		}
		return d
	}
	d.Change = ChangeUpdate
	var what []string
	for _, u := range d.Updates {
		var ch, set []string
		if u.DiscoveryEndpoint != "" {
			ch = append(ch, fmt.Sprintf("discovery endpoint %s instead of %s", u.DiscoveryEndpoint, orNone(u.Before.DiscoveryEndpoint)))
			set = append(set, "-DiscoveryEndpoint "+u.DiscoveryEndpoint)
		}
		if len(u.AddDomains) > 0 {
			ch = append(ch, "target domains gain "+strings.Join(u.AddDomains, ","))
			set = append(set, "-TargetAddressDomains "+strings.Join(u.Domains(), ","))
		}
		if u.Enable {
			ch = append(ch, "enabled")
			set = append(set, "-Enabled $true")
		}
		what = append(what, fmt.Sprintf("'%s' will be changed: %s", u.Before.Name, strings.Join(ch, "; ")))
		d.Details = append(d.Details, fmt.Sprintf("Set-IntraOrganizationConnector -Identity '%s' %s", u.Before.Name, strings.Join(set, " ")))
	}
	d.Reason = fmt.Sprintf("%s connector %s: %s", where, strings.Join(serving, ", "), strings.Join(what, "; "))
	return d
}

func ownOrNone(own *IOC) []IOC {
	if own == nil {
		return nil
	}
	return []IOC{*own}
}

// acceptedList names what Accepts accepts, for messages.
func (s IOCSpec) acceptedList() []string {
	out := []string{s.DiscoveryEndpoint}
	for _, e := range s.AcceptedEndpoints {
		if !slices.ContainsFunc(out, func(o string) bool { return sameURL(o, e) }) {
			out = append(out, e)
		}
	}
	for _, d := range s.AcceptedHostDomains {
		out = append(out, "https://<host in "+d+">/autodiscover/autodiscover.svc")
	}
	return out
}
