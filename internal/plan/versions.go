package plan

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

// Build is an Exchange build number, major.minor.build.revision.
type Build struct {
	Major    int `json:"major"`
	Minor    int `json:"minor"`
	Build    int `json:"build"`
	Revision int `json:"revision"`
}

// String is the dotted form Exchange's build tables use.
func (b Build) String() string {
	return fmt.Sprintf("%d.%d.%d.%d", b.Major, b.Minor, b.Build, b.Revision)
}

// Compare orders builds numerically, field by field.
func (b Build) Compare(o Build) int {
	if c := cmp.Compare(b.Major, o.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Minor, o.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Build, o.Build); c != 0 {
		return c
	}
	return cmp.Compare(b.Revision, o.Revision)
}

// Less reports whether b is older than o.
func (b Build) Less(o Build) bool { return b.Compare(o) < 0 }

// Product names the Exchange release line, so that reasons say "Exchange
// 2019 CU15" territory rather than bare numbers an admin has to look up.
func (b Build) Product() string {
	switch {
	case b.Major == 15 && b.Minor == 2 && b.Build >= seRTM.Build.Build:
		return "Exchange Server SE"
	case b.Major == 15 && b.Minor == 2:
		return "Exchange 2019"
	case b.Major == 15 && b.Minor == 1:
		return "Exchange 2016"
	case b.Major == 15 && b.Minor == 0:
		return "Exchange 2013"
	case b.Major == 14:
		return "Exchange 2010"
	case b.Major == 8:
		return "Exchange 2007"
	case b.Major > 15 || (b.Major == 15 && b.Minor > 2):
		return "a later Exchange release"
	}
	return "an Exchange release before 2007"
}

// Nine digits per field keeps every accepted value inside int on any
// platform, so parsing never depends on overflow behaviour.
var (
	dottedBuildRE  = regexp.MustCompile(`^(\d{1,9})\.(\d{1,9})\.(\d{1,9})\.(\d{1,9})$`)
	versionBuildRE = regexp.MustCompile(`(?i)^version\s+(\d{1,9})\.(\d{1,9})\s*\(\s*build\s+(\d{1,9})\.(\d{1,9})\s*\)$`)
)

// ParseBuild accepts the dotted form ("15.2.1748.24", Get-ExchangeServer's
// AdminDisplayVersion.ToString() on some hosts, and every build table) and
// the AdminDisplayVersion display form ("Version 15.2 (Build 1748.24)").
// Anything else is an error: guessing a build would mean guessing the mode.
func ParseBuild(s string) (Build, error) {
	t := strings.TrimSpace(s)
	m := dottedBuildRE.FindStringSubmatch(t)
	if m == nil {
		m = versionBuildRE.FindStringSubmatch(t)
	}
	if m == nil {
		return Build{}, fmt.Errorf("%q is not an Exchange build (want 15.2.1748.24 or \"Version 15.2 (Build 1748.24)\")", s)
	}
	var n [4]int
	for i := range n {
		v, err := strconv.Atoi(m[i+1])
		if err != nil { // unreachable with \d{1,9}; kept so a regexp change cannot panic later
			return Build{}, fmt.Errorf("%q: %w", s, err)
		}
		n[i] = v
	}
	return Build{n[0], n[1], n[2], n[3]}, nil
}

// Server is one Exchange server as the version rules see it; the name is
// there so that every reason can point at the machine to fix.
type Server struct {
	Name  string `json:"name"`
	Build Build  `json:"build"`
	// Roles is ServerRole as reported ("Mailbox, ClientAccess", "Edge").
	Roles string `json:"roles,omitempty"`
}

// milestone is a build a rule compares against, with the words an admin
// would use for it.
type milestone struct {
	Build Build
	Label string
}

func (m milestone) String() string { return m.Build.String() + " (" + m.Label + ")" }

// exchange2013SP1 is the build from which Exchange speaks OAuth to Exchange
// Online by itself; older servers need an availability address space.
var exchange2013SP1 = milestone{Build{15, 0, 847, 32}, "Exchange 2013 SP1"}

