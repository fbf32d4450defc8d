package activities

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// lyncHosts serves the simulated world's Lync deployments in-process.
type lyncHosts struct{ w *sim.World }

func (h lyncHosts) Lync(t Target) exchange.Runner {
	return sim.DirectRunner{W: h.w, Side: sim.Lync, Tenant: t.TenantID}
}

const (
	lyncTenant   = "0f2c6a52-6f1e-4c4e-9d1b-5a7f3c2e1d00" // Contoso, with Lync
	lyncNoLync   = "7d4e9b10-2a3c-4f5e-8a6b-1c2d3e4f5a6b" // Fabrikam, without
	lyncTestYAML = `now: 2026-11-02T12:00:00Z
tenants:
  - id: ` + lyncTenant + `
    display_name: Contoso
    cloud: global
    initial_domain: contoso.onmicrosoft.com
    site: site-1
    lync:
      site: site-1
      allow_federated_users: false
      replicas:
        - fqdn: fe01.contoso.com
          up_to_date: true
          lag_checks: 2
        - fqdn: edge01.contoso.com
          up_to_date: true
      external_access_policies:
        - identity: Global
          enable_outside_access: false
        - identity: Tag:RemoteUsers
          enable_outside_access: true
  - id: ` + lyncNoLync + `
    display_name: Fabrikam
    cloud: gcchigh
    initial_domain: fabrikam.onmicrosoft.us
    site: site-2
`
)

var lyncTarget = Target{TenantID: lyncTenant, Cloud: "global", Site: "site-1", LyncSite: "site-1"}

