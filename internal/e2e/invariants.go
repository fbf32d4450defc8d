// Package e2e holds hybridflow's end-to-end tests (the real Temporal dev
// server, the simulated world served over its real protocols, the real
// clients and PowerShell-host relay processes, the worker host exactly as
// the worker binary registers it) and the world invariants they check,
// which the chaos suite reuses.
package e2e

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// NothingLost compares a world before and after runs of hybridflow and
// returns, in words, every object or item that existed before and is gone
// or was overwritten after, except the losses the design allows. An empty
// result means nothing was lost. Pass snapshots (World.Clone) or worlds no
// server is serving: the function reads the tenants without the world's lock.
//
// What must survive, per tenant:
//
//   - Entra: domains; applications (by object id) with every
//     requiredResourceAccess entry; service principals (by object id) with
//     every service principal name (case-insensitive) and app role; app role
//     assignments (by id); and key credentials, compared by certificate
//     thumbprint (Graph: a PATCH replaces the whole collection, so a
//     forgotten key is a lost key).
//   - Exchange, on-premises and online: auth servers (by name) with their
//     type, metadata URL, enabled state, a non-empty ApplicationIdentifier
//     and every DomainName; partner applications and their enabled state;
//     Get-AuthConfig's certificate thumbprints; certificates; connectors
//     (by name) with every target address domain and their enabled state;
//     availability address spaces (by forest) unchanged; setting overrides
//     (by name) unchanged; accepted domains, servers, virtual directories,
//     mailboxes.
//   - Lync: hosting providers, the Edge local store, external access policies.
//
// The losses the design allows, and only those:
//
//   - an expired key, or a second copy of a certificate, may disappear from
//     an object's keyCredentials only when that collection was rewritten
//     anyway: a key was added to it, or a legacy key was removed from it
//     (plan.MergeKeys / plan.RemoveKeys: housekeeping alone never justifies
//     a PATCH, and an SPN-only PATCH must not touch keys);
//   - an unexpired key may disappear only from the Exchange Online
//     first-party service principal, only when it is one of the tenant's
//     on-premises auth certificates, and only when the dedicated Exchange
//     hybrid application (ExchangeServerApp-<organization GUID>) now holds
//     the same certificate: Microsoft's legacy-key clean-up.
//
// Expiry is judged by after's clock (World.Now: the pinned time of a YAML
// world, or the wall clock).
func NothingLost(before, after *sim.World) []string {
	var out []string
	now := after.Now()
	afterTenants := map[string]*sim.Tenant{}
	for _, t := range after.Tenants {
		afterTenants[strings.ToLower(t.ID)] = t
	}
	for _, b := range before.Tenants {
		a := afterTenants[strings.ToLower(b.ID)]
		if a == nil {
			out = append(out, fmt.Sprintf("tenant %s (%s) is gone", b.ID, b.DisplayName))
			continue
		}
		l := &losses{tenant: b.ID, now: now, b: b, a: a}
		l.entra()
		l.exchange("on-prem", &b.OnPrem, &a.OnPrem)
		l.exchange("Exchange Online", &b.Online, &a.Online)
		l.lync()
		out = append(out, l.out...)
	}
	return out
}

type losses struct {
	tenant string
	now    time.Time
	b, a   *sim.Tenant
	out    []string
}

func (l *losses) add(format string, args ...any) {
	l.out = append(l.out, l.tenant+": "+fmt.Sprintf(format, args...))
}

