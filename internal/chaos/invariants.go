package chaos

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// The invariants the chaos suite judges the world with, besides
// e2e.NothingLost: no object created twice, every object the product did
// not make still there as it was, and every key a renewal staged still in
// Entra. Each takes snapshots (World.Clone, or a parsed dump) taken before
// and after the run; none reads the world's lock.

// Duplicates lists every object or item after holds more often than
// before did, where more than one is a duplicate: a create retried after
// its reply was lost, or a second writer creating what the first already
// had. Counted per tenant:
//
//   - applications per uniqueName and per display name; service
//     principals per appId; app role assignments per principal, resource
//     and role;
//   - keys per certificate thumbprint, and service principal names, on each
//     application and service principal;
//   - on each Exchange side, auth servers per name and per metadata URL,
//     IntraOrganizationConnectors per name and per target address domain,
//     availability address spaces per forest, partner applications per
//     application identifier.
//
// A world seeded with a duplicate is not the run's doing: only an increase
// is reported. Sorted.
func Duplicates(before, after *sim.World) []string {
	had := map[string]map[string]int{}
	for _, t := range before.Tenants {
		had[strings.ToLower(t.ID)] = objectCounts(t)
	}
	var out []string
	for _, t := range after.Tenants {
		b := had[strings.ToLower(t.ID)]
		for what, n := range objectCounts(t) {
			if n > 1 && n > b[what] {
				out = append(out, fmt.Sprintf("%s: %s: %d (%d before the run)", t.ID, what, n, b[what]))
			}
		}
	}
	sort.Strings(out)
	return out
}

// objectCounts counts, for one tenant, what Duplicates compares.
func objectCounts(t *sim.Tenant) map[string]int {
	n := map[string]int{}
	low := strings.ToLower
	for _, a := range t.Entra.Applications {
		if a.UniqueName != "" {
			n["applications with uniqueName "+low(a.UniqueName)]++
		}
		n[fmt.Sprintf("applications named %q", low(a.DisplayName))]++
		obj := fmt.Sprintf("application %q (%s)", a.DisplayName, a.ID)
		for _, k := range a.KeyCredentials {
			n[obj+" keys of certificate "+e2e.KeyThumbprint(k)]++
		}
	}
	for _, sp := range t.Entra.ServicePrincipals {
		n["service principals of appId "+low(sp.AppID)]++
		obj := fmt.Sprintf("service principal %q (%s)", sp.DisplayName, sp.ID)
		for _, k := range sp.KeyCredentials {
			n[obj+" keys of certificate "+e2e.KeyThumbprint(k)]++
		}
		for _, name := range sp.ServicePrincipalNames {
			n[obj+" service principal name "+low(name)]++
		}
	}
	for _, x := range t.Entra.AppRoleAssignments {
		n[fmt.Sprintf("app role assignments of role %s to %s on %s", low(x.AppRoleID), low(x.PrincipalID), low(x.ResourceID))]++
	}
	for _, side := range []struct {
		name string
		org  *sim.ExchangeOrg
	}{{"on-prem", &t.OnPrem}, {"Exchange Online", &t.Online}} {
		o := side.org
		for _, s := range o.AuthServers {
			n[fmt.Sprintf("%s auth servers named %q", side.name, low(s.Name))]++
			n[fmt.Sprintf("%s auth servers with metadata URL %s", side.name, metadataURL(s.AuthMetadataURL))]++
		}
		for _, c := range o.IntraOrganizationConnectors {
			n[fmt.Sprintf("%s IntraOrganizationConnectors named %q", side.name, low(c.Name))]++
			seen := map[string]bool{}
			for _, d := range c.TargetAddressDomains {
				if d = low(d); !seen[d] {
					seen[d] = true
					n[fmt.Sprintf("%s IntraOrganizationConnectors for target address domain %s", side.name, d)]++
				}
			}
		}
		for _, s := range o.AvailabilityAddressSpaces {
			n[fmt.Sprintf("%s availability address spaces for forest %s", side.name, low(s.ForestName))]++
		}
		for _, p := range o.PartnerApplications {
			if p.ApplicationIdentifier != "" {
				n[fmt.Sprintf("%s partner applications for %s", side.name, low(p.ApplicationIdentifier))]++
			}
		}
	}
	return n
}

func metadataURL(u string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(u), "/"))
}