func newLyncTest(t *testing.T) (*sim.World, *Lync, *testsuite.TestActivityEnvironment) {
	t.Helper()
	w, err := sim.Parse("lync-activities-test", []byte(lyncTestYAML))
	if err != nil {
		t.Fatal(err)
	}
	a := &Lync{Hosts: lyncHosts{w}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	return w, a, env
}

func lyncDesired(t *testing.T, cloud string) LyncHostingProvider {
	t.Helper()
	p, _, err := DesiredLyncProvider(cloud, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lyncProviders(w *sim.World) (cms, edge []sim.HostingProvider) {
	w.View(lyncTenant, func(t *sim.Tenant) {
		for _, p := range t.Lync.HostingProviders {
			cms = append(cms, *p)
		}
		for _, p := range t.Lync.EdgeLocalStore {
			edge = append(edge, *p)
		}
	})
	return cms, edge
}

func lyncProviderFromSim(p sim.HostingProvider) LyncHostingProvider {
	return LyncHostingProvider{Identity: p.Identity, Enabled: p.Enabled, EnabledSharedAddressSpace: p.EnabledSharedAddressSpace,
		HostsOCSUsers: p.HostsOCSUsers, ProxyFqdn: p.ProxyFqdn, IsLocal: p.IsLocal, VerificationLevel: p.VerificationLevel}
}

func lyncSetProvider(w *sim.World, p *sim.HostingProvider) {
	w.Update(lyncTenant, func(t *sim.Tenant) {
		t.Lync.HostingProviders = nil
		if p != nil {
			cp := *p
			t.Lync.HostingProviders = []*sim.HostingProvider{&cp}
		}
	})
}

func runLyncStep(t *testing.T, env *testsuite.TestActivityEnvironment, fn any, arg any) (LyncStepResult, error) {
	t.Helper()
	var r LyncStepResult
	v, err := env.ExecuteActivity(fn, arg)
	if err != nil {
		return r, err
	}
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r, nil
}

func lyncErrType(err error) (string, bool) {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type(), app.NonRetryable()
	}
	return "", false
}

func TestDesiredLyncProvider(t *testing.T) {
	for _, c := range []struct {
		cloud, override, want string
		warn                  bool
	}{
		{"global", "", "exap.um.outlook.com", false},
		// shared/reference/hybrid-facts.md (e) "ProxyFqdn per cloud": only
		// worldwide and 21Vianet are documented; (d): GCC has no endpoint
		// entry of its own. Every other value warns until overridden.
		{"gcc", "", "exap.um.outlook.com", true},
		{"gcchigh", "", "exap.um.office365.us", true},
		{"gcchigh", "exap.um.office365.us", "exap.um.office365.us", false},
		{"dod", "", "exap.um.office365.us", true},
		{"dod", "EXAP.um.Example.us.", "exap.um.example.us", false},
		{"china", "", "exap.um.partner.outlook.cn", false},
		{"21vianet", "", "exap.um.partner.outlook.cn", false},
	} {
		p, warnings, err := DesiredLyncProvider(c.cloud, c.override)
		if err != nil {
			t.Fatalf("%s: %v", c.cloud, err)
		}
		want := LyncHostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, HostsOCSUsers: false,
			ProxyFqdn: c.want, IsLocal: false, VerificationLevel: "UseSourceVerification"}
		if p != want || (len(warnings) > 0) != c.warn {
			t.Errorf("%s %q: %+v, warnings %q", c.cloud, c.override, p, warnings)
		}
	}
	for _, bad := range [][2]string{{"mars", ""}, {"global", "https://exap.um.outlook.com/"}, {"global", "localhost"}} {
		if _, _, err := DesiredLyncProvider(bad[0], bad[1]); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBuildLyncPlan(t *testing.T) {
	want := lyncDesired(t, "global")
	wrongLevel := want
	wrongLevel.VerificationLevel, wrongLevel.Enabled = "AlwaysVerifiable", false
	wrongProxy := want
	wrongProxy.ProxyFqdn = "exap.um.partner.outlook.cn"
	other := want
	other.Identity = "EXO (manual)"
	upToDate := []LyncReplica{{Fqdn: "fe01", UpToDate: true}}
	for _, c := range []struct {
		name       string
		o          LyncObserved
		fed, hp    plan.Change
		reason     string
		warnings   int
		edgeDetail string
	}{
		{"fresh", LyncObserved{Replicas: upToDate}, plan.ChangeUpdate, plan.ChangeCreate, "no \"Exchange Online\"", 1, "has no"},
		{"converged", LyncObserved{AllowFederatedUsers: true, Provider: &want, EdgeProvider: &want, Replicas: upToDate,
			ExternalAccess: []LyncExternalAccessPolicy{{"Global", true}}}, plan.ChangeNone, plan.ChangeNone, "already has the documented settings", 0, "already shows"},
		{"wrong proxy", LyncObserved{AllowFederatedUsers: true, Provider: &wrongProxy, EdgeProvider: &wrongProxy,
			ExternalAccess: []LyncExternalAccessPolicy{{"Global", true}}}, plan.ChangeNone, plan.ChangeUpdate, "removed and re-created", 0, "differs"},
		{"wrong level", LyncObserved{AllowFederatedUsers: true, Provider: &wrongLevel,
			ExternalAccess: []LyncExternalAccessPolicy{{"Global", false}, {"Tag:Remote", true}}}, plan.ChangeNone, plan.ChangeUpdate,
			"Enabled $False → $True, VerificationLevel AlwaysVerifiable → UseSourceVerification", 0, "has no"},
		{"another provider on the same proxy", LyncObserved{AllowFederatedUsers: true, OtherProviders: []LyncHostingProvider{other},
			ExternalAccess: []LyncExternalAccessPolicy{{"Global", true}}}, plan.ChangeNone, plan.ChangeCreate, "no \"Exchange Online\"", 1, "has no"},
	} {
		t.Run(c.name, func(t *testing.T) {
			acts, warnings := BuildLyncPlan(c.o, want)
			var steps []plan.Step
			for _, a := range acts {
				steps = append(steps, a.Step)
			}
			if !slices.Equal(steps, LyncSteps) {
				t.Fatalf("steps %v", steps)
			}
			if acts[0].Change != c.fed || acts[1].Change != c.hp || !strings.Contains(acts[1].Reason, c.reason) {
				t.Errorf("federation %s, provider %s %q", acts[0].Change, acts[1].Change, acts[1].Reason)
			}
			if len(warnings) != c.warnings {
				t.Errorf("warnings %q", warnings)
			}
			if !strings.Contains(strings.Join(acts[3].Details, " "), c.edgeDetail) {
				t.Errorf("edge details %q", acts[3].Details)
			}
			for _, a := range acts[2:] {
				if a.Change != plan.ChangeCheck {
					t.Errorf("%s: %s", a.Step, a.Change)
				}
			}
		})
	}
}

func TestDiscoverLync(t *testing.T) {
	w, a, env := newLyncTest(t)
	p := sim.HostingProvider{Identity: "Exchange Online", Enabled: true, ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "AlwaysVerifiable"}
	lyncSetProvider(w, &p)
	v, err := env.ExecuteActivity(a.DiscoverLync, lyncTarget)
	if err != nil {
		t.Fatal(err)
	}
	var o LyncObserved
	if err := v.Get(&o); err != nil {
		t.Fatal(err)
	}
	if o.AllowFederatedUsers || o.Provider == nil || o.Provider.VerificationLevel != "AlwaysVerifiable" || o.EdgeProvider == nil || !o.EdgeProvider.Equal(*o.Provider) ||
		len(o.Replicas) != 2 || len(o.ExternalAccess) != 2 || !o.ExternalAccess[1].EnableOutsideAccess {
		t.Fatalf("%+v", o)
	}
	if st := w.Stats().ByTenant[lyncTenant]; st.ShellRoundTrips != 1 || st.Writes != 0 {
		t.Fatalf("discovery: %d round trips, %d writes; want one read-only round trip", st.ShellRoundTrips, st.Writes)
	}
	// Without Lync the module is missing: a clear, non-retryable error.
	_, err = env.ExecuteActivity(a.DiscoverLync, Target{TenantID: lyncNoLync, LyncSite: "site-2"})
	if typ, nonRetryable := lyncErrType(err); typ != "CommandNotFoundException" || !nonRetryable {
		t.Fatalf("%v (%s)", err, typ)
	}
}

func TestEnsureLyncEdgeFederationAndUndo(t *testing.T) {
	w, a, env := newLyncTest(t)
	r, err := runLyncStep(t, env, a.EnsureLyncEdgeFederation, lyncTarget)
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Updated || len(r.Undo) != 1 || r.Undo[0].Kind != UndoLyncSetAllowFederatedUsers || r.Undo[0].Enabled || r.Undo[0].System != SystemLync {
		t.Fatalf("%+v", r)
	}
	if r2, _ := runLyncStep(t, env, a.EnsureLyncEdgeFederation, lyncTarget); r2.Outcome != Unchanged || len(r2.Undo) != 0 {
		t.Fatalf("second run %+v", r2)
	}
	if _, err := env.ExecuteActivity(a.UndoLync, LyncUndoInput{Target: lyncTarget, Record: r.Undo[0]}); err != nil {
		t.Fatal(err)
	}
	w.View(lyncTenant, func(t2 *sim.Tenant) {
		if t2.Lync.AllowFederatedUsers {
			t.Fatal("undo left AllowFederatedUsers true")
		}
	})
}

// TestEnsureLyncHostingProvider covers create, re-create and set in place,
// each followed by its undo, which must leave the provider exactly as found.
func TestEnsureLyncHostingProvider(t *testing.T) {
	want := lyncDesired(t, "global")
	for _, c := range []struct {
		name    string
		before  *sim.HostingProvider
		outcome Outcome
		undo    string
		detail  string
		writes  int64
	}{
		{"absent", nil, Created, UndoLyncRemoveHostingProvider, "created", 1},
		{"wrong proxy", &sim.HostingProvider{Identity: "exchange online", Enabled: false, EnabledSharedAddressSpace: true, HostsOCSUsers: true,
			ProxyFqdn: "exap.um.partner.outlook.cn", IsLocal: true, VerificationLevel: "AlwaysUnverifiable"}, Updated, UndoLyncRestoreHostingProvider, "removed and re-created", 2},
		{"wrong settings", &sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: false, HostsOCSUsers: false,
			ProxyFqdn: "exap.um.outlook.com", IsLocal: true, VerificationLevel: "AlwaysVerifiable"}, Updated, UndoLyncRestoreHostingProvider,
			"set in place: EnabledSharedAddressSpace $False → $True, IsLocal $True → $False, VerificationLevel AlwaysVerifiable → UseSourceVerification", 1},
		{"as documented", &sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true,
			ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "UseSourceVerification"}, Unchanged, "", "already has the documented settings", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, a, env := newLyncTest(t)
			lyncSetProvider(w, c.before)
			before, _ := lyncProviders(w)
			r, err := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: want})
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != c.outcome || !strings.Contains(r.Detail, c.detail) {
				t.Fatalf("%s %q", r.Outcome, r.Detail)
			}
			if got := w.Stats().ByTenant[lyncTenant].Writes; got != c.writes {
				t.Errorf("%d writes, want %d", got, c.writes)
			}
			cms, _ := lyncProviders(w)
			if len(cms) != 1 || !lyncProviderFromSim(cms[0]).Equal(want) {
				t.Errorf("after ensure: %+v", cms)
			}
			if c.undo == "" {
				if len(r.Undo) != 0 {
					t.Fatalf("undo %+v", r.Undo)
				}
				return
			}
			if len(r.Undo) != 1 || r.Undo[0].Kind != c.undo {
				t.Fatalf("undo %+v", r.Undo)
			}
			for i := 0; i < 2; i++ { // undo is idempotent
				if _, err := env.ExecuteActivity(a.UndoLync, LyncUndoInput{Target: lyncTarget, Record: r.Undo[0]}); err != nil {
					t.Fatal(err)
				}
			}
			if after, _ := lyncProviders(w); !slices.Equal(after, before) {
				t.Fatalf("undo left %+v, want %+v", after, before)
			}
		})
	}
}

