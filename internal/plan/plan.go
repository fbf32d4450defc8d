package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Input is what every step's decision sees: the desired configuration,
// what discovery saw, and the time that decides which keys have expired.
type Input struct {
	Desired  Desired
	Observed Observed
	Now      time.Time
}

// Decision is one step's pure decision: each is small so that a test can
// pin one step's decision without building a whole tenant around it.
type Decision struct {
	Step   Step
	Decide func(Input) Action
}

// BuildPlanWith compares the desired configuration with what discovery saw
// and returns one action per step of chain, in its order: the setup's
// steps (package steps lists them, each with its decision). now decides
// which keys have expired. A plan whose actions are all none, skip or
// check (Converged) means a run writes nothing. The chain's length and
// order never depend on the tenant: skipped steps stay in the plan with
// their reason, so every tenant's plan reads the same way; a running setup
// keeps the order its plan was recorded with.
//
// It is named BuildPlan… rather than Build… because Build is the Exchange
// build number type.
func BuildPlanWith(chain []Decision, d Desired, o Observed, now time.Time) []Action {
	in := Input{Desired: d, Observed: o, Now: now}
	out := make([]Action, 0, len(chain))
	for _, c := range chain {
		a := c.Decide(in)
		a.Step = c.Step
		out = append(out, a)
	}
	return out
}

func dedicated(in Input) bool { return in.Desired.Mode == ModeDedicatedApp }

// skipLegacy says why a dedicated-app step does not apply. Only the
// dedicated-app step repeats the mode's full reason; five copies of it
// would bury the plan.
func skipLegacy(what string) Action {
	return Action{Change: ChangeSkip, Reason: "legacy-first-party mode " + what + " (see " + string(StepDedicatedApp) + " for why this mode)"}
}

// --- step 1 ---

// DecideAuthServersStep recognises the tenant's auth servers by type and realm,
// not by name or metadata URL: the Hybrid Configuration Wizard calls them
// "ACS - <GUID>" and "EvoSts - <GUID>" and puts the tenant ID in the ACS
// URL, and Exchange refuses a second server for the same realm
// (ErrorExistingAuthServerWithSameRealm).
func DecideAuthServersStep(in Input) Action {
	acs := DecideAuthServer("ACS", in.Observed.AuthServers, in.Desired.ACS)
	evo := DecideAuthServer("evoSTS", in.Observed.AuthServers, in.Desired.EvoSTS)
	return Action{
		Change:  strongest(acs.Change, evo.Change),
		Reason:  acs.Reason + "; " + evo.Reason,
		Details: append(acs.Details, evo.Details...),
	}
}

// afterAuthServers is the auth server list as step 1 leaves it, for the
// steps after it to plan on.
func afterAuthServers(in Input) []AuthServer {
	list := slices.Clone(in.Observed.AuthServers)
	for _, spec := range []AuthServerSpec{in.Desired.ACS, in.Desired.EvoSTS} {
		dec := DecideAuthServer("", list, spec)
		switch dec.Change {
		case ChangeUpdate:
			for i := range list {
				if list[i].Name == dec.Server.Name {
					list[i].Enabled = true
				}
			}
		case ChangeCreate:
			list = append(list, AuthServer{Name: spec.Name, Type: spec.Type, MetadataURL: spec.MetadataURL, Realm: spec.Realm, Enabled: true})
		}
	}
	return list
}

// --- step 2 ---

func DecidePartnerAppStep(in Input) Action {
	c, reason := DecidePartnerApp(in.Observed.PartnerApp)
	a := Action{Change: c, Reason: reason}
	if c == ChangeUpdate {
		a.Details = []string{fmt.Sprintf("Set-PartnerApplication -Identity '%s' -Enabled $true", in.Observed.PartnerApp.Name)}
	}
	return a
}

// --- step 3 ---

