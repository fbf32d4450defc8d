package plan

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func lyncWant(t *testing.T) LyncHostingProvider {
	t.Helper()
	p, _, err := DesiredLyncProvider("global", "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBuildLyncPlanPolicies: each Lync policy's decision and reason. The
// documented provider is shared/reference/hybrid-facts.md (e) row
// "hosting provider"; "change ProxyFqdn" (Set-CsHostingProvider has no
// -ProxyFqdn) makes a different proxy a remove and re-create; "OWA IM
// users" makes a missing remote-user policy a warning.
func TestBuildLyncPlanPolicies(t *testing.T) {
	want := lyncWant(t)
	wrongProxy, wrongLevel, other := want, want, want
	wrongProxy.ProxyFqdn, wrongProxy.HostsOCSUsers = "exap.um.partner.outlook.cn", true
	wrongLevel.VerificationLevel = "AlwaysVerifiable"
	other.Identity = "EXO (manual)"
	sameCase := want
	sameCase.ProxyFqdn, sameCase.VerificationLevel = "EXAP.um.outlook.com.", "usesourceverification"
	allow := []LyncExternalAccessPolicy{{"Global", false}, {"Tag:Remote", true}}
	for _, c := range []struct {
		name     string
		o        LyncObserved
		edge     []string
		step     Step
		change   Change
		reason   string
		details  string
		warnings []string // substrings, in order
	}{
		{"federation off", LyncObserved{ExternalAccess: allow}, nil, LyncStepFederation, ChangeUpdate,
			"AllowFederatedUsers is $False; the shared SIP address space with Exchange Online needs it $True", "Set-CsAccessEdgeConfiguration -AllowFederatedUsers $True", nil},
		{"federation on", LyncObserved{AllowFederatedUsers: true, ExternalAccess: allow}, nil, LyncStepFederation, ChangeNone,
			"AllowFederatedUsers is already $True", "", nil},
		{"no provider", LyncObserved{ExternalAccess: allow}, nil, LyncStepHostingProvider, ChangeCreate,
			`there is no "Exchange Online" hosting provider`, `New-CsHostingProvider -Identity "Exchange Online" -Enabled $True -EnabledSharedAddressSpace $True -HostsOCSUsers $False -ProxyFqdn "exap.um.outlook.com" -IsLocal $False -VerificationLevel UseSourceVerification`, nil},
		{"other proxy", LyncObserved{Provider: &wrongProxy, ExternalAccess: allow}, nil, LyncStepHostingProvider, ChangeUpdate,
			"ProxyFqdn is exap.um.partner.outlook.cn, not exap.um.outlook.com; it cannot be changed in place, so the provider is removed and re-created",
			`Remove-CsHostingProvider -Identity "Exchange Online" New-CsHostingProvider`, nil},
		{"other proxy, other settings too", LyncObserved{Provider: &wrongProxy, ExternalAccess: allow}, nil, LyncStepHostingProvider, ChangeUpdate,
			"removed and re-created", "also differs: HostsOCSUsers $True → $False", nil},
		{"other settings", LyncObserved{Provider: &wrongLevel, ExternalAccess: allow}, nil, LyncStepHostingProvider, ChangeUpdate,
			"the provider differs from the documented settings: VerificationLevel AlwaysVerifiable → UseSourceVerification",
			"Set-CsHostingProvider in place (ProxyFqdn already exap.um.outlook.com)", nil},
		{"documented, compared without case or trailing dot", LyncObserved{Provider: &sameCase, ExternalAccess: allow}, nil, LyncStepHostingProvider, ChangeNone,
			`"Exchange Online" already has the documented settings (ProxyFqdn exap.um.outlook.com)`, "", nil},
		{"another provider on the proxy", LyncObserved{Provider: &want, OtherProviders: []LyncHostingProvider{other}, ExternalAccess: allow}, nil,
			LyncStepHostingProvider, ChangeNone, "already has the documented settings", "",
			[]string{`hosting provider "EXO (manual)" also uses ProxyFqdn exap.um.outlook.com`}},
		{"replicas lagging", LyncObserved{Replicas: []LyncReplica{{Fqdn: "fe01", UpToDate: true}, {Fqdn: "edge01"}}, ExternalAccess: allow}, nil,
			LyncStepReplication, ChangeCheck, "wait until Get-CsManagementStoreReplicationStatus shows every replica up to date", "not up to date now: edge01", nil},
		{"replicas current", LyncObserved{Replicas: []LyncReplica{{Fqdn: "fe01", UpToDate: true}}, ExternalAccess: allow}, nil,
			LyncStepReplication, ChangeCheck, "every replica up to date", "all 1 replica(s) up to date now", nil},
		{"edge: every replica", LyncObserved{Replicas: []LyncReplica{{Fqdn: "fe01", UpToDate: true, LastUpdateCreation: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}, {Fqdn: "edge01"}}, ExternalAccess: allow}, nil,
			LyncStepEdgeStore, ChangeCheck, "every Central Management store replica, the Edge Server's included",
			"now: fe01: up to date, last snapshot 2026-11-02T12:00:00Z edge01: not up to date", nil},
		{"edge: named", LyncObserved{Replicas: []LyncReplica{{Fqdn: "fe01", UpToDate: true}, {Fqdn: "edge01"}}, ExternalAccess: allow}, []string{"EDGE01"},
			LyncStepEdgeStore, ChangeCheck, "the Edge Server's replica (EDGE01)", "now: edge01: not up to date", nil},
		{"no remote-user policy", LyncObserved{Provider: &want, ExternalAccess: []LyncExternalAccessPolicy{{"Global", false}}}, nil,
			LyncStepExternalAccess, ChangeCheck, "report whether an external access policy enables communications with remote users", "none does now",
			[]string{"no external access policy enables communications with remote users"}},
		{"remote users allowed", LyncObserved{Provider: &want, ExternalAccess: allow}, nil,
			LyncStepExternalAccess, ChangeCheck, "report whether", "enabled in: Tag:Remote", nil},
		{"warnings in step order", LyncObserved{OtherProviders: []LyncHostingProvider{other}}, nil, LyncStepHostingProvider, ChangeCreate, "there is no",
			"", []string{"also uses ProxyFqdn", "no external access policy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			acts, warnings := BuildLyncPlan(c.o, want, c.edge)
			var steps []Step
			for _, a := range acts {
				steps = append(steps, a.Step)
			}
			if !slices.Equal(steps, LyncSteps) {
				t.Fatalf("steps %v; want %v", steps, LyncSteps)
			}
			a := acts[slices.Index(LyncSteps, c.step)]
			if a.Change != c.change || !strings.Contains(a.Reason, c.reason) || !strings.Contains(strings.Join(a.Details, " "), c.details) {
				t.Errorf("%s: %s %q %q; want %s, reason containing %q, details containing %q", c.step, a.Change, a.Reason, a.Details, c.change, c.reason, c.details)
			}
			if len(warnings) != len(c.warnings) {
				t.Fatalf("warnings %q; want %d", warnings, len(c.warnings))
			}
			for i, w := range c.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d %q; want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

// TestDecideLyncProvider: the hosting-provider step and the undo that puts
// a provider back act on the same decision (shared/reference/hybrid-facts.md
// (e), "change ProxyFqdn": no -ProxyFqdn on Set-CsHostingProvider).
func TestDecideLyncProvider(t *testing.T) {
	want := LyncHostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "UseSourceVerification"}
	off, moved, both := want, want, want
	off.Enabled = false
	moved.ProxyFqdn = "other.example.com"
	both.ProxyFqdn, both.IsLocal = "other.example.com", true
	for _, c := range []struct {
		name   string
		cur    *LyncHostingProvider
		change LyncProviderChange
		params map[string]any
		words  []string
	}{
		{"none", nil, LyncProviderCreate, nil, nil},
		{"documented", &want, LyncProviderKeep, nil, nil},
		{"disabled", &off, LyncProviderSet, map[string]any{"Enabled": true}, []string{"Enabled $False → $True"}},
		{"other proxy", &moved, LyncProviderReplace, nil, nil},
		{"other proxy and setting", &both, LyncProviderReplace, nil, []string{"IsLocal $True → $False"}},
	} {
		d := DecideLyncProvider(c.cur, want)
		if d.Change != c.change || len(d.Params) != len(c.params) || !slices.Equal(d.Words, c.words) {
			t.Errorf("%s: %+v; want %s %v %q", c.name, d, c.change, c.params, c.words)
		}
		for k, v := range c.params {
			if d.Params[k] != v {
				t.Errorf("%s: param %s = %v; want %v", c.name, k, d.Params[k], v)
			}
		}
	}
}

// TestLyncReplicaStale: a replica holds the provider once it is up to date
// and, when this run wrote, has a snapshot packaged after the write
// (shared/reference/hybrid-facts.md (e), "check on an internal server":
// UpToDate and LastUpdateCreation).
func TestLyncReplicaStale(t *testing.T) {
	before := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	base := []LyncReplica{{Fqdn: "edge01.contoso.com", UpToDate: true, LastUpdateCreation: before}}
	for _, c := range []struct {
		name     string
		rep      LyncReplica
		baseline []LyncReplica
		want     string
	}{
		{"lagging", LyncReplica{Fqdn: "edge01.contoso.com"}, nil, "has not applied the latest snapshot (UpToDate False)"},
		{"nothing written: up to date is enough", LyncReplica{Fqdn: "edge01.contoso.com", UpToDate: true}, nil, ""},
		{"no snapshot time", LyncReplica{Fqdn: "edge01.contoso.com", UpToDate: true}, base, "reports no LastUpdateCreation"},
		{"snapshot from before the write", LyncReplica{Fqdn: "EDGE01.contoso.com", UpToDate: true, LastUpdateCreation: before}, base, "packaged before the provider was written"},
		{"snapshot after the write", LyncReplica{Fqdn: "edge01.contoso.com", UpToDate: true, LastUpdateCreation: before.Add(time.Second)}, base, ""},
	} {
		got := LyncReplicaStale(c.rep, c.baseline)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}

// TestLyncStoreVerdict: the Edge step refuses when the Central Management
// store no longer holds the documented provider.
func TestLyncStoreVerdict(t *testing.T) {
	want := lyncWant(t)
	changed := want
	changed.ProxyFqdn = "other.example.com"
	for _, c := range []struct {
		name string
		cms  *LyncHostingProvider
		want string
	}{
		{"gone", nil, `the Central Management store has no "Exchange Online" provider`},
		{"changed", &changed, "no longer the documented one (ProxyFqdn other.example.com → exap.um.outlook.com)"},
		{"documented", &want, ""},
	} {
		got := LyncStoreVerdict(c.cms, want)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}
