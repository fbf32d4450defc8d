package plan

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
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

// TestDedicatedThresholds walks every boundary of FACTS §2's minimum
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

func TestChooseMode(t *testing.T) {
	good := []Server{srv("EX01", "15.2.2562.17"), srv("EX02", "15.2.1748.24")}
	old := []Server{srv("EX01", "15.2.2562.17"), srv("EX02", "15.2.1748.23"), srv("EX13", "15.0.1497.2")}
	cases := []struct {
		name    string
		setting string
		servers []Server
		want    Mode
		err     error
		mention []string
	}{
		{"auto supported", "auto", good, ModeDedicatedApp, nil, []string{"auto", "dedicated"}},
		{"empty means auto", "", good, ModeDedicatedApp, nil, []string{"auto"}},
		{"auto on old servers", "AUTO", old, ModeLegacyFirstParty, nil, []string{"first-party", "EX02"}},
		{"auto with no servers", "auto", nil, ModeLegacyFirstParty, nil, []string{"cannot be confirmed"}},
		{"explicit dedicated", "dedicated-app", good, ModeDedicatedApp, nil, []string{"inventory"}},
		{"explicit dedicated on old servers", "dedicated-app", old, "", ErrUnsupportedVersion, []string{"EX02 runs 15.2.1748.23", "EX13 runs 15.0.1497.2", "15.1.2507.55"}},
		{"explicit dedicated without servers", "dedicated-app", nil, "", ErrUnsupportedVersion, []string{"no Exchange servers"}},
		{"explicit legacy", "legacy-first-party", good, ModeLegacyFirstParty, nil, []string{"inventory"}},
		{"typo", "dedicated", good, "", ErrInvalidSetting, []string{"dedicated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, why, err := ChooseMode(c.setting, c.servers)
			if m != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("ChooseMode = %q, %q, %v; want %q, %v", m, why, err, c.want, c.err)
			}
			for _, s := range c.mention {
				if !strings.Contains(why, s) {
					t.Errorf("reason %q should mention %q", why, s)
				}
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