// DecideExportCertStep is a read: discovery already holds the public DER, so it
// never writes, but its reason tells the admin which certificates the
// upload will use and until when they are valid.
func DecideExportCertStep(in Input) Action {
	if len(in.Desired.Keys) == 0 {
		return Action{Change: ChangeNone, Reason: "no auth certificate to export"}
	}
	parts := []string{fmt.Sprintf("the current auth certificate %s (valid until %s) is exported from the Exchange certificate store", short(in.Desired.Keys[0].Thumbprint), day(in.Desired.Keys[0].End))}
	if len(in.Desired.Keys) > 1 {
		parts = append(parts, fmt.Sprintf("the next one, %s, staged for %s, is exported too", short(in.Desired.Keys[1].Thumbprint), day(in.Observed.AuthConfig.NextEffective)))
	}
	var details []string
	for _, k := range in.Desired.Keys {
		details = append(details, fmt.Sprintf("%s valid %s to %s", k.Thumbprint, day(k.Start), day(k.End)))
		if expiredAt(k, in.Now) {
			parts = append(parts, fmt.Sprintf("%s expired on %s and will not be uploaded", short(k.Thumbprint), day(k.End)))
		}
	}
	return Action{Change: ChangeNone, Reason: strings.Join(parts, "; "), Details: details}
}

// --- dedicated application: the application, its service principal, consent ---

func DecideDedicatedAppStep(in Input) Action {
	if !dedicated(in) {
		return Action{Change: ChangeSkip, Reason: "legacy-first-party mode uploads the key to the shared first-party service principal instead: " + in.Desired.ModeReason}
	}
	app, sp := in.Observed.DedicatedApp, in.Observed.DedicatedSP
	name := in.Desired.DedicatedAppName
	var todo []string
	if !app.Exists {
		todo = append(todo, fmt.Sprintf("create application %s (signInAudience AzureADMyOrg)", name))
	}
	if !app.HasFullAccessAsApp {
		todo = append(todo, fmt.Sprintf("request full_access_as_app (%s, Role) on Exchange Online (%s)", FullAccessAsAppRoleID, cloud.FirstPartyAppID))
	}
	if !sp.Exists {
		todo = append(todo, "create its service principal")
	}
	if !in.Observed.ConsentGranted {
		todo = append(todo, "grant admin consent for full_access_as_app")
	}
	switch {
	case len(todo) == 0:
		return Action{Change: ChangeNone, Reason: fmt.Sprintf("application %s (appId %s) exists with full_access_as_app, its service principal and admin consent", name, app.AppID)}
	case !app.Exists:
		return Action{Change: ChangeCreate, Reason: fmt.Sprintf("application %s does not exist; it will be created with its service principal and admin consent for full_access_as_app", name), Details: todo}
	}
	return Action{Change: ChangeUpdate, Reason: fmt.Sprintf("application %s (appId %s) exists but is incomplete: %s", name, app.AppID, strings.Join(todo, ", ")), Details: todo}
}

// --- step 4: the keys ---

// DecideKeysStep puts the auth certificates where the mode's tokens are checked:
// the dedicated application, or the shared first-party service principal
// on the legacy path. Never both: the legacy key is what the clean-up
// later removes.
func DecideKeysStep(in Input) Action {
	if len(in.Desired.Keys) == 0 {
		return Action{Change: ChangeNone, Reason: "no auth certificate to upload"}
	}
	target := "the Exchange Online first-party service principal"
	existing := in.Observed.FirstPartySP.Keys
	if dedicated(in) {
		target = "application " + in.Desired.DedicatedAppName
		existing = in.Observed.DedicatedApp.Keys
		if !in.Observed.DedicatedApp.Exists {
			dec := MergeKeys(nil, in.Desired.Keys, in.Now, MergeOptions{})
			return Action{Change: ChangeCreate,
				Reason:  fmt.Sprintf("on %s, once it is created: %s", target, dec.Reason),
				Details: keyDetails(dec)}
		}
	}
	dec := MergeKeys(existing, in.Desired.Keys, in.Now, MergeOptions{})
	c := ChangeNone
	if dec.Changed {
		c = ChangeUpdate
	}
	return Action{Change: c, Reason: "on " + target + ": " + dec.Reason, Details: keyDetails(dec)}
}