// The April 2025 hotfix of each line still in support is the first build
// that can use the dedicated Exchange hybrid application (the build table
// of Microsoft's Get-ExchangeBuildVersionInformation.ps1; see
// docs/microsoft-behaviour.md).
var (
	seRTM      = milestone{Build{15, 2, 2562, 17}, "Exchange Server SE RTM"}
	ex2019CU15 = milestone{Build{15, 2, 1748, 24}, "Exchange 2019 CU15 with the April 2025 hotfix"}
	ex2019CU14 = milestone{Build{15, 2, 1544, 25}, "Exchange 2019 CU14 with the April 2025 hotfix"}
	ex2016CU23 = milestone{Build{15, 1, 2507, 55}, "Exchange 2016 CU23 with the April 2025 hotfix"}
)

// dedicatedMinimum says whether a build can use the dedicated application
// and, when it cannot, the lowest build that would. The hotfix exists only
// inside specific cumulative updates, so "newer" is not enough: a 15.2
// build between CU14 and CU15 has no hotfix and is refused.
func dedicatedMinimum(b Build) (ok bool, need milestone) {
	switch {
	case b.Major > 15 || (b.Major == 15 && b.Minor > 2):
		return true, milestone{}
	case b.Major == 15 && b.Minor == 2:
		switch {
		case b.Build == ex2019CU14.Build.Build:
			return b.Revision >= ex2019CU14.Build.Revision, ex2019CU14
		case b.Build == ex2019CU15.Build.Build:
			return b.Revision >= ex2019CU15.Build.Revision, ex2019CU15
		case !b.Less(seRTM.Build):
			return true, milestone{}
		case b.Build < ex2019CU14.Build.Build:
			return false, ex2019CU14
		case b.Build < ex2019CU15.Build.Build:
			return false, ex2019CU15
		default:
			return false, seRTM
		}
	case b.Major == 15 && b.Minor == 1:
		return !b.Less(ex2016CU23.Build), ex2016CU23
	}
	// Exchange 2013 and older never received the hotfix; the cheapest way
	// forward is the oldest line that did.
	return false, ex2016CU23
}

// gap is a server below the dedicated-app minimum.
type gap struct {
	Server Server
	Need   milestone
}

func (g gap) String() string {
	return fmt.Sprintf("%s runs %s (%s) and needs at least %s", g.Server.Name, g.Server.Build, g.Server.Build.Product(), g.Need)
}

func dedicatedGaps(servers []Server) []gap {
	var out []gap
	for _, s := range servers {
		if ok, need := dedicatedMinimum(s.Build); !ok {
			out = append(out, gap{s, need})
		}
	}
	return out
}

// NeedsAvailabilityAddressSpace reports whether step 8 applies: some server
// is older than Exchange 2013 SP1 (Exchange 2010 and 2007 included) and so
// cannot answer Exchange Online's OAuth requests itself.
func NeedsAvailabilityAddressSpace(servers []Server) (bool, string) {
	var old []string
	for _, s := range servers {
		if s.Build.Less(exchange2013SP1.Build) {
			old = append(old, fmt.Sprintf("%s (%s, %s)", s.Name, s.Build.Product(), s.Build))
		}
	}
	switch {
	case len(old) == 1:
		return true, fmt.Sprintf("%s is older than %s, so free/busy for its mailboxes needs an availability address space", old[0], exchange2013SP1)
	case len(old) > 1:
		return true, fmt.Sprintf("%d servers are older than %s (%s), so free/busy for their mailboxes needs an availability address space", len(old), exchange2013SP1, strings.Join(old, ", "))
	case len(servers) == 0:
		return false, "no Exchange servers were reported, so none is known to be older than " + exchange2013SP1.String()
	}
	return false, fmt.Sprintf("every Exchange server is %s or later", exchange2013SP1)
}

