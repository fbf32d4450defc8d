package plan

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func assertChanges(t *testing.T, actions []Action, want map[Step]Change) {
	t.Helper()
	got := changes(actions)
	for _, s := range Steps {
		if w, ok := want[s]; ok && got[s] != w {
			t.Errorf("%s: change %s, want %s\n  reason: %s", s, got[s], w, byStep(actions)[s].Reason)
		}
	}
}

func assertMentions(t *testing.T, a Action, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(a.Reason, s) {
			t.Errorf("%s reason %q should mention %q", a.Step, a.Reason, s)
		}
	}
}

func TestPlanShape(t *testing.T) {
	for _, name := range []string{"global", "gcchigh", "china"} {
		w := contoso(name)
		d, _ := mustDerive(t, w)
		actions := BuildPlan(d, w.o, genNow)
		var steps []Step
		for _, a := range actions {
			steps = append(steps, a.Step)
			if a.Reason == "" {
				t.Errorf("%s/%s: empty reason", name, a.Step)
			}
		}
		if !slices.Equal(steps, Steps) {
			t.Errorf("%s: steps %v, want %v", name, steps, Steps)
		}
		if again := BuildPlan(d, w.o, genNow); !reflect.DeepEqual(again, actions) {
			t.Errorf("%s: the plan is not deterministic", name)
		}
	}
}

func TestFreshTenant(t *testing.T) {
	w := contoso("global")
	d, warn := mustDerive(t, w)
	if d.Mode != ModeDedicatedApp {
		t.Fatalf("mode %s (%s); the Edge server's build must not matter", d.Mode, d.ModeReason)
	}
	if len(warn) != 0 {
		t.Errorf("unexpected warnings: %q", warn)
	}
	actions := BuildPlan(d, w.o, genNow)
	assertChanges(t, actions, map[Step]Change{
		StepAuthServers:         ChangeCreate,
		StepPartnerApp:          ChangeUpdate, // Exchange ships it disabled
		StepExportCert:          ChangeNone,
		StepDedicatedApp:        ChangeCreate,
		StepKeys:                ChangeCreate,
		StepSPNs:                ChangeUpdate,
		StepOnPremAuthServerApp: ChangeUpdate,
		StepSettingOverride:     ChangeCreate,
		StepIOCOnPrem:           ChangeCreate,
		StepIOCOnline:           ChangeCreate,
		StepAvailability:        ChangeSkip,
		StepVerify:              ChangeCheck,
		StepRemoveLegacyKey:     ChangeNone, // no legacy key on the first-party SP
		StepVerifyAfterRemoval:  ChangeSkip,
	})
	m := byStep(actions)
	assertMentions(t, m[StepAuthServers], "ACS will be created as 'WindowsAzureACS'", "evoSTS will be created as 'evoSTS'",
		"https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1")
	assertMentions(t, m[StepKeys], "ExchangeServerApp-"+orgGUID, "1 key to add: "+tpCur[:8])
	assertMentions(t, m[StepSPNs], "3 names to add", "https://mail.contoso.com/")
	assertMentions(t, m[StepIOCOnPrem], "ExchangeHybridOnPremisesToOnline", "https://outlook.office365.com/autodiscover/autodiscover.svc", "contoso.mail.onmicrosoft.com")
	assertMentions(t, m[StepIOCOnline], "ExchangeHybridOnlineToOnPremises", "https://autodiscover.contoso.com/autodiscover/autodiscover.svc", "contoso.com,fabrikam.com")
	assertMentions(t, m[StepVerify], "https://outlook.office365.com/ews/exchange.asmx as alice@contoso.com", "https://mail.contoso.com/metadata/json/1 as carol@contoso.com")
	if Converged(actions) {
		t.Error("a fresh tenant cannot be converged")
	}
}

