package plan

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"

	"github.com/hybridflow/hybridflow/internal/cloud"
)

func TestParseBuild(t *testing.T) {
	cases := []struct {
		in   string
		want Build
		ok   bool
	}{
		{"15.2.1748.24", Build{15, 2, 1748, 24}, true},
		{"  15.1.2507.55\n", Build{15, 1, 2507, 55}, true},
		{"Version 15.2 (Build 1748.24)", Build{15, 2, 1748, 24}, true},
		{"version 14.3 (build 123.4)", Build{14, 3, 123, 4}, true},
		{"Version 15.0 (Build 847.32)", Build{15, 0, 847, 32}, true},
		{"Version  15.2  ( Build 2562.17 )", Build{15, 2, 2562, 17}, true},
		{"15.2.1748", Build{}, false},
		{"15.2.1748.24.1", Build{}, false},
		{"Version 15.2", Build{}, false},
		{"Version 15.2 (Build 1748)", Build{}, false},
		{"15.2.-1.24", Build{}, false},
		{"+15.2.1748.24", Build{}, false},
		{"15.2.1748.9999999999", Build{}, false}, // ten digits could overflow int32
		{"", Build{}, false},
		{"Exchange 2019 CU15", Build{}, false},
	}
	for _, c := range cases {
		got, err := ParseBuild(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseBuild(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// buildGen keeps fields in the range ParseBuild accepts.
type buildGen Build

func (buildGen) Generate(r *rand.Rand, _ int) reflect.Value {
	f := func() int { return r.Intn(1_000_000_000) }
	return reflect.ValueOf(buildGen{f(), f(), f(), f()})
}

func TestParseBuildRoundTrip(t *testing.T) {
	prop := func(g buildGen) bool {
		b := Build(g)
		d, err1 := ParseBuild(b.String())
		v, err2 := ParseBuild(fmt.Sprintf("Version %d.%d (Build %d.%d)", b.Major, b.Minor, b.Build, b.Revision))
		return err1 == nil && err2 == nil && d == b && v == b
	}
	if err := quick.Check(prop, nil); err != nil {
		t.Fatal(err)
	}
}

func srv(name, build string) Server {
	b, err := ParseBuild(build)
	if err != nil {
		panic(err)
	}
	return Server{Name: name, Build: b}
}

func TestNeedsAvailabilityAddressSpace(t *testing.T) {
	cases := []struct {
		name    string
		servers []Server
		want    bool
		mention string
	}{
		{"none reported", nil, false, "no Exchange servers"},
		{"2013 SP1 exactly", []Server{srv("EX13", "15.0.847.32")}, false, "or later"},
		{"one revision below SP1", []Server{srv("EX13", "15.0.847.31")}, true, "EX13 (Exchange 2013, 15.0.847.31)"},
		{"one build below SP1", []Server{srv("EX13", "15.0.846.99")}, true, "EX13"},
		{"one revision above SP1", []Server{srv("EX13", "15.0.847.33")}, false, "or later"},
		{"2013 CU23", []Server{srv("EX13", "15.0.1497.2")}, false, "or later"},
		{"Exchange 2010 next to SE", []Server{srv("EX01", "15.2.2562.17"), srv("EX2010", "14.3.123.4")}, true, "EX2010 (Exchange 2010"},
		{"Exchange 2007", []Server{srv("EX2007", "8.3.83.6")}, true, "Exchange 2007"},
		{"two old servers", []Server{srv("A", "14.3.1.1"), srv("B", "15.0.620.29")}, true, "2 servers are older"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := NeedsAvailabilityAddressSpace(c.servers)
			if got != c.want || !strings.Contains(why, c.mention) {
				t.Errorf("got %v %q; want %v mentioning %q", got, why, c.want, c.mention)
			}
		})
	}
}

// TestDedicatedThresholds walks every boundary of the dedicated application's minimum
// builds one step either side, in revision and in build.
func TestDedicatedThresholds(t *testing.T) {
	cases := []struct {
		build string
		ok    bool
		need  string // the minimum the reason must name when !ok
	}{
		// Exchange SE RTM 15.2.2562.17 and anything later.
		{"15.2.2562.16", false, "15.2.2562.17"},
		{"15.2.2562.17", true, ""},
		{"15.2.2562.18", true, ""},
		{"15.2.2561.999", false, "15.2.2562.17"},
		{"15.2.2563.0", true, ""},
		{"15.2.9999.1", true, ""},
		// 2019 CU15 15.2.1748.24, only within build 1748.
		{"15.2.1748.23", false, "15.2.1748.24"},
		{"15.2.1748.24", true, ""},
		{"15.2.1748.25", true, ""},
		{"15.2.1747.999", false, "15.2.1748.24"},
		{"15.2.1749.0", false, "15.2.2562.17"}, // between CU15 and SE: no hotfix exists there
		// 2019 CU14 15.2.1544.25, only within build 1544.
		{"15.2.1544.24", false, "15.2.1544.25"},
		{"15.2.1544.25", true, ""},
		{"15.2.1544.26", true, ""},
		{"15.2.1543.999", false, "15.2.1544.25"},
		{"15.2.1545.0", false, "15.2.1748.24"},  // between CU14 and CU15
		{"15.2.1258.39", false, "15.2.1544.25"}, // 2019 CU13
		// 2016 CU23 15.1.2507.55 and later 2016 builds.
		{"15.1.2507.54", false, "15.1.2507.55"},
		{"15.1.2507.55", true, ""},
		{"15.1.2507.56", true, ""},
		{"15.1.2506.999", false, "15.1.2507.55"},
		{"15.1.2508.0", true, ""},
		// No hotfix for 2013 or 2010 at all.
		{"15.0.1497.48", false, "15.1.2507.55"},
		{"14.3.513.0", false, "15.1.2507.55"},
		// A later line than SE is later than SE's minimum.
		{"15.3.1.0", true, ""},
		{"16.0.0.0", true, ""},
	}
	for _, c := range cases {
		t.Run(c.build, func(t *testing.T) {
			s := srv("EX01", c.build)
			ok, why := SupportsDedicatedApp([]Server{s})
			if ok != c.ok {
				t.Fatalf("SupportsDedicatedApp(%s) = %v (%s), want %v", c.build, ok, why, c.ok)
			}
			if !c.ok && (!strings.Contains(why, "EX01") || !strings.Contains(why, c.need)) {
				t.Errorf("reason %q should name EX01 and %s", why, c.need)
			}
		})
	}
}

func TestSupportsDedicatedAppReasons(t *testing.T) {
	if ok, why := SupportsDedicatedApp(nil); ok || !strings.Contains(why, "cannot be confirmed") {
		t.Errorf("empty: %v %q", ok, why)
	}
	ok, why := SupportsDedicatedApp([]Server{srv("EX01", "15.2.2562.17"), srv("EX02", "15.2.1748.23"), srv("EX03", "15.0.1497.2")})
	if ok || !strings.Contains(why, "EX02 runs 15.2.1748.23") || !strings.Contains(why, "15.2.1748.24") || !strings.Contains(why, "1 more") {
		t.Errorf("mixed: %v %q", ok, why)
	}
	ok, why = SupportsDedicatedApp([]Server{srv("EX01", "15.2.2562.17"), srv("EX16", "15.1.2507.55")})
	if !ok || !strings.Contains(why, "all 2") || !strings.Contains(why, "EX16") {
		t.Errorf("all good: %v %q", ok, why)
	}
}

func mbx(name, build string) Server {
	s := srv(name, build)
	s.Roles = "Mailbox"
	return s
}

func pathOf(t *testing.T, c cloud.Name) FirstPartyPath {
	t.Helper()
	fp, err := LegacyPath(cloud.MustLookup(string(c)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestDecideMode follows Microsoft's script (shared/reference/hybrid-facts.md
// (b) "Minimum builds (Apr25HU) and mixed builds": mixed builds are safe,
// Edge is skipped, the first-party path is blocked worldwide and in
// 21Vianet since 31 Oct 2025).
func TestDecideMode(t *testing.T) {
	good := []Server{mbx("EX01", "15.2.2562.17"), mbx("EX02", "15.2.1748.24")}
	mixed := []Server{mbx("EX01", "15.2.2562.17"), mbx("EX02", "15.2.1748.23"), mbx("EX13", "15.0.1497.2")}
	old := []Server{mbx("EX01", "15.2.1544.4"), mbx("EX02", "15.1.2507.40")}
	edgeOnlyGood := []Server{mbx("EX01", "15.2.1544.4"), {Name: "EDGE01", Build: Build{15, 2, 2562, 17}, Roles: "Edge"}}
	cas2013 := []Server{mbx("EX01", "15.2.1544.4"), {Name: "CAS13", Build: Build{15, 0, 1497, 2}, Roles: "ClientAccess"}}
	pre2013SP1 := []Server{mbx("EX2010", "14.3.123.4"), mbx("EX2013", "15.0.712.24")}
	noRole := []Server{srv("EX01", "15.2.1544.4")}
	cases := []struct {
		name    string
		setting string
		cloud   cloud.Name
		servers []Server
		want    Mode
		err     error
		mention []string
		warns   []string // one warning per entry, each naming the server and build
	}{
		{"auto, all qualify", "auto", cloud.Global, good, ModeDedicatedApp, nil, []string{"mode auto chose the dedicated", "all 2 Mailbox servers"}, nil},
		{"empty means auto", "", cloud.Global, good, ModeDedicatedApp, nil, []string{"mode auto"}, nil},
		{"auto, mixed builds worldwide", "AUTO", cloud.Global, mixed, ModeDedicatedApp, nil, []string{"1 of 3 Mailbox servers", "EX01"},
			[]string{"EX02 runs 15.2.1748.23 (Exchange 2019) and needs at least 15.2.1748.24", "EX13 runs 15.0.1497.2 (Exchange 2013) and needs at least 15.1.2507.55"}},
		{"auto, mixed builds GCC High", "auto", cloud.GCCHigh, mixed, ModeDedicatedApp, nil, []string{"1 of 3"},
			[]string{"EX02 runs 15.2.1748.23", "EX13 runs 15.0.1497.2"}},
		{"auto, none qualifies worldwide", "auto", cloud.Global, old, "", ErrLegacyPathBlocked, []string{"EX01 runs 15.2.1544.4", "15.2.1544.25", "EX02 runs 15.1.2507.40", "15.1.2507.55", "Worldwide", "31 October 2025"}, nil},
		{"auto, none qualifies 21Vianet", "auto", cloud.China, old, "", ErrLegacyPathBlocked, []string{"21Vianet", "EX01 runs 15.2.1544.4"}, nil},
		{"auto, none qualifies GCC (unconfirmed)", "auto", cloud.GCC, old, "", ErrLegacyPathBlocked, []string{"GCC", "unconfirmed", LegacyPathOverrideField}, nil},
		{"auto, none qualifies GCC High", "auto", cloud.GCCHigh, old, ModeLegacyFirstParty, nil, []string{"shared first-party", "EX01 runs 15.2.1544.4", "still accepts"}, nil},
		{"auto, none qualifies DoD", "auto", cloud.DoD, old, ModeLegacyFirstParty, nil, []string{"shared first-party"}, nil},
		{"auto, no servers worldwide", "auto", cloud.Global, nil, "", ErrLegacyPathBlocked, []string{"no Exchange Mailbox server"}, nil},
		{"auto, no servers GCC High", "auto", cloud.GCCHigh, nil, ModeLegacyFirstParty, nil, []string{"no Exchange Mailbox server"}, nil},
		{"Edge never qualifies a tenant", "auto", cloud.Global, edgeOnlyGood, "", ErrLegacyPathBlocked, []string{"EX01 runs 15.2.1544.4"}, nil},
		{"a 2013 Client Access-only server is not a caller", "auto", cloud.GCCHigh, cas2013, ModeLegacyFirstParty, nil, []string{"EX01"}, nil},
		{"pre-2013-SP1 servers are not callers", "auto", cloud.Global, pre2013SP1, "", ErrLegacyPathBlocked, []string{"no Exchange Mailbox server of Exchange 2013 SP1"}, nil},
		{"a server without a role counts", "auto", cloud.Global, noRole, "", ErrLegacyPathBlocked, []string{"EX01 runs 15.2.1544.4"}, nil},
		{"explicit dedicated", "dedicated-app", cloud.Global, good, ModeDedicatedApp, nil, []string{"inventory"}, nil},
		{"explicit dedicated, mixed builds", "dedicated-app", cloud.GCCHigh, mixed, ModeDedicatedApp, nil, []string{"inventory", "1 of 3"}, []string{"EX02 runs", "EX13 runs"}},
		{"explicit dedicated, none qualifies", "dedicated-app", cloud.GCCHigh, old, "", ErrUnsupportedVersion, []string{"EX01 runs 15.2.1544.4", "EX02 runs 15.1.2507.40"}, nil},
		{"explicit dedicated, no servers", "dedicated-app", cloud.Global, nil, "", ErrUnsupportedVersion, []string{"no Exchange Mailbox server"}, nil},
		{"explicit legacy, open cloud", "legacy-first-party", cloud.GCCHigh, good, ModeLegacyFirstParty, nil, []string{"inventory"}, []string{"mode auto would choose the dedicated"}},
		{"explicit legacy, blocked cloud", "legacy-first-party", cloud.Global, good, "", ErrLegacyPathBlocked, []string{"mode legacy-first-party is set", "Worldwide", "set mode to auto or dedicated-app"}, nil},
		{"explicit legacy, blocked cloud, old servers", "legacy-first-party", cloud.China, old, "", ErrLegacyPathBlocked, []string{"mode legacy-first-party is set", "EX01 runs 15.2.1544.4"}, nil},
		{"typo", "dedicated", cloud.Global, good, "", ErrInvalidSetting, []string{"dedicated"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := DecideMode(ModeInput{Setting: c.setting, Path: pathOf(t, c.cloud), Servers: c.servers})
			if d.Mode != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("DecideMode = %+v, %v; want %q, %v", d, err, c.want, c.err)
			}
			text := d.Reason
			if err != nil {
				text = err.Error()
			}
			for _, s := range c.mention {
				if !strings.Contains(text, s) {
					t.Errorf("%q should mention %q", text, s)
				}
			}
			if len(d.Warnings) != len(c.warns) {
				t.Fatalf("warnings %q, want %d", d.Warnings, len(c.warns))
			}
			for i, w := range c.warns {
				if !strings.Contains(d.Warnings[i], w) {
					t.Errorf("warning %q should mention %q", d.Warnings[i], w)
				}
			}
			if err == nil && d.Mode == ModeLegacyFirstParty && pathOf(t, c.cloud).Blocked {
				t.Fatalf("legacy mode chosen where the first-party path is blocked")
			}
		})
	}
}

// TestDecideModeNeverLegacyWhereBlocked: whatever the servers and the
// setting, no decision puts a tenant on the blocked path.
func TestDecideModeNeverLegacyWhereBlocked(t *testing.T) {
	builds := []string{"15.2.2562.17", "15.2.1748.24", "15.2.1748.23", "15.2.1544.4", "15.1.2507.55", "15.1.2507.40", "15.0.1497.2", "14.3.123.4"}
	roles := []string{"Mailbox", "Edge", "", "ClientAccess", "Mailbox, ClientAccess"}
	r := rand.New(rand.NewSource(17))
	for i := 0; i < 2000; i++ {
		var servers []Server
		for j := r.Intn(4); j > 0; j-- {
			s := srv(fmt.Sprintf("EX%d", j), builds[r.Intn(len(builds))])
			s.Roles = roles[r.Intn(len(roles))]
			servers = append(servers, s)
		}
		for _, setting := range []string{"", "auto", "dedicated-app", "legacy-first-party"} {
			for _, c := range []cloud.Name{cloud.Global, cloud.GCC, cloud.China} {
				d, err := DecideMode(ModeInput{Setting: setting, Path: pathOf(t, c), Servers: servers})
				if err == nil && d.Mode != ModeDedicatedApp {
					t.Fatalf("%s, %s, %+v: chose %s", c, setting, servers, d.Mode)
				}
				if err != nil && !errors.Is(err, ErrLegacyPathBlocked) && !errors.Is(err, ErrUnsupportedVersion) {
					t.Fatalf("%s, %s: unexpected error %v", c, setting, err)
				}
			}
		}
	}
}

func TestLegacyPath(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		cloud                  cloud.Name
		override               *bool
		blocked, unconf, valid bool
	}{
		{cloud.Global, nil, true, false, true},
		{cloud.China, nil, true, false, true},
		{cloud.GCC, nil, true, true, true},
		{cloud.GCCHigh, nil, false, false, true},
		{cloud.DoD, nil, false, false, true},
		{cloud.GCC, &no, false, true, true},     // unconfirmed: the operator may state it
		{cloud.GCC, &yes, true, true, true},     // and confirm it
		{cloud.Global, &no, true, false, false}, // documented: refused, naming the field
		{cloud.Global, &yes, true, false, true}, // agreeing with the documents is harmless
		{cloud.GCCHigh, &yes, false, false, false},
	}
	for _, c := range cases {
		fp, err := LegacyPath(cloud.MustLookup(string(c.cloud)), c.override)
		if (err == nil) != c.valid {
			t.Errorf("%s %v: err %v", c.cloud, c.override, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidSetting) || !strings.Contains(err.Error(), LegacyPathOverrideField) {
				t.Errorf("%s: %v should be an invalid setting naming %s", c.cloud, err, LegacyPathOverrideField)
			}
			continue
		}
		if fp.Blocked != c.blocked || fp.Unconfirmed != c.unconf {
			t.Errorf("%s %v: %+v", c.cloud, c.override, fp)
		}
	}
}

// TestRenewalMode: the renewal follows the organisation's configuration
// where it can work, and setup's rule where the first-party path is
// blocked, never renewing onto that path.
func TestRenewalMode(t *testing.T) {
	good := []Server{mbx("EX01", "15.2.2562.17")}
	old := []Server{mbx("EX01", "15.2.1544.4")}
	cases := []struct {
		name      string
		requested string
		setting   string
		cloud     cloud.Name
		app       string
		servers   []Server
		want      Mode
		err       error
		mention   string
	}{
		{"configured dedicated", "", "", cloud.Global, appID, old, ModeDedicatedApp, nil, appID},
		{"detect, configured dedicated", "detect", "", cloud.GCCHigh, appID, old, ModeDedicatedApp, nil, appID},
		{"unconfigured, open cloud", "", "", cloud.GCCHigh, "", good, ModeLegacyFirstParty, nil, "still accepts"},
		{"unconfigured worldwide, a server qualifies", "", "", cloud.Global, "", good, ModeDedicatedApp, nil, "follows setup's choice"},
		{"unconfigured worldwide, none qualifies", "", "", cloud.Global, "", old, "", ErrLegacyPathBlocked, "EX01 runs 15.2.1544.4"},
		{"unconfigured 21Vianet, inventory says legacy", "", "legacy-first-party", cloud.China, "", good, "", ErrLegacyPathBlocked, "mode legacy-first-party is set"},
		{"requested legacy, blocked cloud", "legacy-first-party", "", cloud.Global, appID, good, "", ErrLegacyPathBlocked, "requested"},
		{"requested legacy, open cloud", "legacy-first-party", "", cloud.DoD, appID, good, ModeLegacyFirstParty, nil, "requested"},
		{"requested dedicated", "dedicated-app", "", cloud.Global, "", old, ModeDedicatedApp, nil, "requested"},
		{"unknown request", "first-party", "", cloud.Global, "", good, "", ErrInvalidSetting, "first-party"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := RenewalMode(RenewalModeInput{Requested: c.requested, Setting: c.setting, Path: pathOf(t, c.cloud), DedicatedAppID: c.app, Servers: c.servers})
			if d.Mode != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("RenewalMode = %+v, %v; want %q, %v", d, err, c.want, c.err)
			}
			text := d.Reason
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, c.mention) {
				t.Errorf("%q should mention %q", text, c.mention)
			}
		})
	}
}

func TestBuildProduct(t *testing.T) {
	for in, want := range map[string]string{
		"15.2.2562.17": "Exchange Server SE", "15.2.1748.24": "Exchange 2019", "15.1.2507.55": "Exchange 2016",
		"15.0.847.32": "Exchange 2013", "14.3.123.4": "Exchange 2010", "8.3.83.6": "Exchange 2007", "16.0.1.1": "a later Exchange release",
		"6.5.7638.1": "an Exchange release before 2007",
	} {
		if got := srv("x", in).Build.Product(); got != want {
			t.Errorf("%s: %q want %q", in, got, want)
		}
	}
}

// TestDeriveGCCOverride: GCC is taken as blocked (it uses the worldwide
// endpoints; unconfirmed), so an organisation with no server on the
// hotfix is refused there, naming the override; an inventory that states
// the path is open in its GCC tenant gets the legacy mode.
func TestDeriveGCCOverride(t *testing.T) {
	w := contoso("gcc")
	w.o.Servers[0].Version, w.o.Servers[1].Version = "15.2.1544.4", "15.1.2507.40"
	_, _, err := Derive(w.t, w.p, w.o)
	if !errors.Is(err, ErrLegacyPathBlocked) || !strings.Contains(err.Error(), LegacyPathOverrideField) || !strings.Contains(err.Error(), "unconfirmed") {
		t.Fatalf("GCC, nothing qualifies: %v", err)
	}
	open := false
	w.t.LegacyFirstPartyBlocked = &open
	d, _ := mustDerive(t, w)
	if d.Mode != ModeLegacyFirstParty || !strings.Contains(d.ModeReason, LegacyPathOverrideField) {
		t.Fatalf("mode %s (%s), want legacy-first-party by the override", d.Mode, d.ModeReason)
	}
}