// Foreign is what ForeignLost found.
type Foreign struct {
	// Guarded counts the objects and items checked: applications, service
	// principals, app role assignments, keys, service principal names, auth
	// servers, partner applications, connectors, availability address
	// spaces, certificates and setting overrides.
	Guarded int
	// Lost says, per tenant, what is gone or was changed.
	Lost []string
	// ExpiredDropped counts expired keys of other applications that left a
	// keyCredentials collection the product rewrote to add its own key (a
	// whole-collection PATCH leaves expired keys out; see plan.MergeKeys).
	ExpiredDropped int
}

// ForeignLost checks every object of before that the product did not make
// (an empty CreatedBy: seeded by the world, another tool or a person) and
// every key that is not one of the tenant's Exchange auth certificates:
// each must still exist in after, unchanged. Unchanged means every value
// it had is still there: names, identifiers, URLs, types, realms, enabled
// flags and every key property (keyId, customKeyIdentifier, display name,
// type, usage, validity, certificate) are equal; a list may only have
// grown (service principal names, required resource access, app roles,
// tags, an auth server's domain names, a connector's target domains),
// and an auth server's empty ApplicationIdentifier may have been filled
// in. Those additions are what adopting an object means (the step
// configures what exists instead of creating a second one).
//
// A key of another application that had expired may be gone only from a
// collection that gained a key (counted in ExpiredDropped); the tenant's
// auth certificates' keys are the product's to manage and are judged by
// e2e.NothingLost and StagedKeysLost instead.
func ForeignLost(before, after *sim.World) Foreign {
	var f Foreign
	now := after.Now()
	afterT := map[string]*sim.Tenant{}
	for _, t := range after.Tenants {
		afterT[strings.ToLower(t.ID)] = t
	}
	for _, b := range before.Tenants {
		a := afterT[strings.ToLower(b.ID)]
		if a == nil {
			f.Lost = append(f.Lost, fmt.Sprintf("tenant %s is gone", b.ID))
			continue
		}
		g := &foreignCheck{f: &f, tenant: b.ID, now: now, b: b, a: a}
		g.entra()
		g.exchange("on-prem", &b.OnPrem, &a.OnPrem)
		g.exchange("Exchange Online", &b.Online, &a.Online)
	}
	sort.Strings(f.Lost)
	return f
}

type foreignCheck struct {
	f      *Foreign
	tenant string
	now    time.Time
	b, a   *sim.Tenant
}

func (g *foreignCheck) lost(format string, args ...any) {
	g.f.Lost = append(g.f.Lost, g.tenant+": "+fmt.Sprintf(format, args...))
}

func (g *foreignCheck) entra() {
	b, a := &g.b.Entra, &g.a.Entra
	for _, x := range b.Applications {
		if x.CreatedBy != "" {
			continue
		}
		g.f.Guarded++
		what := fmt.Sprintf("application %q (%s)", x.DisplayName, x.ID)
		y := findByID(a.Applications, x.ID, func(v *sim.Application) string { return v.ID })
		if y == nil {
			g.lost("%s is gone", what)
			continue
		}
		g.same(what, "appId", x.AppID, y.AppID)
		g.same(what, "displayName", x.DisplayName, y.DisplayName)
		g.same(what, "uniqueName", x.UniqueName, y.UniqueName)
		for _, r := range x.RequiredResourceAccess {
			for _, ra := range r.ResourceAccess {
				if !slices.ContainsFunc(y.RequiredResourceAccess, func(q sim.RequiredResourceAccess) bool {
					return strings.EqualFold(q.ResourceAppID, r.ResourceAppID) && slices.ContainsFunc(q.ResourceAccess, func(z sim.ResourceAccess) bool {
						return strings.EqualFold(z.ID, ra.ID) && strings.EqualFold(z.Type, ra.Type)
					})
				}) {
					g.lost("%s lost requiredResourceAccess %s %s on %s", what, ra.Type, ra.ID, r.ResourceAppID)
				}
			}
		}
		g.kept(what, "tag", x.Tags, y.Tags)
		g.keys(what, x.KeyCredentials, y.KeyCredentials)
	}
	for _, x := range b.ServicePrincipals {
		if x.CreatedBy != "" {
			continue
		}
		g.f.Guarded++
		what := fmt.Sprintf("service principal %q (%s)", x.DisplayName, x.ID)
		y := findByID(a.ServicePrincipals, x.ID, func(v *sim.ServicePrincipal) string { return v.ID })
		if y == nil {
			g.lost("%s is gone", what)
			continue
		}
		g.same(what, "appId", x.AppID, y.AppID)
		g.same(what, "displayName", x.DisplayName, y.DisplayName)
		g.f.Guarded += len(x.ServicePrincipalNames)
		g.kept(what, "service principal name", x.ServicePrincipalNames, y.ServicePrincipalNames)
		for _, r := range x.AppRoles {
			if !slices.ContainsFunc(y.AppRoles, func(q sim.AppRole) bool { return strings.EqualFold(q.ID, r.ID) && q.Value == r.Value }) {
				g.lost("%s lost app role %s (%s)", what, r.Value, r.ID)
			}
		}
		g.kept(what, "tag", x.Tags, y.Tags)
		g.keys(what, x.KeyCredentials, y.KeyCredentials)
	}
	for _, x := range b.AppRoleAssignments {
		g.f.Guarded++
		if !slices.ContainsFunc(a.AppRoleAssignments, func(y *sim.AppRoleAssignment) bool {
			return strings.EqualFold(x.ID, y.ID) && strings.EqualFold(x.PrincipalID, y.PrincipalID) &&
				strings.EqualFold(x.ResourceID, y.ResourceID) && strings.EqualFold(x.AppRoleID, y.AppRoleID)
		}) {
			g.lost("app role assignment %s (role %s of %s on %s) is gone or changed", x.ID, x.AppRoleID, x.PrincipalID, x.ResourceID)
		}
	}
}