// TestSecondRunWritesNothing is the zero-writes guarantee: whatever a
// first run had to do, once it is done a new discovery and a new plan
// find nothing to write — in every mode and cloud.
func TestSecondRunWritesNothing(t *testing.T) {
	scenarios := map[string]func() world{
		"global dedicated": func() world { return contoso("global") },
		"gcc high legacy":  func() world { w := contoso("gcchigh"); w.t.ModeSetting = "legacy-first-party"; return w },
		"gcc high":         func() world { return contoso("gcchigh") },
		"21vianet":         func() world { return contoso("china") },
		"pre-2013 server":  func() world { w := contoso("global"); addExchange2010(&w); return w },
		"half configured":  func() world { return halfConfigured() },
		"legacy key to migrate": func() world {
			w := contoso("global")
			w.o.FirstPartySP.Keys = append(w.o.FirstPartySP.Keys, k("legacy", derCur, date(2030, 6, 1)), k("dead", derPrev, days(-30)))
			w.o.AuthConfig.PreviousThumbprint = tpPrev
			return w
		},
		"next certificate staged": func() world {
			w := contoso("global")
			stageNext(&w)
			return w
		},
	}
	for name, mk := range scenarios {
		t.Run(name, func(t *testing.T) {
			w := mk()
			d, _ := mustDerive(t, w)
			first := BuildPlan(d, w.o, genNow)
			if Converged(first) {
				t.Fatal("scenario should need work on the first run")
			}
			w.o = apply(d, w.o)
			d2, _ := mustDerive(t, w)
			if !reflect.DeepEqual(d, d2) {
				t.Fatalf("Desired changed between runs:\n%+v\n%+v", d, d2)
			}
			second := BuildPlan(d2, w.o, genNow)
			for _, a := range second {
				if a.Change.Writes() {
					t.Errorf("second run writes in %s (%s): %s", a.Step, a.Change, a.Reason)
				}
			}
			if !Converged(second) {
				t.Error("Converged = false")
			}
		})
	}
}