// TestEnsureLyncHostingProviderRemembersAcrossAttempts: an earlier attempt
// removed the provider with the old ProxyFqdn and re-created it, then its
// worker died before it could report. The retry finds the provider as
// wanted, and still returns the old one for compensation.
func TestEnsureLyncHostingProviderRemembersAcrossAttempts(t *testing.T) {
	w, a, env := newLyncTest(t)
	want := lyncDesired(t, "global")
	lyncSetProvider(w, &sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true,
		ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "UseSourceVerification"})
	old := want
	old.ProxyFqdn, old.VerificationLevel = "exap.um.partner.outlook.cn", "AlwaysVerifiable"
	env.SetHeartbeatDetails(lyncBefore[*LyncHostingProvider]{Seen: true, Value: &old})
	r, err := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: want})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Updated || len(r.Undo) != 1 || r.Undo[0].Kind != UndoLyncRestoreHostingProvider || *r.Undo[0].Provider != old ||
		!strings.Contains(r.Detail, "changed by an earlier attempt") {
		t.Fatalf("%+v", r)
	}
	// An earlier attempt that created it: the undo removes it.
	env.SetHeartbeatDetails(lyncBefore[*LyncHostingProvider]{Seen: true})
	if r, _ := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: want}); r.Outcome != Created || r.Undo[0].Kind != UndoLyncRemoveHostingProvider {
		t.Fatalf("%+v", r)
	}
}