// authCert: the certificate is one of the tenant's Exchange auth
// certificates (by subject, or listed on-prem before or after the run).
func (g *foreignCheck) authCert(k sim.KeyCredential) bool {
	if len(k.Key) > 0 && plan.IsExchangeAuthCertificate(k.Key) {
		return true
	}
	tp := e2e.KeyThumbprint(k)
	for _, t := range []*sim.Tenant{g.b, g.a} {
		ac := t.OnPrem.AuthConfig
		for _, x := range []string{ac.CurrentCertificateThumbprint, ac.NextCertificateThumbprint, ac.PreviousCertificateThumbprint} {
			if x != "" && strings.EqualFold(x, tp) {
				return true
			}
		}
		for _, c := range t.OnPrem.Certificates {
			if strings.EqualFold(c.Thumbprint, tp) && strings.Contains(c.Subject, sim.AuthCertificateSubject) {
				return true
			}
		}
	}
	return false
}

// keys: every key of another application is still there, unchanged; an
// expired one may have left a collection that gained a key.
func (g *foreignCheck) keys(what string, before, after []sim.KeyCredential) {
	gained := false
	for _, y := range after {
		if !slices.ContainsFunc(before, func(x sim.KeyCredential) bool { return e2e.KeyThumbprint(x) == e2e.KeyThumbprint(y) }) {
			gained = true
		}
	}
	for _, k := range before {
		if g.authCert(k) {
			continue
		}
		g.f.Guarded++
		tp := e2e.KeyThumbprint(k)
		i := slices.IndexFunc(after, func(y sim.KeyCredential) bool { return strings.EqualFold(y.KeyID, k.KeyID) })
		if i < 0 {
			expired := !k.EndDateTime.IsZero() && k.EndDateTime.Before(g.now)
			switch {
			case expired && gained:
				g.f.ExpiredDropped++
			case expired:
				g.lost("%s lost the expired key %s (keyId %s, %s) although no key was added to it", what, tp, k.KeyID, k.DisplayName)
			default:
				g.lost("%s lost the key %s (keyId %s, %s, valid until %s)", what, tp, k.KeyID, k.DisplayName, k.EndDateTime.UTC().Format(time.DateOnly))
			}
			continue
		}
		y := after[i]
		var diff []string
		for _, d := range []struct {
			field string
			same  bool
		}{
			{"customKeyIdentifier", y.CustomKeyIdentifier == k.CustomKeyIdentifier},
			{"displayName", y.DisplayName == k.DisplayName},
			{"type", y.Type == k.Type},
			{"usage", y.Usage == k.Usage},
			{"startDateTime", y.StartDateTime.Equal(k.StartDateTime)},
			{"endDateTime", y.EndDateTime.Equal(k.EndDateTime)},
			{"certificate", bytes.Equal(y.Key, k.Key) || len(k.Key) == 0},
		} {
			if !d.same {
				diff = append(diff, d.field)
			}
		}
		if len(diff) > 0 {
			g.lost("%s: key %s (keyId %s) changed its %s", what, tp, k.KeyID, strings.Join(diff, ", "))
		}
	}
}