// TestConvergedTenant writes a configured tenant out by hand, the way the
// Hybrid Configuration Wizard leaves it, rather than via apply.
func TestConvergedTenant(t *testing.T) {
	w := contoso("global")
	w.o.AuthServers = []AuthServer{
		{Name: "ACS - " + tenantID, Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1", Enabled: true},
		{Name: "EvoSts - " + tenantID, Type: "AzureAD", MetadataURL: "HTTPS://login.windows.net/contoso.onmicrosoft.com/federationmetadata/2007-06/federationmetadata.xml/", Enabled: true,
			ApplicationIdentifier: strings.ToUpper(appID), DomainName: []string{"contoso.com", "fabrikam.com", "contoso.onmicrosoft.com", "extra.example"}},
	}
	w.o.PartnerApp.Enabled = true
	w.o.DedicatedApp = Application{Exists: true, ID: "app-object", AppID: appID, HasFullAccessAsApp: true,
		Keys: []Key{{KeyID: "ours", Thumbprint: strings.ToLower(tpCur), End: date(2030, 6, 1)}, k("expired-foreign", derPrev, days(-100))}}
	w.o.DedicatedSP = DedicatedSP{Exists: true, ID: "sp-app"}
	w.o.ConsentGranted = true
	w.o.FirstPartySP.SPNs = append(w.o.FirstPartySP.SPNs, "https://MAIL.contoso.com", "https://ex01.contoso.local/", "https://ex02.contoso.local")
	w.o.SettingOverrides = []SettingOverride{{Name: "Hybrid3P set by hand", Component: "Global", Section: "exchangeonpremasthirdpartyappid", Parameters: []string{"Enabled = true"}}}
	w.o.OnPremIOCs = []IOC{{Name: "HybridIOC - 8d2a", DiscoveryEndpoint: "https://outlook.office365.com/autodiscover/autodiscover.svc", TargetAddressDomains: []string{"contoso.mail.onmicrosoft.com"}, Enabled: true}}
	w.o.OnlineIOCs = []IOC{{Name: "HybridIOC - 51f0", DiscoveryEndpoint: "https://autodiscover.contoso.com/autodiscover/autodiscover.svc", TargetAddressDomains: []string{"fabrikam.com", "contoso.com", "tailspin.com"}, Enabled: true}}

	d, _ := mustDerive(t, w)
	actions := BuildPlan(d, w.o, genNow)
	assertChanges(t, actions, map[Step]Change{
		StepAuthServers: ChangeNone, StepPartnerApp: ChangeNone, StepExportCert: ChangeNone, StepDedicatedApp: ChangeNone,
		StepKeys: ChangeNone, StepSPNs: ChangeNone, StepOnPremAuthServerApp: ChangeNone, StepSettingOverride: ChangeNone,
		StepIOCOnPrem: ChangeNone, StepIOCOnline: ChangeNone, StepAvailability: ChangeSkip, StepVerify: ChangeCheck,
		StepRemoveLegacyKey: ChangeNone, StepVerifyAfterRemoval: ChangeSkip,
	})
	if !Converged(actions) {
		t.Error("Converged = false for a configured tenant")
	}
	m := byStep(actions)
	assertMentions(t, m[StepAuthServers], "exists as 'ACS - 6a1c3d5e", "exists as 'EvoSts - 6a1c3d5e")
	assertMentions(t, m[StepIOCOnPrem], "'HybridIOC - 8d2a' (https://outlook.office365.com/autodiscover/autodiscover.svc", "already serves", "adopted as it is")
	assertMentions(t, m[StepKeys], "already there", "left in place")
	assertMentions(t, m[StepSettingOverride], "cannot be read back")
}

func halfConfigured() world {
	w := contoso("global")
	w.o.AuthServers = []AuthServer{
		{Name: "ACS - " + tenantID, Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1", Enabled: true},
		{Name: "EvoSts - " + tenantID, Type: "AzureAD", MetadataURL: "https://login.windows.net/contoso.onmicrosoft.com/federationmetadata/2007-06/federationmetadata.xml", Enabled: true},
	}
	w.o.PartnerApp.Enabled = true
	w.o.FirstPartySP.SPNs = append(w.o.FirstPartySP.SPNs, "https://mail.contoso.com")
	return w
}

func TestHalfConfiguredTenant(t *testing.T) {
	w := halfConfigured()
	d, _ := mustDerive(t, w)
	actions := BuildPlan(d, w.o, genNow)
	assertChanges(t, actions, map[Step]Change{
		StepAuthServers: ChangeNone, StepPartnerApp: ChangeNone, StepSPNs: ChangeUpdate,
		StepOnPremAuthServerApp: ChangeUpdate, StepIOCOnPrem: ChangeCreate,
	})
	m := byStep(actions)
	assertMentions(t, m[StepAuthServers],
		"auth server ACS exists as 'ACS - "+tenantID+"' (MicrosoftACS",
		"auth server evoSTS exists as 'EvoSts - "+tenantID+"' (AzureAD")
	// The HCW-named server is the one the dedicated app is attached to.
	assertMentions(t, m[StepOnPremAuthServerApp], "'EvoSts - "+tenantID+"'")
	spn := m[StepSPNs]
	if want := []string{"add https://ex01.contoso.local/", "add https://ex02.contoso.local/"}; !slices.Equal(spn.Details, want) {
		t.Errorf("SPN details %q, want %q (mail.contoso.com is already there without its slash)", spn.Details, want)
	}
	assertMentions(t, spn, "2 names to add", "1 wanted name is already registered")
}

func addExchange2010(w *world) {
	w.o.Servers = append(w.o.Servers, ExchangeServer{Name: "EX2010", Version: "Version 14.3 (Build 123.4)", Roles: "Mailbox, ClientAccess, HubTransport"})
	// Listed first: Derive must still pick the 2013-SP1-or-later server's URL.
	w.o.VirtualDirectories = append([]VirtualDirectory{{Kind: VDirWebServices, Server: "EX2010", ExternalURL: "https://legacy.contoso.com/EWS/Exchange.asmx"}}, w.o.VirtualDirectories...)
}

func TestAvailabilityAddressSpace(t *testing.T) {
	t.Run("absent without pre-2013 servers", func(t *testing.T) {
		w := contoso("global")
		d, _ := mustDerive(t, w)
		a := byStep(BuildPlan(d, w.o, genNow))[StepAvailability]
		if a.Change != ChangeSkip || !strings.Contains(a.Reason, "2013 SP1") {
			t.Errorf("%s: %s", a.Change, a.Reason)
		}
	})
	t.Run("created with an Exchange 2010 server", func(t *testing.T) {
		w := contoso("global")
		addExchange2010(&w)
		d, warn := mustDerive(t, w)
		// Exchange 2010 makes no OAuth calls of its own (its mailboxes go
		// through the availability address space and a newer server), so
		// it neither blocks the dedicated application nor draws a warning.
		if d.Mode != ModeDedicatedApp || slices.ContainsFunc(warn, func(s string) bool { return strings.Contains(s, "EX2010") }) {
			t.Errorf("auto mode with Exchange 2010: %s, warnings %q", d.Mode, warn)
		}
		if d.OnPremEWSURL != "https://mail.contoso.com/EWS/Exchange.asmx" {
			t.Errorf("EWS URL %s, want the modern server's", d.OnPremEWSURL)
		}
		a := byStep(BuildPlan(d, w.o, genNow))[StepAvailability]
		if a.Change != ChangeCreate || !strings.Contains(a.Reason, "EX2010") ||
			!slices.Equal(a.Details, []string{"Add-AvailabilityAddressSpace -AccessMethod InternalProxy -ProxyUrl https://mail.contoso.com/EWS/Exchange.asmx -ForestName contoso.mail.onmicrosoft.com -UseServiceAccount $true"}) {
			t.Errorf("%s: %s %q", a.Change, a.Reason, a.Details)
		}
	})
	t.Run("present and right", func(t *testing.T) {
		w := contoso("global")
		addExchange2010(&w)
		w.o.AvailabilitySpaces = []AvailabilitySpace{{ForestName: "Contoso.mail.onmicrosoft.com", AccessMethod: "InternalProxy", ProxyURL: "https://mail.contoso.com/ews/exchange.asmx/"}}
		d, _ := mustDerive(t, w)
		if a := byStep(BuildPlan(d, w.o, genNow))[StepAvailability]; a.Change != ChangeNone {
			t.Errorf("%s: %s", a.Change, a.Reason)
		}
	})
	t.Run("present with another proxy", func(t *testing.T) {
		w := contoso("global")
		addExchange2010(&w)
		w.o.AvailabilitySpaces = []AvailabilitySpace{{ForestName: "contoso.mail.onmicrosoft.com", AccessMethod: "OrgWideFB", ProxyURL: ""}}
		d, _ := mustDerive(t, w)
		a := byStep(BuildPlan(d, w.o, genNow))[StepAvailability]
		if a.Change != ChangeUpdate || len(a.Details) != 2 || !strings.HasPrefix(a.Details[0], "Remove-AvailabilityAddressSpace") {
			t.Errorf("%s: %s %q", a.Change, a.Reason, a.Details)
		}
	})
}

func Test21Vianet(t *testing.T) {
	w := contoso("china")
	d, _ := mustDerive(t, w)
	want := struct {
		acs, evo              AuthServerSpec
		routing               string
		spns                  []string
		onPremIOC, onlineIOC  IOCSpec
		verifyCloud, verifyOP string
	}{
		acs: AuthServerSpec{Name: "MicrosoftAzureACS", Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.chinacloudapi.cn/contoso.partner.onmschina.cn/metadata/json/1",
			Realm: tenantID, OtherMetadataURLs: []string{"https://accounts.accesscontrol.chinacloudapi.cn/" + tenantID + "/metadata/json/1"}},
		evo: AuthServerSpec{Name: "EvoSTS", Type: "AzureAD", MetadataURL: "https://login.chinacloudapi.cn/contoso.partner.onmschina.cn/federationmetadata/2007-06/federationmetadata.xml",
			Realm: tenantID, OtherMetadataURLs: []string{"https://login.chinacloudapi.cn/" + tenantID + "/federationmetadata/2007-06/federationmetadata.xml"}},
		routing: "contoso.partner.mail.onmschina.cn",
		// The internal names are under no registered domain: one authority
		// each (shared/reference/hybrid-facts.md (f)).
		spns: []string{fpApp + "/*.contoso.com", fpApp + "/ex01.contoso.local", fpApp + "/ex02.contoso.local"},
		// shared/reference/hybrid-facts.md (a) and (d): the 21Vianet manual
		// endpoint and the AutoDiscover secure host are both recognised.
		onPremIOC: IOCSpec{Name: OnPremIOCName, DiscoveryEndpoint: "https://partner.outlook.cn/autodiscover/autodiscover.svc",
			TargetAddressDomains: []string{"contoso.partner.mail.onmschina.cn"},
			AcceptedEndpoints:    []string{"https://partner.outlook.cn/autodiscover/autodiscover.svc", "https://autodiscover-s.partner.outlook.cn/autodiscover/autodiscover.svc"}},
		onlineIOC: IOCSpec{Name: OnlineIOCName, DiscoveryEndpoint: "https://autodiscover.contoso.com/autodiscover/autodiscover.svc", TargetAddressDomains: []string{"contoso.com", "fabrikam.com"},
			AcceptedEndpoints: []string{"https://mail.contoso.com/autodiscover/autodiscover.svc", "https://webmail.contoso.com/autodiscover/autodiscover.svc"}, AcceptedHostDomains: []string{"contoso.com", "fabrikam.com"}},
		verifyCloud: "https://partner.outlook.cn/ews/exchange.asmx",
		verifyOP:    "https://mail.contoso.com/metadata/json/1",
	}
	if !reflect.DeepEqual(d.ACS, want.acs) || !reflect.DeepEqual(d.EvoSTS, want.evo) || d.RoutingDomain != want.routing || !slices.Equal(d.SPNs, want.spns) ||
		!reflect.DeepEqual(d.OnPremIOC, want.onPremIOC) || !reflect.DeepEqual(d.OnlineIOC, want.onlineIOC) ||
		d.VerifyCloudTarget != want.verifyCloud || d.VerifyOnPremTarget != want.verifyOP {
		t.Fatalf("21Vianet desired state:\n got %+v\nwant %+v", d, want)
	}
	// A wildcard SPN already registered in other case counts as there.
	w.o.FirstPartySP.SPNs = append(w.o.FirstPartySP.SPNs, strings.ToUpper(fpApp)+"/*.CONTOSO.COM")
	a := byStep(BuildPlan(d, w.o, genNow))[StepSPNs]
	if !slices.Equal(a.Details, []string{"add " + fpApp + "/ex01.contoso.local", "add " + fpApp + "/ex02.contoso.local"}) {
		t.Errorf("SPN details %q", a.Details)
	}
}

func TestLegacyVersusDedicated(t *testing.T) {
	t.Run("legacy", func(t *testing.T) {
		w := contoso("gcchigh")
		w.t.ModeSetting = "legacy-first-party"
		d, warn := mustDerive(t, w)
		// GCC High is not covered by the block: legacy is allowed, with a
		// note that auto would choose the dedicated application.
		if len(warn) != 1 || !strings.Contains(warn[0], "mode auto would choose the dedicated") {
			t.Errorf("warnings %q", warn)
		}
		actions := BuildPlan(d, w.o, genNow)
		assertChanges(t, actions, map[Step]Change{
			StepDedicatedApp: ChangeSkip, StepOnPremAuthServerApp: ChangeSkip, StepSettingOverride: ChangeSkip,
			StepRemoveLegacyKey: ChangeSkip, StepVerifyAfterRemoval: ChangeSkip, StepKeys: ChangeUpdate,
		})
		assertMentions(t, byStep(actions)[StepKeys], "first-party service principal", "1 key to add")
		assertMentions(t, byStep(actions)[StepDedicatedApp], "legacy-first-party mode", "set in the inventory")
	})
	t.Run("legacy in the worldwide cloud is refused", func(t *testing.T) {
		w := contoso("global")
		w.t.ModeSetting = "legacy-first-party"
		_, _, err := Derive(w.t, w.p, w.o)
		if !errors.Is(err, ErrLegacyPathBlocked) || !strings.Contains(err.Error(), "blocked EWS") || !strings.Contains(err.Error(), "mode legacy-first-party is set") {
			t.Errorf("err %v, want LegacyPathBlocked naming the mode setting", err)
		}
	})
	t.Run("dedicated migrates the legacy key off the first-party SP", func(t *testing.T) {
		w := contoso("global")
		w.o.AuthConfig.PreviousThumbprint = tpPrev
		w.o.FirstPartySP.Keys = append(w.o.FirstPartySP.Keys, k("legacy", derCur, date(2030, 6, 1)), k("older", derPrev, days(20)))
		d, _ := mustDerive(t, w)
		if !slices.Equal(d.LegacyThumbprints, []string{tpCur, tpPrev}) {
			t.Errorf("legacy thumbprints %v", d.LegacyThumbprints)
		}
		actions := BuildPlan(d, w.o, genNow)
		assertChanges(t, actions, map[Step]Change{StepRemoveLegacyKey: ChangeUpdate, StepVerifyAfterRemoval: ChangeCheck, StepKeys: ChangeCreate})
		rm := byStep(actions)[StepRemoveLegacyKey]
		assertMentions(t, rm, "after verification succeeds", "2 keys to remove", "1 key stays")
		if !slices.Contains(rm.Details, "keep "+tpForeign) {
			t.Errorf("the partner's key must stay: %q", rm.Details)
		}
	})
}

func TestIOCRecognition(t *testing.T) {
	const cloudAD = "https://outlook.office365.com/autodiscover/autodiscover.svc"
	routing := []string{"contoso.mail.onmicrosoft.com"}
	cases := []struct {
		name    string
		iocs    []IOC
		change  Change
		mention string
	}{
		{"HCW connector by endpoint and domain", []IOC{{Name: "HybridIOC - 1", DiscoveryEndpoint: cloudAD + "/", TargetAddressDomains: []string{"CONTOSO.mail.onmicrosoft.com"}, Enabled: true}},
			ChangeNone, "'HybridIOC - 1' (" + cloudAD + "/ for CONTOSO.mail.onmicrosoft.com) already serves contoso.mail.onmicrosoft.com; adopted as it is"},
		// shared/reference/hybrid-facts.md (a): the wizard points the
		// on-prem connector at autodiscover-s.outlook.com.
		{"HCW connector at the autodiscover-s host", []IOC{{Name: "HybridIOC - 1", DiscoveryEndpoint: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc", TargetAddressDomains: routing, Enabled: true}},
			ChangeNone, "adopted as it is"},
		{"disabled HCW connector is enabled", []IOC{{Name: "HybridIOC - 1", DiscoveryEndpoint: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc", TargetAddressDomains: routing}},
			ChangeUpdate, "'HybridIOC - 1' will be changed: enabled"},
		{"ours by name at the autodiscover-s host is left", []IOC{{Name: OnPremIOCName, DiscoveryEndpoint: "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc", TargetAddressDomains: routing, Enabled: true}},
			ChangeNone, "already serves"},
		{"ours by name with the wrong endpoint", []IOC{{Name: OnPremIOCName, DiscoveryEndpoint: "https://old.example/autodiscover/autodiscover.svc", TargetAddressDomains: routing, Enabled: true}},
			ChangeUpdate, "discovery endpoint " + cloudAD + " instead of https://old.example"},
		{"ours by name, a domain missing", []IOC{{Name: OnPremIOCName, DiscoveryEndpoint: cloudAD, TargetAddressDomains: []string{"other.example"}, Enabled: true}},
			ChangeUpdate, "target domains gain contoso.mail.onmicrosoft.com"},
		{"ours, disabled", []IOC{{Name: OnPremIOCName, DiscoveryEndpoint: cloudAD, TargetAddressDomains: routing}}, ChangeUpdate, "enabled"},
		{"domain held by a foreign connector", []IOC{{Name: "Partner", DiscoveryEndpoint: "https://elsewhere.example/autodiscover/autodiscover.svc", TargetAddressDomains: routing, Enabled: true}},
			ChangeBlocked, "connector 'Partner' already routes contoso.mail.onmicrosoft.com through https://elsewhere.example"},
		{"another cloud's endpoint is not this cloud's", []IOC{{Name: "HybridIOC - 1", DiscoveryEndpoint: "https://autodiscover-s.office365.us/autodiscover/autodiscover.svc", TargetAddressDomains: routing, Enabled: true}},
			ChangeBlocked, "not an endpoint Microsoft uses"},
		{"same endpoint but other domains is not ours", []IOC{{Name: "Other", DiscoveryEndpoint: cloudAD, TargetAddressDomains: []string{"x.example"}, Enabled: true}},
			ChangeCreate, "will be created"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso("global")
			w.o.OnPremIOCs = c.iocs
			d, _ := mustDerive(t, w)
			a := byStep(BuildPlan(d, w.o, genNow))[StepIOCOnPrem]
			if a.Change != c.change || !strings.Contains(a.Reason, c.mention) {
				t.Errorf("%s: %s", a.Change, a.Reason)
			}
		})
	}
}

func TestAuthServerDecisions(t *testing.T) {
	acsURL := "https://accounts.accesscontrol.windows.net/contoso.onmicrosoft.com/metadata/json/1"
	evoURL := "https://login.windows.net/contoso.onmicrosoft.com/federationmetadata/2007-06/federationmetadata.xml"
	cases := []struct {
		name    string
		servers []AuthServer
		change  Change
		mention string
	}{
		// Our name, another tenant's realm: not ours, never rewritten.
		{"our name with another realm is blocked", []AuthServer{{Name: "WindowsAzureACS", Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/typo.onmicrosoft.com/metadata/json/1", Realm: "0f0f0f0f-0000-4000-8000-000000000000", Enabled: true},
			{Name: "evoSTS", Type: "AzureAD", MetadataURL: evoURL, Enabled: true}}, ChangeBlocked, "auth server 'WindowsAzureACS' exists with type MicrosoftACS, realm 0f0f0f0f"},
		{"our name, unknown realm, another URL is blocked", []AuthServer{{Name: "WindowsAzureACS", Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/typo.onmicrosoft.com/metadata/json/1", Enabled: true},
			{Name: "evoSTS", Type: "AzureAD", MetadataURL: evoURL, Enabled: true}}, ChangeBlocked, "not this tenant's ACS server"},
		// shared/reference/hybrid-facts.md (a): HCW's ACS URL carries the
		// tenant ID, and the realm is the tenant ID.
		{"HCW servers by realm", []AuthServer{{Name: "ACS - 9a9a", Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/" + tenantID + "/metadata/json/1", Realm: tenantID, Enabled: true},
			{Name: "EvoSts - 9a9a", Type: "AzureAD", MetadataURL: evoURL, Realm: strings.ToUpper(tenantID), Enabled: true}}, ChangeNone, "ACS exists as 'ACS - 9a9a'"},
		// The realm decides, whatever the URL names (here a vanity domain).
		{"realm decides whatever the URL", []AuthServer{{Name: "ACS (vanity)", Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/contoso.com/metadata/json/1", Realm: tenantID, Enabled: true},
			{Name: "EvoSts - 9a9a", Type: "AzureAD", MetadataURL: evoURL, Realm: tenantID, Enabled: true}}, ChangeNone, "ACS exists as 'ACS (vanity)'"},
		{"HCW ACS URL with an unknown realm", []AuthServer{{Name: "ACS - 9a9a", Type: "MicrosoftACS", MetadataURL: "https://accounts.accesscontrol.windows.net/" + tenantID + "/metadata/json/1", Enabled: true},
			{Name: "EvoSts - 9a9a", Type: "AzureAD", MetadataURL: evoURL, Enabled: true}}, ChangeNone, "ACS exists as 'ACS - 9a9a'"},
		{"right but disabled", []AuthServer{{Name: "x", Type: "MicrosoftACS", MetadataURL: acsURL, Enabled: true},
			{Name: "EvoSts - 1", Type: "AzureAD", MetadataURL: evoURL}}, ChangeUpdate, "'EvoSts - 1' (AzureAD, realm unknown, metadata URL " + evoURL + ") but is disabled; it will be enabled"},
		{"an enabled copy wins over a disabled one", []AuthServer{{Name: "old", Type: "MicrosoftACS", MetadataURL: acsURL}, {Name: "new", Type: "MicrosoftACS", MetadataURL: acsURL, Enabled: true},
			{Name: "evo", Type: "AzureAD", MetadataURL: evoURL, Enabled: true}}, ChangeNone, "ACS exists as 'new'"},
		{"right URL but wrong type is not a match", []AuthServer{{Name: "x", Type: "AzureAD", MetadataURL: acsURL, Enabled: true},
			{Name: "evo", Type: "AzureAD", MetadataURL: evoURL, Enabled: true}}, ChangeCreate, "ACS will be created"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso("global")
			w.o.AuthServers = c.servers
			d, _ := mustDerive(t, w)
			a := byStep(BuildPlan(d, w.o, genNow))[StepAuthServers]
			if a.Change != c.change || !strings.Contains(a.Reason, c.mention) {
				t.Errorf("%s: %s", a.Change, a.Reason)
			}
		})
	}
}

func TestSettingOverride(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name      string
		overrides []SettingOverride
		refreshed *bool
		change    Change
		mention   string
	}{
		{"absent", nil, nil, ChangeCreate, "will be created and VariantConfiguration refreshed"},
		{"present, refresh unknown", []SettingOverride{{Name: "x", Section: OverrideSection, Parameters: []string{"Enabled=true"}}}, nil, ChangeNone, "cannot be read back"},
		{"present, known refreshed", []SettingOverride{{Name: "x", Section: OverrideSection, Parameters: []string{"Enabled=true"}}}, &yes, ChangeNone, "is loaded"},
		{"present, known not refreshed", []SettingOverride{{Name: "x", Section: OverrideSection, Parameters: []string{"Enabled=true"}}}, &no, ChangeUpdate, "will be refreshed"},
		// shared/reference/hybrid-facts.md (b) "Setting override": an
		// override of the section that disables the feature is not done.
		{"present but disabled is blocked", []SettingOverride{{Name: "off", Component: "Global", Section: OverrideSection, Parameters: []string{"Enabled=false"}}}, nil, ChangeBlocked, "'off' (parameters Enabled=false)"},
		{"disabled beside an enabled one is blocked", []SettingOverride{{Name: "on", Section: OverrideSection, Parameters: []string{"Enabled=true"}}, {Name: "off", Section: OverrideSection, Parameters: []string{"Enabled=false"}}}, nil, ChangeBlocked, "'off'"},
		{"another component does not count", []SettingOverride{{Name: "x", Component: "Other", Section: OverrideSection, Parameters: []string{"Enabled=false"}}}, nil, ChangeCreate, "will be created"},
		{"another section does not count", []SettingOverride{{Name: "x", Section: "Other", Parameters: []string{"Enabled=true"}}}, nil, ChangeCreate, "will be created"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := contoso("global")
			w.o.SettingOverrides, w.o.VariantConfigRefreshed = c.overrides, c.refreshed
			d, _ := mustDerive(t, w)
			a := byStep(BuildPlan(d, w.o, genNow))[StepSettingOverride]
			if a.Change != c.change || !strings.Contains(a.Reason, c.mention) {
				t.Errorf("%s: %s", a.Change, a.Reason)
			}
		})
	}
}

func TestDedicatedAppSubSteps(t *testing.T) {
	w := contoso("global")
	w.o.DedicatedApp = Application{Exists: true, AppID: appID, Keys: []Key{k("ours", derCur, date(2030, 6, 1))}}
	d, _ := mustDerive(t, w)
	m := byStep(BuildPlan(d, w.o, genNow))
	a := m[StepDedicatedApp]
	if a.Change != ChangeUpdate || len(a.Details) != 3 {
		t.Errorf("%s: %s %q", a.Change, a.Reason, a.Details)
	}
	assertMentions(t, a, "full_access_as_app", "service principal", "admin consent")
	if m[StepKeys].Change != ChangeNone {
		t.Errorf("keys: %s", m[StepKeys].Reason)
	}
	assertMentions(t, m[StepOnPremAuthServerApp], "ApplicationIdentifier "+appID)
}

// TestPartnerAppMissing: no documented call recreates the partner
// application (shared/reference/exchange-cmdlets.tsv has no
// New-PartnerApplication; the seeds only enable it), so the step is
// blocked, and so is the setting override that depends on it.
func TestPartnerAppMissing(t *testing.T) {
	w := contoso("global")
	w.o.PartnerApp = PartnerApp{}
	d, _ := mustDerive(t, w)
	m := byStep(BuildPlan(d, w.o, genNow))
	if a := m[StepPartnerApp]; a.Change != ChangeBlocked || !strings.Contains(a.Reason, "no partner application") {
		t.Errorf("%s: %s", a.Change, a.Reason)
	}
	if a := m[StepSettingOverride]; a.Change != ChangeBlocked || !strings.Contains(a.Reason, "partner application is not enabled (step partner-application is blocked)") {
		t.Errorf("override: %s: %s", a.Change, a.Reason)
	}
	if Converged(BuildPlan(d, w.o, genNow)) {
		t.Error("a blocked plan counts as converged")
	}
}

func TestVerifyWithoutMailbox(t *testing.T) {
	w := contoso("global")
	w.o.OnPremMailboxes = nil
	d, warn := mustDerive(t, w)
	if len(warn) != 1 || !strings.Contains(warn[0], "onprem_mailbox") {
		t.Errorf("warnings %q", warn)
	}
	assertMentions(t, byStep(BuildPlan(d, w.o, genNow))[StepVerify], "(no mailbox known)", "set onprem_mailbox")
}

func TestNextCertificate(t *testing.T) {
	w := contoso("global")
	stageNext(&w)
	d, _ := mustDerive(t, w)
	m := byStep(BuildPlan(d, w.o, genNow))
	assertMentions(t, m[StepExportCert], tpCur[:8], "the next one, "+tpNext[:8]+"…, staged for 2026-04-01")
	assertMentions(t, m[StepKeys], "2 keys to add")
	if m[StepKeys].Details[0] != "add "+tpCur || m[StepKeys].Details[1] != "add "+tpNext {
		t.Errorf("key details %q", m[StepKeys].Details)
	}
}

func stageNext(w *world) {
	w.o.AuthConfig.NextThumbprint = strings.ToLower(tpNext)
	w.o.AuthConfig.NextEffective = date(2026, 4, 1)
	w.o.Certificates = append(w.o.Certificates, Certificate{Thumbprint: tpNext, Subject: "CN=Microsoft Exchange Server Auth Certificate",
		NotBefore: date(2026, 2, 1), NotAfter: date(2031, 2, 1), DER: derNext})
}

// TestPayloadRoundTrip: plans and their inputs travel through Temporal as
// JSON and must come back identical.
func TestPayloadRoundTrip(t *testing.T) {
	w := contoso("global")
	stageNext(&w)
	refreshed := false
	w.o.VariantConfigRefreshed = &refreshed
	d, _ := mustDerive(t, w)
	actions := BuildPlan(d, w.o, genNow)
	for name, v := range map[string]any{"observed": &w.o, "desired": &d, "actions": &actions, "facts": &w.t} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		back := reflect.New(reflect.TypeOf(v).Elem())
		if err := json.Unmarshal(data, back.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Elem().Interface(), reflect.ValueOf(v).Elem().Interface()) {
			t.Errorf("%s does not survive JSON", name)
		}
	}
}

func TestChangeWrites(t *testing.T) {
	for c, want := range map[Change]bool{ChangeNone: false, ChangeSkip: false, ChangeCheck: false, ChangeCreate: true, ChangeUpdate: true} {
		if c.Writes() != want {
			t.Errorf("%s.Writes() = %v", c, !want)
		}
	}
}