// TestEnsureLyncHostingProviderPutsBack: when re-creating fails after the
// removal, the old provider is put back and the error is retryable.
func TestEnsureLyncHostingProviderPutsBack(t *testing.T) {
	w, a, env := newLyncTest(t)
	old := sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, ProxyFqdn: "exap.um.partner.outlook.cn", VerificationLevel: "UseSourceVerification"}
	lyncSetProvider(w, &old)
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "New-CsHostingProvider", Kind: sim.FaultServer, FailFirstN: 1}})
	_, err := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: lyncDesired(t, "global")})
	if typ, nonRetryable := lyncErrType(err); err == nil || nonRetryable || !strings.Contains(err.Error(), "the previous provider was put back") {
		t.Fatalf("%v (%s)", err, typ)
	}
	if cms, _ := lyncProviders(w); len(cms) != 1 || cms[0] != old {
		t.Fatalf("after the failed re-create: %+v", cms)
	}
	// The failure carries the provider it started from, for compensation.
	if rec, ok := LyncUndoFromError(err); !ok || rec.Kind != UndoLyncRestoreHostingProvider || rec.Provider == nil || rec.Provider.ProxyFqdn != old.ProxyFqdn {
		t.Fatalf("undo from error: %+v %v", rec, ok)
	}
}