func (l *losses) entra() {
	b, a := &l.b.Entra, &l.a.Entra
	for _, d := range b.Domains {
		if !slices.ContainsFunc(a.Domains, func(x sim.Domain) bool { return strings.EqualFold(x.ID, d.ID) }) {
			l.add("domain %s is gone", d.ID)
		}
	}
	apps := map[string]*sim.Application{}
	for _, x := range a.Applications {
		apps[strings.ToLower(x.ID)] = x
	}
	for _, ba := range b.Applications {
		aa := apps[strings.ToLower(ba.ID)]
		what := fmt.Sprintf("application %q (%s)", ba.DisplayName, ba.ID)
		if aa == nil {
			l.add("%s is gone", what)
			continue
		}
		for _, r := range ba.RequiredResourceAccess {
			for _, ra := range r.ResourceAccess {
				if !hasRRA(aa.RequiredResourceAccess, r.ResourceAppID, ra) {
					l.add("%s lost requiredResourceAccess %s %s on %s", what, ra.Type, ra.ID, r.ResourceAppID)
				}
			}
		}
		l.keys(what, ba.KeyCredentials, aa.KeyCredentials, false)
	}
	sps := map[string]*sim.ServicePrincipal{}
	for _, x := range a.ServicePrincipals {
		sps[strings.ToLower(x.ID)] = x
	}
	for _, bs := range b.ServicePrincipals {
		as := sps[strings.ToLower(bs.ID)]
		what := fmt.Sprintf("service principal %q (%s)", bs.DisplayName, bs.ID)
		if as == nil {
			l.add("%s is gone", what)
			continue
		}
		for _, n := range bs.ServicePrincipalNames {
			if !containsFold(as.ServicePrincipalNames, n) {
				l.add("%s lost service principal name %s", what, n)
			}
		}
		for _, r := range bs.AppRoles {
			if !slices.ContainsFunc(as.AppRoles, func(x sim.AppRole) bool { return strings.EqualFold(x.ID, r.ID) }) {
				l.add("%s lost app role %s (%s)", what, r.Value, r.ID)
			}
		}
		l.keys(what, bs.KeyCredentials, as.KeyCredentials, strings.EqualFold(bs.AppID, cloud.FirstPartyAppID))
	}
	for _, x := range b.AppRoleAssignments {
		if !slices.ContainsFunc(a.AppRoleAssignments, func(y *sim.AppRoleAssignment) bool { return strings.EqualFold(x.ID, y.ID) }) {
			l.add("app role assignment %s (principal %s, resource %s, role %s) is gone", x.ID, x.PrincipalID, x.ResourceID, x.AppRoleID)
		}
	}
}

func hasRRA(list []sim.RequiredResourceAccess, resource string, ra sim.ResourceAccess) bool {
	for _, r := range list {
		if !strings.EqualFold(r.ResourceAppID, resource) {
			continue
		}
		for _, x := range r.ResourceAccess {
			if strings.EqualFold(x.ID, ra.ID) && strings.EqualFold(x.Type, ra.Type) {
				return true
			}
		}
	}
	return false
}

// KeyThumbprint identifies a key credential by its certificate: the SHA-1
// of the DER when the world holds it, else the customKeyIdentifier when
// that is a hex thumbprint, else its keyId (an identifier another client
// chose names no certificate).
func KeyThumbprint(k sim.KeyCredential) string {
	if len(k.Key) > 0 {
		return certs.Thumbprint(k.Key)
	}
	if certs.ValidThumbprint(k.CustomKeyIdentifier) {
		return strings.ToUpper(k.CustomKeyIdentifier)
	}
	return "keyId:" + strings.ToLower(k.KeyID)
}

func (l *losses) expired(k sim.KeyCredential) bool {
	return !k.EndDateTime.IsZero() && k.EndDateTime.Before(l.now)
}