func keyDetails(d KeyDecision) []string {
	var out []string
	for _, a := range d.Added {
		out = append(out, "add "+a)
	}
	for _, x := range d.Dropped {
		out = append(out, "drop "+labelOr(x.Thumbprint, x.Key)+": "+x.Reason)
	}
	for _, r := range d.Rejected {
		out = append(out, "refuse "+labelOr(r.Thumbprint, r.Key)+": "+r.Reason)
	}
	if d.Changed {
		for _, k := range d.Kept {
			out = append(out, "keep "+k)
		}
	}
	return out
}

// --- step 5 ---

// DecideSPNsStep always targets the first-party service principal, in both
// modes: Test-OAuthConnectivity from Exchange Online checks the on-prem
// host against its names, and the legacy-key clean-up leaves them alone
// (removing keys never touches servicePrincipalNames).
func DecideSPNsStep(in Input) Action {
	dec := UnionSPNs(in.Observed.FirstPartySP.SPNs, in.Desired.SPNs)
	c := ChangeNone
	if dec.Changed {
		c = ChangeUpdate
	}
	var details []string
	for _, a := range dec.Added {
		details = append(details, "add "+a)
	}
	return Action{Change: c, Reason: "on the Exchange Online first-party service principal: " + dec.Reason, Details: details}
}

// --- on-prem half of the dedicated application ---

// DecideAuthServerAppStep plans Set-AuthServer -ApplicationIdentifier
// -DomainName on the evoSTS server step 1 leaves behind (DecideAuthServerApp).
func DecideAuthServerAppStep(in Input) Action {
	if !dedicated(in) {
		return skipLegacy("leaves the evoSTS auth server's ApplicationIdentifier unset")
	}
	appID := ""
	if in.Observed.DedicatedApp.Exists {
		appID = in.Observed.DedicatedApp.AppID
	}
	dec := DecideAuthServerApp(afterAuthServers(in), in.Desired.EvoSTS, appID, in.Desired.AuthServerDomains)
	if dec.Change == ChangeUpdate && appID == "" {
		dec.Reason += fmt.Sprintf(" once application %s exists", in.Desired.DedicatedAppName)
	}
	return Action{Change: dec.Change, Reason: dec.Reason, Details: dec.Details}
}