func TestWaitLyncReplication(t *testing.T) {
	w, a, env := newLyncTest(t)
	lyncSetProvider(w, nil)
	// A write puts fe01 two reads behind.
	if _, err := (sim.DirectRunner{W: w, Side: sim.Lync, Tenant: lyncTenant}).Run(context.Background(),
		cmd("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", true)); err != nil {
		t.Fatal(err)
	}
	r, err := runLyncStep(t, env, a.WaitLyncReplication, LyncReplicationInput{Target: lyncTarget, Timeout: 5e9, PollInterval: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	if r.Polls != 3 || len(r.Replicas) != 2 || !r.Replicas[0].UpToDate {
		t.Fatalf("%+v", r)
	}

	// fe01 never catches up: the bound ends the wait with an error naming it.
	w.Update(lyncTenant, func(t *sim.Tenant) { t.Lync.Replicas[0].LagChecks = -1 })
	_, _ = (sim.DirectRunner{W: w, Side: sim.Lync, Tenant: lyncTenant}).Run(context.Background(), cmd("Set-CsAccessEdgeConfiguration", "AllowFederatedUsers", false))
	_, err = runLyncStep(t, env, a.WaitLyncReplication, LyncReplicationInput{Target: lyncTarget, Timeout: 50e6, PollInterval: 5e6})
	typ, nonRetryable := lyncErrType(err)
	if typ != ErrReplicationLagging || !nonRetryable || !strings.Contains(err.Error(), "fe01.contoso.com") || strings.Contains(err.Error(), "edge01") {
		t.Fatalf("%v (%s, non-retryable %v)", err, typ, nonRetryable)
	}
}

func TestConfirmLyncEdgeProvider(t *testing.T) {
	w, a, env := newLyncTest(t)
	want := lyncDesired(t, "global")
	in := LyncProviderInput{Target: lyncTarget, Desired: want}
	if _, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err == nil || !strings.Contains(err.Error(), "no \"Exchange Online\" provider yet") {
		t.Fatalf("empty edge: %v", err)
	} else if typ, nonRetryable := lyncErrType(err); typ != ErrEdgeNotUpdated || nonRetryable {
		t.Fatalf("%s %v", typ, nonRetryable)
	}
	w.Update(lyncTenant, func(t *sim.Tenant) {
		t.Lync.EdgeLocalStore = []*sim.HostingProvider{{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true,
			ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "AlwaysVerifiable"}}
		t.Lync.Replicas[0].UpToDate, t.Lync.Replicas[1].UpToDate = false, true // the Edge keeps its copy
	})
	if _, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err == nil || !strings.Contains(err.Error(), "VerificationLevel AlwaysVerifiable → UseSourceVerification") {
		t.Fatalf("stale edge: %v", err)
	}
	w.Update(lyncTenant, func(t *sim.Tenant) { t.Lync.EdgeLocalStore[0].VerificationLevel = "UseSourceVerification" })
	if r, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err != nil || r.Outcome != Unchanged {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestCheckLyncExternalAccess(t *testing.T) {
	w, a, env := newLyncTest(t)
	r, err := runLyncStep(t, env, a.CheckLyncExternalAccess, lyncTarget)
	if err != nil || len(r.Warnings) != 0 || !slices.Equal(r.Allowing, []string{"Tag:RemoteUsers"}) {
		t.Fatalf("%+v %v", r, err)
	}
	w.Update(lyncTenant, func(t *sim.Tenant) { t.Lync.ExternalAccessPolicies[1].EnableOutsideAccess = false })
	r, err = runLyncStep(t, env, a.CheckLyncExternalAccess, lyncTarget)
	if err != nil || len(r.Warnings) != 1 || len(r.Allowing) != 0 || !strings.Contains(r.Warnings[0], "EnableOutsideAccess") {
		t.Fatalf("%+v %v", r, err)
	}
	if got := w.Stats().ByTenant[lyncTenant].Writes; got != 0 {
		t.Fatalf("a read-only check wrote %d times", got)
	}
}

// TestLyncCmdletsAreAllowed: the PowerShell host refuses cmdlets outside
// the allow-list; every cmdlet these activities run must be on it.
func TestLyncCmdletsAreAllowed(t *testing.T) {
	for _, c := range []string{"Get-CsAccessEdgeConfiguration", "Set-CsAccessEdgeConfiguration", "Get-CsHostingProvider", "New-CsHostingProvider",
		"Set-CsHostingProvider", "Remove-CsHostingProvider", "Get-CsManagementStoreReplicationStatus", "Get-CsExternalAccessPolicy"} {
		if !exchange.Allowed(c) {
			t.Errorf("%s is not allowed", c)
		}
	}
	for _, c := range lyncDiscovery {
		if !exchange.Allowed(c.Cmdlet) {
			t.Errorf("%s is not allowed", c.Cmdlet)
		}
	}
}