func (g *foreignCheck) exchange(side string, b, a *sim.ExchangeOrg) {
	for _, x := range b.AuthServers {
		if x.CreatedBy != "" {
			continue
		}
		g.f.Guarded++
		what := fmt.Sprintf("%s auth server %q", side, x.Name)
		y := findByID(a.AuthServers, x.Name, func(v *sim.AuthServer) string { return v.Name })
		if y == nil {
			g.lost("%s is gone", what)
			continue
		}
		g.sameFold(what, "type", x.Type, y.Type)
		g.sameFold(what, "AuthMetadataUrl", metadataURL(x.AuthMetadataURL), metadataURL(y.AuthMetadataURL))
		g.sameFold(what, "realm", x.Realm, y.Realm)
		g.sameBool(what, "enabled", x.Enabled, y.Enabled)
		if x.ApplicationIdentifier != "" {
			g.sameFold(what, "ApplicationIdentifier", x.ApplicationIdentifier, y.ApplicationIdentifier)
		}
		g.kept(what, "domain name", x.DomainName, y.DomainName)
	}
	for _, x := range b.PartnerApplications {
		g.f.Guarded++
		what := fmt.Sprintf("%s partner application %q", side, x.Name)
		y := findByID(a.PartnerApplications, x.Name, func(v *sim.PartnerApplication) string { return v.Name })
		if y == nil {
			g.lost("%s is gone", what)
			continue
		}
		g.sameFold(what, "ApplicationIdentifier", x.ApplicationIdentifier, y.ApplicationIdentifier)
		g.sameFold(what, "realm", x.Realm, y.Realm)
		if x.Enabled && !y.Enabled {
			g.lost("%s was disabled", what)
		}
	}
	for _, x := range b.IntraOrganizationConnectors {
		if x.CreatedBy != "" {
			continue
		}
		g.f.Guarded++
		what := fmt.Sprintf("%s IntraOrganizationConnector %q", side, x.Name)
		y := findByID(a.IntraOrganizationConnectors, x.Name, func(v *sim.IntraOrgConnector) string { return v.Name })
		if y == nil {
			g.lost("%s is gone", what)
			continue
		}
		g.sameFold(what, "DiscoveryEndpoint", metadataURL(x.DiscoveryEndpoint), metadataURL(y.DiscoveryEndpoint))
		g.sameBool(what, "enabled", x.Enabled, y.Enabled)
		g.kept(what, "target address domain", x.TargetAddressDomains, y.TargetAddressDomains)
	}
	for _, x := range b.AvailabilityAddressSpaces {
		g.f.Guarded++
		y := findByID(a.AvailabilityAddressSpaces, x.ForestName, func(v *sim.AvailabilityAddressSpace) string { return v.ForestName })
		switch {
		case y == nil:
			g.lost("%s availability address space %s is gone", side, x.ForestName)
		case *x != *y:
			g.lost("%s availability address space %s was %+v, now %+v", side, x.ForestName, *x, *y)
		}
	}
	for _, x := range b.Certificates {
		g.f.Guarded++
		if findByID(a.Certificates, x.Thumbprint, func(v *sim.ExchangeCertificate) string { return v.Thumbprint }) == nil {
			g.lost("%s certificate %s (%s) is gone", side, x.Thumbprint, x.Subject)
		}
	}
	for _, x := range b.SettingOverrides {
		g.f.Guarded++
		y := findByID(a.SettingOverrides, x.Name, func(v *sim.SettingOverride) string { return v.Name })
		switch {
		case y == nil:
			g.lost("%s setting override %q is gone", side, x.Name)
		case !strings.EqualFold(x.Component, y.Component) || !strings.EqualFold(x.Section, y.Section) || !slices.Equal(x.Parameters, y.Parameters):
			g.lost("%s setting override %q changed", side, x.Name)
		}
	}
}

func (g *foreignCheck) same(what, field, b, a string) {
	if b != a {
		g.lost("%s: %s was %q, now %q", what, field, b, a)
	}
}

func (g *foreignCheck) sameFold(what, field, b, a string) {
	if !strings.EqualFold(b, a) {
		g.lost("%s: %s was %q, now %q", what, field, b, a)
	}
}

func (g *foreignCheck) sameBool(what, field string, b, a bool) {
	if b != a {
		g.lost("%s: %s was %v, now %v", what, field, b, a)
	}
}