// DecideSettingOverrideStep follows ConfigureExchangeHybridApplication.ps1: an
// existing override for the section (any name) means nothing is created;
// one that does not enable the feature blocks the step, since someone
// made it on purpose and the dedicated application cannot work under it.
// A new override is created only once consent, the partner application
// and an enabled connector are in place, counting what the earlier steps
// of this plan will do. Whether Exchange reloaded an existing override
// cannot be read, so it counts as done unless the caller knows otherwise.
func DecideSettingOverrideStep(in Input) Action {
	if !dedicated(in) {
		return skipLegacy("needs no setting override")
	}
	enabling, other := OverrideState(in.Observed.SettingOverrides)
	if c := OverrideConflict(other); c != "" {
		return Action{Change: ChangeBlocked, Reason: c}
	}
	if len(enabling) > 0 {
		so := enabling[0]
		switch r := in.Observed.VariantConfigRefreshed; {
		case r != nil && !*r:
			return Action{Change: ChangeUpdate,
				Reason:  fmt.Sprintf("setting override '%s' exists but Exchange has not reloaded its VariantConfiguration since; it will be refreshed", so.Name),
				Details: []string{"Get-ExchangeDiagnosticInfo -Process Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh"}}
		case r == nil:
			return Action{Change: ChangeNone, Reason: fmt.Sprintf("setting override '%s' (%s, %s) exists; whether VariantConfiguration has reloaded it cannot be read back, but Exchange reloads it periodically and verification retries meanwhile", so.Name, OverrideSection, OverrideParameter)}
		}
		return Action{Change: ChangeNone, Reason: fmt.Sprintf("setting override '%s' (%s, %s) exists and is loaded", so.Name, OverrideSection, OverrideParameter)}
	}
	if unmet := overridePreconditions(in).Unmet(); unmet != "" {
		return Action{Change: ChangeBlocked, Reason: OverridePreconditionsUnmet(unmet)}
	}
	return Action{Change: ChangeCreate,
		Reason: fmt.Sprintf("setting override %s (section %s, %s) will be created and VariantConfiguration refreshed, once consent, the partner application and an enabled connector are in place (steps %s, %s and %s come first)",
			OverrideName, OverrideSection, OverrideParameter, StepDedicatedApp, StepPartnerApp, StepIOCOnPrem),
		Details: []string{
			fmt.Sprintf("New-SettingOverride -Name %s -Component %s -Section %s -Parameters \"%s\"", OverrideName, OverrideComponent, OverrideSection, OverrideParameter),
			"Get-ExchangeDiagnosticInfo -Process Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh",
		}}
}

// overridePreconditions is the state the setting override step will find,
// counting what the earlier steps of the plan write.
func overridePreconditions(in Input) OverridePreconditions {
	var p OverridePreconditions
	p.Consent = in.Observed.ConsentGranted || DecideDedicatedAppStep(in).Change.Writes()
	switch c, _ := DecidePartnerApp(in.Observed.PartnerApp); c {
	case ChangeNone, ChangeUpdate:
		p.PartnerApp = true
	default:
		p.PartnerAppWhy = "step " + string(StepPartnerApp) + " is blocked"
	}
	p.Connector = slices.ContainsFunc(in.Observed.OnPremIOCs, func(c IOC) bool { return c.Enabled })
	if !p.Connector {
		// A connector step that is not blocked leaves its connector enabled.
		if DecideIOC("", in.Observed.OnPremIOCs, in.Desired.OnPremIOC).Change != ChangeBlocked {
			p.Connector = true
		} else {
			p.ConnectorWhy = "step " + string(StepIOCOnPrem) + " is blocked"
		}
	}
	return p
}

// --- steps 6 and 7 ---

func DecideIOCOnPremStep(in Input) Action {
	return iocAction(DecideIOC("on-premises", in.Observed.OnPremIOCs, in.Desired.OnPremIOC))
}

func DecideIOCOnlineStep(in Input) Action {
	return iocAction(DecideIOC("Exchange Online", in.Observed.OnlineIOCs, in.Desired.OnlineIOC))
}

func iocAction(d IOCDecision) Action {
	return Action{Change: d.Change, Reason: d.Reason, Details: d.Details}
}

// --- step 8 ---

func DecideAvailabilityStep(in Input) Action {
	a := in.Desired.Availability
	if !a.Needed {
		return Action{Change: ChangeSkip, Reason: "no availability address space is needed: " + a.Reason}
	}
	add := fmt.Sprintf("Add-AvailabilityAddressSpace -AccessMethod InternalProxy -ProxyUrl %s -ForestName %s -UseServiceAccount $true", a.ProxyURL, a.ForestName)
	for _, s := range in.Observed.AvailabilitySpaces {
		if !strings.EqualFold(s.ForestName, a.ForestName) {
			continue
		}
		if sameURL(s.ProxyURL, a.ProxyURL) && (s.AccessMethod == "" || strings.EqualFold(s.AccessMethod, "InternalProxy")) {
			return Action{Change: ChangeNone, Reason: fmt.Sprintf("availability address space %s already proxies through %s (%s)", s.ForestName, s.ProxyURL, a.Reason)}
		}
		// There is no Set-AvailabilityAddressSpace: changing one means
		// removing and adding it again.
		return Action{Change: ChangeUpdate,
			Reason:  fmt.Sprintf("availability address space %s uses %s via %s; it will be replaced to proxy through %s (%s)", s.ForestName, orNone(s.AccessMethod), orNone(s.ProxyURL), a.ProxyURL, a.Reason),
			Details: []string{"Remove-AvailabilityAddressSpace -Identity " + s.ForestName, add}}
	}
	return Action{Change: ChangeCreate,
		Reason:  fmt.Sprintf("availability address space %s will be added, proxying through %s: %s", a.ForestName, a.ProxyURL, a.Reason),
		Details: []string{add}}
}