// keys checks one keyCredentials collection (see NothingLost for the rules).
func (l *losses) keys(what string, before, after []sim.KeyCredential, firstParty bool) {
	count := func(ks []sim.KeyCredential) map[string]int {
		m := map[string]int{}
		for _, k := range ks {
			m[KeyThumbprint(k)]++
		}
		return m
	}
	nb, na := count(before), count(after)
	rewritten := false
	for tp := range na {
		if nb[tp] == 0 {
			rewritten = true // a key was added: the collection was PATCHed
		}
	}
	// Unexpired keys first: their loss is never allowed, except the legacy
	// key's move to the dedicated application, which also proves a rewrite.
	var unwritten []string
	seen := map[string]bool{}
	for _, k := range before {
		tp := KeyThumbprint(k)
		if seen[tp] || na[tp] > 0 || l.expired(k) {
			continue
		}
		seen[tp] = true
		if firstParty && (l.legacyMoved(tp) || l.authCertRetired(k)) {
			rewritten = true
			continue
		}
		l.add("%s lost unexpired key %s (%s, valid until %s)", what, tp, k.DisplayName, day(k.EndDateTime))
	}
	for _, k := range before {
		tp := KeyThumbprint(k)
		if seen[tp] {
			continue
		}
		switch {
		case na[tp] == 0 && l.expired(k):
			seen[tp] = true
			if !rewritten && !(firstParty && l.authCertRetired(k)) {
				unwritten = append(unwritten, fmt.Sprintf("expired key %s (%s, expired %s)", tp, k.DisplayName, day(k.EndDateTime)))
			}
		case na[tp] > 0 && na[tp] < nb[tp]:
			seen[tp] = true
			if !rewritten {
				unwritten = append(unwritten, fmt.Sprintf("%d of %d copies of key %s", nb[tp]-na[tp], nb[tp], tp))
			}
		}
	}
	for _, u := range unwritten {
		l.add("%s lost %s although its keyCredentials gained no key and lost no legacy key: housekeeping alone must not rewrite a collection", what, u)
	}
	// A key that stays is sent back as Graph returned it: its
	// customKeyIdentifier (the bytes other tools identify it by) unchanged.
	for _, k := range before {
		for _, x := range after {
			if strings.EqualFold(x.KeyID, k.KeyID) && KeyThumbprint(x) == KeyThumbprint(k) && x.CustomKeyIdentifier != k.CustomKeyIdentifier {
				l.add("%s: key %s (keyId %s) had customKeyIdentifier %q, now %q", what, KeyThumbprint(k), k.KeyID, k.CustomKeyIdentifier, x.CustomKeyIdentifier)
			}
		}
	}
}

// authCertRetired: k's certificate is an Exchange auth certificate (an
// earlier year's the organisation no longer lists) and the tenant has
// moved to the dedicated application, whose clean-up takes every Exchange
// auth certificate off the first-party service principal.
func (l *losses) authCertRetired(k sim.KeyCredential) bool {
	if len(k.Key) == 0 || !plan.IsExchangeAuthCertificate(k.Key) {
		return false
	}
	cur := l.a.OnPrem.AuthConfig.CurrentCertificateThumbprint
	return cur != "" && l.legacyMoved(strings.ToUpper(cur))
}

// legacyMoved: tp is one of the tenant's on-prem auth certificates and the
// dedicated application now holds it (the legacy-key clean-up).
func (l *losses) legacyMoved(tp string) bool {
	on := &l.a.OnPrem
	auth := false
	for _, c := range on.Certificates {
		if strings.EqualFold(c.Thumbprint, tp) && strings.Contains(c.Subject, sim.AuthCertificateSubject) {
			auth = true
		}
	}
	for _, x := range []string{on.AuthConfig.CurrentCertificateThumbprint, on.AuthConfig.NextCertificateThumbprint, on.AuthConfig.PreviousCertificateThumbprint} {
		if x != "" && strings.EqualFold(x, tp) {
			auth = true
		}
	}
	if !auth || on.OrganizationGUID == "" {
		return false
	}
	name := plan.DedicatedAppPrefix + strings.ToLower(on.OrganizationGUID)
	for _, app := range l.a.Entra.Applications {
		if !strings.EqualFold(app.DisplayName, name) {
			continue
		}
		for _, k := range app.KeyCredentials {
			if KeyThumbprint(k) == tp {
				return true
			}
		}
	}
	return false
}