// SupportsDedicatedApp reports whether every server has the April 2025
// hotfix for its line. An empty list is not support: no evidence is not
// evidence of the right build, and the wrong guess breaks OAuth.
func SupportsDedicatedApp(servers []Server) (bool, string) {
	if len(servers) == 0 {
		return false, "no Exchange servers were reported, so the April 2025 hotfix the dedicated Exchange hybrid application needs cannot be confirmed"
	}
	gaps := dedicatedGaps(servers)
	if len(gaps) == 0 {
		lowest := servers[0]
		for _, s := range servers[1:] {
			if s.Build.Less(lowest.Build) {
				lowest = s
			}
		}
		return true, fmt.Sprintf("all %d Exchange servers have the April 2025 hotfix or later (oldest: %s at %s)", len(servers), lowest.Name, lowest.Build)
	}
	more := ""
	if len(gaps) > 1 {
		more = fmt.Sprintf(" (%d more servers are below their minimum too)", len(gaps)-1)
	}
	return false, fmt.Sprintf("the dedicated Exchange hybrid application needs the April 2025 hotfix on every server, but %s%s", gaps[0], more)
}

// Mode is how the OAuth trust is anchored in Entra. The values are those
// of the inventory's mode setting.
type Mode string

const (
	ModeDedicatedApp     Mode = "dedicated-app"
	ModeLegacyFirstParty Mode = "legacy-first-party"
)

// Errors a caller classifies as non-retryable: retrying cannot change a
// server build, a cloud's rules or a typo in the inventory.
var (
	ErrUnsupportedVersion = errors.New("unsupported Exchange version")
	ErrInvalidSetting     = errors.New("invalid setting")
	// ErrLegacyPathBlocked: the tenant would need the shared first-party
	// path in a cloud where Exchange Online refuses it, so a setup or
	// renewal on that path could never verify.
	ErrLegacyPathBlocked = errors.New("legacy first-party path blocked")
)

// legacyBlockDate is the day Exchange Online stopped accepting EWS calls
// from Exchange servers through the shared first-party service principal
// (docs/microsoft-behaviour.md, "Mode choice and mixed builds").
const legacyBlockDate = "31 October 2025"

// LegacyPathOverrideField is the inventory field that states the
// first-party path's status where the product only infers it.
const LegacyPathOverrideField = "overrides.legacy_first_party_blocked"

// FirstPartyPath is whether Exchange Online accepts on-prem EWS calls
// through the shared first-party service principal in a tenant's cloud.
type FirstPartyPath struct {
	Blocked bool
	// Unconfirmed: the status is inferred, not stated by Microsoft (GCC is
	// served by the worldwide endpoints, so it is taken to share the
	// worldwide block).
	Unconfirmed bool
	// Overridden: the inventory set the status.
	Overridden bool
	// Cloud is the cloud's display name, for messages.
	Cloud string
}

// LegacyPath returns the first-party path's status in a cloud. Microsoft
// states the block for the worldwide cloud and 21Vianet; GCC shares the
// worldwide endpoints and is treated as blocked, which is unconfirmed and
// therefore the one status an inventory may override. An override where
// the status is documented is refused, naming the field: it would bring
// back a path Microsoft has closed.
func LegacyPath(p cloud.Profile, override *bool) (FirstPartyPath, error) {
	fp := FirstPartyPath{Cloud: p.DisplayName}
	switch p.Name {
	case cloud.Global, cloud.China:
		fp.Blocked = true
	case cloud.GCC:
		fp.Blocked, fp.Unconfirmed = true, true
	}
	if override == nil {
		return fp, nil
	}
	if !fp.Unconfirmed {
		if *override == fp.Blocked {
			fp.Overridden = true
			return fp, nil
		}
		state := "open"
		if fp.Blocked {
			state = "blocked since " + legacyBlockDate
		}
		return fp, fmt.Errorf("%w: %s is %v, but Microsoft documents the first-party path in %s as %s; only a status Microsoft has not confirmed (GCC) can be overridden",
			ErrInvalidSetting, LegacyPathOverrideField, *override, p.DisplayName, state)
	}
	fp.Blocked, fp.Overridden = *override, true
	return fp, nil
}

// state is the path's status in words, with where it comes from.
func (fp FirstPartyPath) state() string {
	s := "Exchange Online still accepts EWS through the shared first-party service principal in " + fp.Cloud
	if fp.Blocked {
		s = "Exchange Online has blocked EWS through the shared first-party service principal in " + fp.Cloud + " since " + legacyBlockDate
	}
	switch {
	case fp.Overridden && fp.Unconfirmed:
		s += " (as " + LegacyPathOverrideField + " says; the product could not confirm it for this cloud)"
	case fp.Overridden:
		s += " (as " + LegacyPathOverrideField + " says)"
	case fp.Unconfirmed:
		s += " (inferred: " + fp.Cloud + " uses the worldwide endpoints; unconfirmed, " + LegacyPathOverrideField + " can state it)"
	}
	return s
}