// kept: every item of b is still in a (case-insensitive).
func (g *foreignCheck) kept(what, item string, b, a []string) {
	for _, x := range b {
		if !slices.ContainsFunc(a, func(y string) bool { return strings.EqualFold(x, y) }) {
			g.lost("%s lost %s %s", what, item, x)
		}
	}
}

func findByID[T any](list []*T, id string, key func(*T) string) *T {
	for _, x := range list {
		if strings.EqualFold(key(x), id) {
			return x
		}
	}
	return nil
}

// Renewal is one renewal run the suite started, as it ended.
type Renewal struct {
	Tenant     string
	WorkflowID string
	// Writes: started with a window that makes it renew (create, stage,
	// upload, wait, publish); otherwise it reads and finds nothing due.
	Writes bool
	// AfterSetup: started once the rollout had settled, no setup holding
	// a lock any more (the suite found none when it was due).
	AfterSetup bool
	// Busy counts its pauses with TenantBusy (another workflow held the
	// tenant's lock longer than its lock wait); Paused lists every pause
	// with step, error type and message.
	Busy   int
	Paused []string
	// State and Action are the run's result (renewed, not-due, failed…);
	// Err is how it failed, if it did. Open: it had not closed when the
	// suite gave up waiting.
	State, Action, Err string
	Open               bool
	// Reason is the error type of its last pause or failure, if any:
	// a renewal that stopped with a reason is excused a staged key it
	// could not keep.
	Reason string
}

// Staged is what StagedKeysLost found.
type Staged struct {
	// Keys: certificates a renewal created and put in service (current)
	// or staged (next), whose key must be in Entra.
	Keys int
	// Lost: such a certificate whose key is not on the Entra object the
	// tenant's trust uses, with no reason given by its renewal.
	Lost []string
	// Excused: the same, where the renewal stopped and said why.
	Excused []string
}

// StagedKeysLost checks the keys renewals staged: every auth certificate
// that is in after's certificate store but not in before's (a renewal made
// it) and that Get-AuthConfig names as current or next must have its key
// on the Entra object the tenant's trust uses: the application the evoSTS
// auth server names (dedicated application), or else the Exchange Online
// first-party service principal. A key that is missing is excused only
// when the tenant's renewal stopped with a reason (paused or failed with
// an error type), as a renewal that finds its staged key gone does.
func StagedKeysLost(before, after *sim.World, renewals []Renewal) Staged {
	var s Staged
	beforeT := map[string]*sim.Tenant{}
	for _, t := range before.Tenants {
		beforeT[strings.ToLower(t.ID)] = t
	}
	reason := map[string]string{}
	for _, r := range renewals {
		if r.Reason != "" {
			reason[strings.ToLower(r.Tenant)] = r.Reason
		}
	}
	for _, a := range after.Tenants {
		b := beforeT[strings.ToLower(a.ID)]
		if b == nil {
			continue
		}
		ac := a.OnPrem.AuthConfig
		for _, c := range a.OnPrem.Certificates {
			if !strings.Contains(c.Subject, sim.AuthCertificateSubject) ||
				findByID(b.OnPrem.Certificates, c.Thumbprint, func(v *sim.ExchangeCertificate) string { return v.Thumbprint }) != nil {
				continue
			}
			role := ""
			switch {
			case strings.EqualFold(ac.CurrentCertificateThumbprint, c.Thumbprint):
				role = "current"
			case strings.EqualFold(ac.NextCertificateThumbprint, c.Thumbprint):
				role = "next"
			default:
				continue // created, never put in service: no key is owed
			}
			s.Keys++
			object, keys := trustObject(a)
			if slices.ContainsFunc(keys, func(k sim.KeyCredential) bool { return strings.EqualFold(e2e.KeyThumbprint(k), c.Thumbprint) }) {
				continue
			}
			msg := fmt.Sprintf("%s: the %s auth certificate %s, made by a renewal, has no key on %s", a.ID, role, c.Thumbprint, object)
			if why := reason[strings.ToLower(a.ID)]; why != "" && role == "next" {
				s.Excused = append(s.Excused, msg+" (the renewal stopped: "+why+")")
				continue
			}
			s.Lost = append(s.Lost, msg)
		}
	}
	sort.Strings(s.Lost)
	sort.Strings(s.Excused)
	return s
}