func (l *losses) exchange(side string, b, a *sim.ExchangeOrg) {
	for _, s := range b.AuthServers {
		x := findFold(a.AuthServers, s.Name, func(v *sim.AuthServer) string { return v.Name })
		what := fmt.Sprintf("%s auth server %q", side, s.Name)
		if x == nil {
			l.add("%s is gone", what)
			continue
		}
		if !strings.EqualFold(x.Type, s.Type) || !strings.EqualFold(strings.TrimSuffix(x.AuthMetadataURL, "/"), strings.TrimSuffix(s.AuthMetadataURL, "/")) {
			l.add("%s was %s %s, now %s %s", what, s.Type, s.AuthMetadataURL, x.Type, x.AuthMetadataURL)
		}
		if s.Enabled && !x.Enabled {
			l.add("%s was disabled", what)
		}
		if s.ApplicationIdentifier != "" && !strings.EqualFold(s.ApplicationIdentifier, x.ApplicationIdentifier) {
			l.add("%s ApplicationIdentifier %s was overwritten with %q", what, s.ApplicationIdentifier, x.ApplicationIdentifier)
		}
		for _, d := range s.DomainName {
			if !containsFold(x.DomainName, d) {
				l.add("%s lost DomainName %s", what, d)
			}
		}
	}
	for _, p := range b.PartnerApplications {
		x := findFold(a.PartnerApplications, p.Name, func(v *sim.PartnerApplication) string { return v.Name })
		switch {
		case x == nil:
			l.add("%s partner application %q is gone", side, p.Name)
		case p.Enabled && !x.Enabled:
			l.add("%s partner application %q was disabled", side, p.Name)
		}
	}
	ba, aa := b.AuthConfig, a.AuthConfig
	for _, f := range []struct{ name, b, a string }{
		{"CurrentCertificateThumbprint", ba.CurrentCertificateThumbprint, aa.CurrentCertificateThumbprint},
		{"NextCertificateThumbprint", ba.NextCertificateThumbprint, aa.NextCertificateThumbprint},
		{"PreviousCertificateThumbprint", ba.PreviousCertificateThumbprint, aa.PreviousCertificateThumbprint},
	} {
		if f.b != "" && !strings.EqualFold(f.b, f.a) {
			l.add("%s auth config %s was %s, now %q", side, f.name, f.b, f.a)
		}
	}
	for _, c := range b.Certificates {
		if findFold(a.Certificates, c.Thumbprint, func(v *sim.ExchangeCertificate) string { return v.Thumbprint }) == nil {
			l.add("%s certificate %s (%s) is gone", side, c.Thumbprint, c.Subject)
		}
	}
	for _, c := range b.IntraOrganizationConnectors {
		x := findFold(a.IntraOrganizationConnectors, c.Name, func(v *sim.IntraOrgConnector) string { return v.Name })
		what := fmt.Sprintf("%s IntraOrganizationConnector %q", side, c.Name)
		if x == nil {
			l.add("%s is gone", what)
			continue
		}
		for _, d := range c.TargetAddressDomains {
			if !containsFold(x.TargetAddressDomains, d) {
				l.add("%s lost target address domain %s", what, d)
			}
		}
		if c.Enabled && !x.Enabled {
			l.add("%s was disabled", what)
		}
	}
	for _, s := range b.AvailabilityAddressSpaces {
		x := findFold(a.AvailabilityAddressSpaces, s.ForestName, func(v *sim.AvailabilityAddressSpace) string { return v.ForestName })
		switch {
		case x == nil:
			l.add("%s availability address space %s is gone", side, s.ForestName)
		case *x != *s:
			l.add("%s availability address space %s was %+v, now %+v", side, s.ForestName, *s, *x)
		}
	}
	for _, o := range b.SettingOverrides {
		x := findFold(a.SettingOverrides, o.Name, func(v *sim.SettingOverride) string { return v.Name })
		switch {
		case x == nil:
			l.add("%s setting override %q is gone", side, o.Name)
		case !strings.EqualFold(x.Component, o.Component) || !strings.EqualFold(x.Section, o.Section) || !slices.Equal(x.Parameters, o.Parameters):
			l.add("%s setting override %q was %s/%s %v, now %s/%s %v", side, o.Name, o.Component, o.Section, o.Parameters, x.Component, x.Section, x.Parameters)
		}
	}
	for _, d := range b.AcceptedDomains {
		if !slices.ContainsFunc(a.AcceptedDomains, func(x sim.AcceptedDomain) bool { return strings.EqualFold(x.DomainName, d.DomainName) }) {
			l.add("%s accepted domain %s is gone", side, d.DomainName)
		}
	}
	for _, s := range b.Servers {
		if !slices.ContainsFunc(a.Servers, func(x sim.ExchangeServer) bool { return strings.EqualFold(x.Name, s.Name) }) {
			l.add("%s server %s is gone", side, s.Name)
		}
	}
	for _, v := range b.VirtualDirectories {
		if !slices.Contains(a.VirtualDirectories, v) {
			l.add("%s %s virtual directory on %s (%s, %s) is gone or changed", side, v.Kind, v.Server, v.InternalURL, v.ExternalURL)
		}
	}
	for _, m := range b.Mailboxes {
		if !containsFold(a.Mailboxes, m) {
			l.add("%s mailbox %s is gone", side, m)
		}
	}
}