// ParseServers reads the builds of Get-ExchangeServer's rows. A row whose
// version cannot be read is an error naming the server: guessing a build
// would mean guessing the mode.
func ParseServers(rows []ExchangeServer) ([]Server, error) {
	out := make([]Server, 0, len(rows))
	var bad []string
	for _, r := range rows {
		b, err := ParseBuild(r.Version)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s reports version %q", r.Name, r.Version))
			continue
		}
		out = append(out, Server{Name: r.Name, Build: b, Roles: r.Roles})
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%w: cannot read the Exchange build of %s, and the mode depends on it", ErrMissingInput, strings.Join(bad, "; "))
	}
	return out, nil
}

// HasRole reports whether a ServerRole text ("Mailbox, ClientAccess")
// names the role.
func HasRole(roles, role string) bool {
	for _, r := range strings.Split(roles, ",") {
		if strings.EqualFold(strings.TrimSpace(r), role) {
			return true
		}
	}
	return false
}

// HybridCallServers are the servers whose builds decide the mode: the
// Mailbox servers, which make the EWS calls to Exchange Online for their
// mailboxes (free/busy, MailTips, photos) and answer Exchange Online's.
// A server with no role reported counts: unknown is treated as relevant.
// Edge Transport servers never make these calls (Microsoft's script skips
// them), nor does a Client Access-only Exchange 2013 server, which proxies
// to a Mailbox server. A Mailbox server older than Exchange 2013 SP1
// cannot speak OAuth itself; its mailboxes reach Exchange Online through
// the availability address space and a newer server, so it is left out
// too (step 8 covers it).
func HybridCallServers(servers []Server) []Server {
	var out []Server
	for _, s := range servers {
		if strings.TrimSpace(s.Roles) != "" && !HasRole(s.Roles, "Mailbox") {
			continue
		}
		if s.Build.Less(exchange2013SP1.Build) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// ModeInput is what the mode decision reads.
type ModeInput struct {
	// Setting is the inventory's mode: "", auto, dedicated-app or
	// legacy-first-party.
	Setting string
	// Path is the first-party path's status in the tenant's cloud
	// (LegacyPath).
	Path FirstPartyPath
	// Servers are every Exchange server discovery found (ParseServers);
	// the decision keeps the HybridCallServers among them.
	Servers []Server
}

// ModeDecision is the mode to run, why, and what deserves a look.
type ModeDecision struct {
	Mode     Mode
	Reason   string
	Warnings []string
}

// DecideMode chooses how the tenant's OAuth trust is anchored, as
// Microsoft's ConfigureExchangeHybridApplication.ps1 decides it:
//
//   - The dedicated application is chosen when at least one server that
//     makes hybrid calls (HybridCallServers) has the April 2025 hotfix for
//     its line. Older servers do not block it: they keep using the shared
//     first-party path until updated, and a warning names each one with
//     the build it needs.
//   - With no qualifying server, auto falls back to the shared first-party
//     path only where Exchange Online still accepts it. Where it is
//     blocked the decision fails with ErrLegacyPathBlocked, naming the
//     servers, the builds they need and the cloud: a setup on that path
//     could never verify.
//   - An explicit legacy-first-party where the path is blocked fails the
//     same way, naming the field mode. An explicit dedicated-app with no
//     qualifying server fails with ErrUnsupportedVersion.
func DecideMode(in ModeInput) (ModeDecision, error) {
	candidates := HybridCallServers(in.Servers)
	var ok []Server
	var gaps []gap
	for _, s := range candidates {
		if fine, need := dedicatedMinimum(s.Build); fine {
			ok = append(ok, s)
		} else {
			gaps = append(gaps, gap{s, need})
		}
	}
	setting := strings.ToLower(strings.TrimSpace(in.Setting))
	switch setting {
	case "", "auto":
		setting = "auto"
	case string(ModeDedicatedApp), string(ModeLegacyFirstParty):
	default:
		return ModeDecision{}, fmt.Errorf("%w: mode %q (valid: auto, dedicated-app, legacy-first-party)", ErrInvalidSetting, in.Setting)
	}

	if len(ok) > 0 && setting != string(ModeLegacyFirstParty) {
		d := ModeDecision{Mode: ModeDedicatedApp}
		lead := "mode auto chose the dedicated Exchange hybrid application: "
		if setting == string(ModeDedicatedApp) {
			lead = "mode dedicated-app is set in the inventory and "
		}
		d.Reason = lead + qualifyingSummary(ok, candidates)
		d.Warnings = mixedBuildWarnings(gaps, in.Path)
		return d, nil
	}

	switch setting {
	case string(ModeDedicatedApp):
		return ModeDecision{}, fmt.Errorf("%w: mode dedicated-app is set but no server that makes hybrid calls can use the dedicated Exchange hybrid application: %s; update at least one Mailbox server to the April 2025 hotfix, or set mode to auto",
			ErrUnsupportedVersion, noneQualifies(gaps))
	case string(ModeLegacyFirstParty):
		if in.Path.Blocked {
			fix := "update at least one Mailbox server to the April 2025 hotfix and set mode to auto: " + noneQualifies(gaps)
			if len(ok) > 0 {
				fix = "set mode to auto or dedicated-app: " + qualifyingSummary(ok, candidates)
			}
			return ModeDecision{}, fmt.Errorf("%w: mode legacy-first-party is set in the inventory, but %s, so verification could never pass; %s",
				ErrLegacyPathBlocked, in.Path.state(), fix)
		}
		d := ModeDecision{Mode: ModeLegacyFirstParty, Reason: "mode legacy-first-party is set in the inventory; " + in.Path.state()}
		if len(ok) > 0 {
			d.Warnings = append(d.Warnings, "mode legacy-first-party is set although "+qualifyingSummary(ok, candidates)+"; mode auto would choose the dedicated Exchange hybrid application")
		}
		return d, nil
	}
	// auto, nothing qualifies.
	if in.Path.Blocked {
		return ModeDecision{}, fmt.Errorf("%w: mode auto found no server that can use the dedicated Exchange hybrid application (%s), and %s, so the shared path could never verify; update at least one Mailbox server to the April 2025 hotfix (every one, for free/busy of all mailboxes)",
			ErrLegacyPathBlocked, noneQualifies(gaps), in.Path.state())
	}
	return ModeDecision{Mode: ModeLegacyFirstParty,
		Reason: fmt.Sprintf("mode auto chose the shared first-party service principal: no server that makes hybrid calls can use the dedicated Exchange hybrid application (%s); %s", noneQualifies(gaps), in.Path.state())}, nil
}

// qualifyingSummary names how many of the servers that make hybrid calls
// qualify, and the oldest of them.
func qualifyingSummary(ok, candidates []Server) string {
	lowest := ok[0]
	for _, s := range ok[1:] {
		if s.Build.Less(lowest.Build) {
			lowest = s
		}
	}
	if len(ok) == len(candidates) {
		return fmt.Sprintf("all %d Mailbox servers have the April 2025 hotfix or later (oldest: %s at %s)", len(ok), lowest.Name, lowest.Build)
	}
	return fmt.Sprintf("%d of %d Mailbox servers have the April 2025 hotfix or later (oldest of them: %s at %s)", len(ok), len(candidates), lowest.Name, lowest.Build)
}

// noneQualifies explains why no server qualifies.
func noneQualifies(gaps []gap) string {
	if len(gaps) == 0 {
		return "no Exchange Mailbox server of Exchange 2013 SP1 or later was reported (Get-ExchangeServer)"
	}
	parts := make([]string, 0, len(gaps))
	for _, g := range gaps {
		parts = append(parts, g.String())
	}
	return strings.Join(parts, "; ")
}

// mixedBuildWarnings names each server below its minimum when the
// dedicated application is chosen, with what it means in the cloud.
func mixedBuildWarnings(gaps []gap, path FirstPartyPath) []string {
	out := make([]string, 0, len(gaps))
	for _, g := range gaps {
		if path.Blocked {
			out = append(out, fmt.Sprintf("%s: until it is updated it keeps using the shared first-party path, which %s, so free/busy, MailTips and photos for its mailboxes do not work",
				g, path.state()))
			continue
		}
		out = append(out, fmt.Sprintf("%s: until it is updated it keeps using the shared first-party path (%s), which needs the auth certificate's key on the first-party service principal; the remove-legacy-key step takes it away, so skip that step (--skip-step remove-legacy-key) until every Mailbox server is updated",
			g, path.state()))
	}
	return out
}

// RenewalModeInput is what the renewal's mode decision reads.
type RenewalModeInput struct {
	// Requested is the renewal's own mode: "", detect, dedicated-app or
	// legacy-first-party.
	Requested string
	// Setting is the inventory's mode (auto by default).
	Setting string
	Path    FirstPartyPath
	// DedicatedAppID is the evoSTS auth server's ApplicationIdentifier:
	// set once the organisation uses the dedicated application.
	DedicatedAppID string
	Servers        []Server
}

// RenewalMode decides where a renewal keeps the auth certificate's keys,
// by the same rule as DecideMode:
//
//   - requested dedicated-app, or detected (the evoSTS auth server names
//     an application): the dedicated application;
//   - requested legacy-first-party: the first-party service principal,
//     refused with ErrLegacyPathBlocked where that path is blocked;
//   - detected legacy (no application named) where the first-party path
//     still works: the first-party service principal, which is what the
//     organisation uses;
//   - detected legacy where the path is blocked: the organisation's trust
//     cannot work as it is, so DecideMode chooses: the dedicated
//     application when a server qualifies (the renewal then keeps the
//     on-prem certificate current, and setup moves the tenant), else
//     ErrLegacyPathBlocked.
func RenewalMode(in RenewalModeInput) (ModeDecision, error) {
	switch strings.ToLower(strings.TrimSpace(in.Requested)) {
	case string(ModeDedicatedApp):
		return ModeDecision{Mode: ModeDedicatedApp, Reason: "mode dedicated-app requested"}, nil
	case string(ModeLegacyFirstParty):
		if in.Path.Blocked {
			return ModeDecision{}, fmt.Errorf("%w: the renewal's mode legacy-first-party was requested, but %s; renew with mode detect or dedicated-app",
				ErrLegacyPathBlocked, in.Path.state())
		}
		return ModeDecision{Mode: ModeLegacyFirstParty, Reason: "mode legacy-first-party requested; " + in.Path.state()}, nil
	case "", "detect":
	default:
		return ModeDecision{}, fmt.Errorf("%w: renewal mode %q (valid: detect, dedicated-app, legacy-first-party)", ErrInvalidSetting, in.Requested)
	}
	if in.DedicatedAppID != "" {
		return ModeDecision{Mode: ModeDedicatedApp, Reason: "detected: the evoSTS auth server uses application " + in.DedicatedAppID}, nil
	}
	if !in.Path.Blocked {
		d := ModeDecision{Mode: ModeLegacyFirstParty, Reason: "detected: no evoSTS auth server names a dedicated application, and " + in.Path.state()}
		if sd, err := DecideMode(ModeInput{Setting: in.Setting, Path: in.Path, Servers: in.Servers}); err == nil && sd.Mode == ModeDedicatedApp {
			d.Warnings = append(d.Warnings, "the organisation still uses the shared first-party path although setup would choose the dedicated Exchange hybrid application ("+sd.Reason+"); hybridflow migrate moves it")
		}
		return d, nil
	}
	sd, err := DecideMode(ModeInput{Setting: in.Setting, Path: in.Path, Servers: in.Servers})
	if err != nil {
		return ModeDecision{}, fmt.Errorf("no evoSTS auth server names a dedicated application: %w", err)
	}
	if sd.Mode != ModeDedicatedApp {
		// DecideMode never chooses the blocked path; kept so a change there
		// cannot make a renewal silently use it.
		return ModeDecision{}, fmt.Errorf("%w: no evoSTS auth server names a dedicated application and %s", ErrLegacyPathBlocked, in.Path.state())
	}
	sd.Reason = "no evoSTS auth server names a dedicated application yet, and " + in.Path.state() + ", so the renewal follows setup's choice: " + sd.Reason
	return sd, nil
}