// trustObject is the Entra object Exchange's OAuth uses for a tenant: the
// application whose appId an enabled evoSTS (AzureAD) auth server names,
// else the first-party service principal.
func trustObject(t *sim.Tenant) (string, []sim.KeyCredential) {
	for _, s := range t.OnPrem.AuthServers {
		if !s.Enabled || !strings.EqualFold(s.Type, "AzureAD") || s.ApplicationIdentifier == "" {
			continue
		}
		for _, app := range t.Entra.Applications {
			if strings.EqualFold(app.AppID, s.ApplicationIdentifier) {
				return fmt.Sprintf("application %q (appId %s)", app.DisplayName, app.AppID), app.KeyCredentials
			}
		}
		return fmt.Sprintf("application %s (named by auth server %q, not in Entra)", s.ApplicationIdentifier, s.Name), nil
	}
	for _, sp := range t.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			return fmt.Sprintf("the first-party service principal %q", sp.DisplayName), sp.KeyCredentials
		}
	}
	return "the first-party service principal (not in Entra)", nil
}

// RenewedAllowed drops from e2e.NothingLost's findings the auth config
// change a completed renewal is asked to make: on a renewed tenant the
// on-prem current (and previous) certificate thumbprint now names a
// certificate the run created. Every other finding stays.
func RenewedAllowed(lost []string, before, after *sim.World, renewed []string) []string {
	created := map[string]bool{} // tenant|thumbprint
	beforeT := map[string]*sim.Tenant{}
	for _, t := range before.Tenants {
		beforeT[strings.ToLower(t.ID)] = t
	}
	for _, a := range after.Tenants {
		b := beforeT[strings.ToLower(a.ID)]
		for _, c := range a.OnPrem.Certificates {
			if b != nil && findByID(b.OnPrem.Certificates, c.Thumbprint, func(v *sim.ExchangeCertificate) string { return v.Thumbprint }) == nil {
				created[strings.ToLower(a.ID+"|"+c.Thumbprint)] = true
			}
		}
	}
	var out []string
	for _, l := range lost {
		keep := true
		for _, id := range renewed {
			prefix := id + ": on-prem auth config CurrentCertificateThumbprint was "
			if !strings.HasPrefix(l, prefix) {
				continue
			}
			// "...was OLD, now "NEW""
			if _, now, ok := strings.Cut(l, ", now "); ok && created[strings.ToLower(id+"|"+strings.Trim(now, `"`))] {
				keep = false
			}
		}
		if keep {
			out = append(out, l)
		}
	}
	return out
}

// SessionProblems judges the simulator's remote PowerShell session counts
// (over every site) once every worker has closed: a session is removed by
// its host on the way out, or orphaned only when the host was killed by an
// injected fault (hostDeaths: host_crash, drop and apply_then_drop on the
// shell), as a crashed powershell.exe leaves its session behind. An
// orphaned session the worker left is one the server keeps until it
// expires, with whatever cmdlet it was running still running.
func SessionProblems(s sim.SessionCounts, hostDeaths int) []string {
	var out []string
	if s.Orphaned != hostDeaths {
		out = append(out, fmt.Sprintf("%d remote session(s) orphaned, %d host(s) killed by injected faults: %d session(s) left behind by the worker",
			s.Orphaned, hostDeaths, s.Orphaned-hostDeaths))
	}
	if s.Open != 0 {
		out = append(out, fmt.Sprintf("%d remote session(s) still open after every worker closed", s.Open))
	}
	return out
}

// HangProblems judges the hung cmdlets: every one the hung-cmdlets window
// held (hung) must have been cancelled by the worker removing its session
// (cancelled), at least one of them by the call timeout (timedOut; the
// others may have gone with a worker's shutdown), each followed by a new
// host at its site (replaced: the step's retry does not wait on the hung
// one), and none may have run after its full delay in a session nobody
// removed (ranLate).
func HangProblems(hung, cancelled, timedOut, replaced, ranLate int) []string {
	var out []string
	if cancelled != hung {
		out = append(out, fmt.Sprintf("%d cmdlet(s) hung, %d cancelled by the worker removing the session", hung, cancelled))
	}
	if replaced != cancelled {
		out = append(out, fmt.Sprintf("%d hung cmdlet(s) cancelled, after %d of them a new host opened a session at the site", cancelled, replaced))
	}
	if hung > 0 && timedOut == 0 {
		out = append(out, fmt.Sprintf("none of the %d hung cmdlet(s) was ended by the call timeout (%s)", hung, CallTimeout))
	}
	if ranLate > 0 {
		out = append(out, fmt.Sprintf("%d hung cmdlet(s) ran after %s in a session left behind", ranLate, HangFor))
	}
	return out
}