// --- verification ---

func DecideVerifyStep(in Input) Action {
	return Action{Change: ChangeCheck, Reason: verifyReason(in), Details: verifyDetails(in)}
}

func verifyReason(in Input) string {
	s := fmt.Sprintf("Test-OAuthConnectivity from on-premises to %s as %s, and from Exchange Online to %s as %s",
		in.Desired.VerifyCloudTarget, orUnknown(in.Desired.OnPremMailbox), orNone(in.Desired.VerifyOnPremTarget), orUnknown(in.Desired.CloudMailbox))
	if in.Desired.OnPremMailbox == "" || in.Desired.CloudMailbox == "" {
		s += "; a mailbox is missing, so set onprem_mailbox / cloud_mailbox or verification cannot pass"
	}
	return s
}

func verifyDetails(in Input) []string {
	return []string{
		fmt.Sprintf("on-premises: Test-OAuthConnectivity -Service EWS -TargetUri %s -Mailbox %s", in.Desired.VerifyCloudTarget, orUnknown(in.Desired.OnPremMailbox)),
		fmt.Sprintf("Exchange Online: Test-OAuthConnectivity -Service EWS -TargetUri %s -Mailbox %s", orNone(in.Desired.VerifyOnPremTarget), orUnknown(in.Desired.CloudMailbox)),
	}
}

// --- legacy key clean-up ---

// legacyRemoval is the clean-up's key decision, the same one the clean-up
// activity makes: the Exchange auth certificates (LegacyKeyRemoval), or
// every key when the operator asked for Microsoft's reset (ResetKeys).
func legacyRemoval(in Input) KeyDecision {
	if in.Desired.ResetFirstPartyKeys {
		return ResetKeys(in.Observed.FirstPartySP.Keys)
	}
	return LegacyKeyRemoval(in.Observed.FirstPartySP.Keys, in.Desired.LegacyThumbprints, in.Now)
}

func DecideRemoveLegacyKeyStep(in Input) Action {
	if !dedicated(in) {
		return skipLegacy("keeps the auth certificate on the shared first-party service principal")
	}
	dec := legacyRemoval(in)
	if in.Desired.ResetFirstPartyKeys {
		return resetAction(in, dec)
	}
	if !dec.Changed {
		return Action{Change: ChangeNone, Reason: "the first-party service principal holds no on-premises auth certificate: " + dec.Reason}
	}
	return Action{Change: ChangeUpdate,
		Reason:  "after verification succeeds, on the Exchange Online first-party service principal: " + dec.Reason,
		Details: keyDetails(dec)}
}