func (l *losses) lync() {
	b, a := l.b.Lync, l.a.Lync
	if b == nil {
		return
	}
	if a == nil {
		l.add("the Lync deployment is gone")
		return
	}
	for _, h := range b.HostingProviders {
		if findFold(a.HostingProviders, h.Identity, func(v *sim.HostingProvider) string { return v.Identity }) == nil {
			l.add("Lync hosting provider %q is gone", h.Identity)
		}
	}
	for _, h := range b.EdgeLocalStore {
		if findFold(a.EdgeLocalStore, h.Identity, func(v *sim.HostingProvider) string { return v.Identity }) == nil {
			l.add("Lync Edge local-store hosting provider %q is gone", h.Identity)
		}
	}
	for _, p := range b.ExternalAccessPolicies {
		if !slices.ContainsFunc(a.ExternalAccessPolicies, func(x sim.ExternalAccessPolicy) bool { return strings.EqualFold(x.Identity, p.Identity) }) {
			l.add("Lync external access policy %q is gone", p.Identity)
		}
	}
}

// Additions lists, in words and sorted, what after has that before had
// not: objects (applications, service principals, app role assignments,
// auth servers, partner applications, connectors, availability address
// spaces, setting overrides, Lync hosting providers) and items added to
// objects that existed (keys, service principal names,
// requiredResourceAccess entries, auth-server domain names, connector
// target domains). A new application's or service principal's keys are
// listed too; its other items are not. Each line starts with the tenant ID.
// Tests compare the list with what the run should have added, so anything
// unexpected shows.
func Additions(before, after *sim.World) []string {
	var out []string
	bt := map[string]*sim.Tenant{}
	for _, t := range before.Tenants {
		bt[strings.ToLower(t.ID)] = t
	}
	for _, a := range after.Tenants {
		b := bt[strings.ToLower(a.ID)]
		if b == nil {
			out = append(out, fmt.Sprintf("%s: tenant %s", a.ID, a.DisplayName))
			continue
		}
		add := func(format string, args ...any) { out = append(out, a.ID+": "+fmt.Sprintf(format, args...)) }
		addEntra(add, &b.Entra, &a.Entra)
		addExchange(add, "on-prem", &b.OnPrem, &a.OnPrem)
		addExchange(add, "Exchange Online", &b.Online, &a.Online)
		if a.Lync != nil {
			var hb []*sim.HostingProvider
			if b.Lync != nil {
				hb = b.Lync.HostingProviders
			}
			for _, h := range a.Lync.HostingProviders {
				if findFold(hb, h.Identity, func(v *sim.HostingProvider) string { return v.Identity }) == nil {
					add("Lync hosting provider %q", h.Identity)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func addEntra(add func(string, ...any), b, a *sim.Entra) {
	apps := map[string]*sim.Application{}
	for _, x := range b.Applications {
		apps[strings.ToLower(x.ID)] = x
	}
	for _, x := range a.Applications {
		old := apps[strings.ToLower(x.ID)]
		if old == nil {
			add("application %q", x.DisplayName)
			for _, k := range x.KeyCredentials {
				add("key %s on application %q", KeyThumbprint(k), x.DisplayName)
			}
			continue
		}
		for _, r := range x.RequiredResourceAccess {
			for _, ra := range r.ResourceAccess {
				if !hasRRA(old.RequiredResourceAccess, r.ResourceAppID, ra) {
					add("requiredResourceAccess %s %s on %s for application %q", ra.Type, ra.ID, r.ResourceAppID, x.DisplayName)
				}
			}
		}
		addKeys(add, "application "+quote(x.DisplayName), old.KeyCredentials, x.KeyCredentials)
	}
	sps := map[string]*sim.ServicePrincipal{}
	names := map[string]string{}
	for _, x := range b.ServicePrincipals {
		sps[strings.ToLower(x.ID)] = x
	}
	for _, x := range a.ServicePrincipals {
		names[strings.ToLower(x.ID)] = x.DisplayName
	}
	for _, x := range a.ServicePrincipals {
		old := sps[strings.ToLower(x.ID)]
		if old == nil {
			add("service principal %q", x.DisplayName)
			for _, k := range x.KeyCredentials {
				add("key %s on service principal %q", KeyThumbprint(k), x.DisplayName)
			}
			continue
		}
		for _, n := range x.ServicePrincipalNames {
			if !containsFold(old.ServicePrincipalNames, n) {
				add("service principal name %s on %q", n, x.DisplayName)
			}
		}
		addKeys(add, "service principal "+quote(x.DisplayName), old.KeyCredentials, x.KeyCredentials)
	}
	for _, x := range a.AppRoleAssignments {
		if !slices.ContainsFunc(b.AppRoleAssignments, func(y *sim.AppRoleAssignment) bool { return strings.EqualFold(x.ID, y.ID) }) {
			add("app role assignment %s of %q on %q", x.AppRoleID, names[strings.ToLower(x.PrincipalID)], names[strings.ToLower(x.ResourceID)])
		}
	}
}

func addKeys(add func(string, ...any), on string, before, after []sim.KeyCredential) {
	have := map[string]bool{}
	for _, k := range before {
		have[KeyThumbprint(k)] = true
	}
	for _, k := range after {
		if tp := KeyThumbprint(k); !have[tp] {
			have[tp] = true
			add("key %s on %s", tp, on)
		}
	}
}

func addExchange(add func(string, ...any), side string, b, a *sim.ExchangeOrg) {
	for _, s := range a.AuthServers {
		old := findFold(b.AuthServers, s.Name, func(v *sim.AuthServer) string { return v.Name })
		if old == nil {
			add("%s auth server %q (%s, %s)", side, s.Name, s.Type, s.AuthMetadataURL)
			continue
		}
		for _, d := range s.DomainName {
			if !containsFold(old.DomainName, d) {
				add("%s auth server %q domain name %s", side, s.Name, d)
			}
		}
	}
	for _, p := range a.PartnerApplications {
		if findFold(b.PartnerApplications, p.Name, func(v *sim.PartnerApplication) string { return v.Name }) == nil {
			add("%s partner application %q", side, p.Name)
		}
	}
	for _, c := range a.IntraOrganizationConnectors {
		old := findFold(b.IntraOrganizationConnectors, c.Name, func(v *sim.IntraOrgConnector) string { return v.Name })
		if old == nil {
			add("%s IntraOrganizationConnector %q", side, c.Name)
			continue
		}
		for _, d := range c.TargetAddressDomains {
			if !containsFold(old.TargetAddressDomains, d) {
				add("%s IntraOrganizationConnector %q target address domain %s", side, c.Name, d)
			}
		}
	}
	for _, s := range a.AvailabilityAddressSpaces {
		if findFold(b.AvailabilityAddressSpaces, s.ForestName, func(v *sim.AvailabilityAddressSpace) string { return v.ForestName }) == nil {
			add("%s availability address space %s", side, s.ForestName)
		}
	}
	for _, o := range a.SettingOverrides {
		if findFold(b.SettingOverrides, o.Name, func(v *sim.SettingOverride) string { return v.Name }) == nil {
			add("%s setting override %q", side, o.Name)
		}
	}
}

func findFold[T any](list []T, name string, key func(T) string) T {
	var zero T
	for _, x := range list {
		if strings.EqualFold(key(x), name) {
			return x
		}
	}
	return zero
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func day(t time.Time) string {
	if t.IsZero() {
		return "an unknown date"
	}
	return t.UTC().Format(time.DateOnly)
}
