package plan

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
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
}

// milestone is a build a rule compares against, with the words an admin
// would use for it.
type milestone struct {
	Build Build
	Label string
}

func (m milestone) String() string { return m.Build.String() + " (" + m.Label + ")" }

// exchange2013SP1 is the build from which Exchange speaks OAuth to Exchange
// Online by itself; older servers need an availability address space
// (FACTS §1 step 8, seed 001).
var exchange2013SP1 = milestone{Build{15, 0, 847, 32}, "Exchange 2013 SP1"}

// The April 2025 hotfix of each line still in support is the first build
// that can use the dedicated Exchange hybrid application (FACTS §2).
var (
	seRTM       = milestone{Build{15, 2, 2562, 17}, "Exchange Server SE RTM"}
	ex2019CU15  = milestone{Build{15, 2, 1748, 24}, "Exchange 2019 CU15 with the April 2025 hotfix"}
	ex2019CU14  = milestone{Build{15, 2, 1544, 25}, "Exchange 2019 CU14 with the April 2025 hotfix"}
	ex2016CU23  = milestone{Build{15, 1, 2507, 55}, "Exchange 2016 CU23 with the April 2025 hotfix"}
	dedicatedOK = []milestone{ex2016CU23, ex2019CU14, ex2019CU15, seRTM}
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

// Mode is how the OAuth trust is anchored in Entra (FACTS §2). The values
// are those of the inventory's mode setting.
type Mode string

const (
	ModeDedicatedApp     Mode = "dedicated-app"
	ModeLegacyFirstParty Mode = "legacy-first-party"
)

// Errors a caller classifies as non-retryable: retrying cannot change a
// server build or a typo in the inventory.
var (
	ErrUnsupportedVersion = errors.New("unsupported Exchange version")
	ErrInvalidSetting     = errors.New("invalid setting")
)

// ChooseMode turns the inventory's mode setting into the mode to run.
// "auto" (or empty) prefers the dedicated application whenever every server
// can use it, because the shared first-party path is blocked for EWS in the
// worldwide cloud and 21Vianet. An explicit dedicated-app on servers that
// cannot use it is an error rather than a silent fallback: the operator
// asked for something the servers cannot do, and only an upgrade or a
// different setting fixes that.
func ChooseMode(setting string, servers []Server) (Mode, string, error) {
	ok, why := SupportsDedicatedApp(servers)
	switch s := strings.ToLower(strings.TrimSpace(setting)); s {
	case "", "auto":
		if ok {
			return ModeDedicatedApp, "mode auto chose the dedicated Exchange hybrid application: " + why, nil
		}
		return ModeLegacyFirstParty, "mode auto chose the shared first-party service principal: " + why, nil
	case string(ModeDedicatedApp):
		if ok {
			return ModeDedicatedApp, "mode dedicated-app is set in the inventory and " + why, nil
		}
		gaps := dedicatedGaps(servers)
		names := make([]string, 0, len(gaps))
		for _, g := range gaps {
			names = append(names, g.String())
		}
		if len(servers) == 0 {
			names = append(names, "no Exchange servers were reported")
		}
		err := fmt.Errorf("%w: mode dedicated-app is set but the dedicated Exchange hybrid application needs the April 2025 hotfix on every server: %s; upgrade them or set mode to auto or legacy-first-party",
			ErrUnsupportedVersion, strings.Join(names, "; "))
		return "", err.Error(), err
	case string(ModeLegacyFirstParty):
		return ModeLegacyFirstParty, "mode legacy-first-party is set in the inventory", nil
	default:
		err := fmt.Errorf("%w: mode %q (valid: auto, dedicated-app, legacy-first-party)", ErrInvalidSetting, setting)
		return "", err.Error(), err
	}
}