// resetAction describes the reset the operator asked for: which keys go,
// and which of them are not Exchange auth certificates, since those are
// other applications' keys that the ordinary clean-up would have kept.
func resetAction(in Input, dec KeyDecision) Action {
	const asked = "as the operator asked (Microsoft's -ResetFirstPartyServicePrincipalKeyCredentials)"
	if !dec.Changed {
		return Action{Change: ChangeNone, Reason: "reset of the Exchange Online first-party service principal's keys, " + asked + ": the service principal holds no key, so there is nothing to remove"}
	}
	ours := make(map[string]bool, len(in.Desired.LegacyThumbprints))
	for _, t := range in.Desired.LegacyThumbprints {
		if t = normThumbprint(t); t != "" {
			ours[t] = true
		}
	}
	var items, details []string
	foreign := 0
	for _, x := range dec.Dropped {
		k, id := x.Key, labelOr(x.Thumbprint, x.Key)
		kind := "Exchange auth certificate"
		switch {
		case ours[x.Thumbprint] || (len(k.DER) > 0 && IsExchangeAuthCertificate(k.DER)):
		case len(k.DER) == 0:
			kind = "certificate not read, may be another application's key"
			foreign++
		default:
			kind = "another application's key"
			foreign++
		}
		name := k.DisplayName
		if name == "" {
			name = "no display name"
		}
		items = append(items, fmt.Sprintf("%s (%s; %s)", short(id), name, kind))
		details = append(details, fmt.Sprintf("drop %s (%s, valid until %s): %s", id, name, day(certEnd(k)), kind))
	}
	reason := fmt.Sprintf("after verification succeeds, every key of the Exchange Online first-party service principal goes, whoever uploaded it, other applications' included, %s: %s: %s",
		asked, countf(len(dec.Dropped), "key", "keys"), strings.Join(items, ", "))
	if foreign > 0 {
		reason += "; " + countf(foreign, "of them is not an Exchange auth certificate and would stay in the ordinary clean-up",
			"of them are not Exchange auth certificates and would stay in the ordinary clean-up")
	}
	reason += "; all are kept to be put back if verification fails afterwards"
	return Action{Change: ChangeUpdate, Reason: reason, Details: details}
}

func DecideVerifyAfterRemovalStep(in Input) Action {
	if !dedicated(in) {
		return skipLegacy("removes no key, so there is nothing to verify again")
	}
	if !legacyRemoval(in).Changed {
		if in.Desired.ResetFirstPartyKeys {
			return Action{Change: ChangeSkip, Reason: "the first-party service principal has no key to reset, so the first verification stands"}
		}
		return Action{Change: ChangeSkip, Reason: "no legacy key is removed, so the first verification stands"}
	}
	what := "the legacy key is removed"
	if in.Desired.ResetFirstPartyKeys {
		what = "every key of the first-party service principal is removed"
	}
	return Action{Change: ChangeCheck, Reason: "again after " + what + ", to prove the dedicated application carries the trust alone: " + verifyReason(in), Details: verifyDetails(in)}
}

// --- helpers ---

var changeRank = map[Change]int{ChangeSkip: 0, ChangeNone: 1, ChangeCheck: 2, ChangeUpdate: 3, ChangeCreate: 4, ChangeBlocked: 5}

// strongest summarises sub-decisions as the most consequential one, so a
// step that creates anything is shown as a create, and one blocked
// anywhere as blocked.
func strongest(cs ...Change) Change {
	best := ChangeNone
	for _, c := range cs {
		if changeRank[c] > changeRank[best] {
			best = c
		}
	}
	return best
}

// sameURL compares endpoints the way Exchange treats them: case-insensitive
// and indifferent to a trailing slash.
func sameURL(a, b string) bool {
	n := func(s string) string { return strings.TrimRight(strings.ToLower(strings.TrimSpace(s)), "/") }
	return n(a) == n(b)
}

func hasParameter(params []string, want string) bool {
	n := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	for _, p := range params {
		if n(p) == n(want) {
			return true
		}
	}
	return false
}

// missingFold is the members of want absent from have, ignoring case.
func missingFold(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, w) }) {
			out = append(out, w)
		}
	}
	return out
}

func intersectFold(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.ContainsFunc(b, func(y string) bool { return strings.EqualFold(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}

func unionFold(have, want []string) []string {
	return append(slices.Clone(have), missingFold(have, want)...)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "(no mailbox known)"
	}
	return s
}
