package activities

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

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
	upToDate := []LyncReplica{{Fqdn: "fe01", UpToDate: true}, {Fqdn: "edge01", UpToDate: false}}
	for _, c := range []struct {
		name       string
		o          LyncObserved
		fed, hp    plan.Change
		reason     string
		warnings   int
		edgeDetail string
	}{
		{"fresh", LyncObserved{Replicas: upToDate}, plan.ChangeUpdate, plan.ChangeCreate, "no \"Exchange Online\"", 1, "fe01: up to date edge01: not up to date"},
		{"converged", LyncObserved{AllowFederatedUsers: true, Provider: &want, Replicas: upToDate,
			ExternalAccess: []LyncExternalAccessPolicy{{Identity: "Global", EnableOutsideAccess: true}}}, plan.ChangeNone, plan.ChangeNone, "already has the documented settings", 0, "fe01: up to date"},
		{"wrong proxy", LyncObserved{AllowFederatedUsers: true, Provider: &wrongProxy,
			ExternalAccess: []LyncExternalAccessPolicy{{Identity: "Global", EnableOutsideAccess: true}}}, plan.ChangeNone, plan.ChangeUpdate, "removed and re-created", 0, ""},
		{"wrong level", LyncObserved{AllowFederatedUsers: true, Provider: &wrongLevel,
			ExternalAccess: []LyncExternalAccessPolicy{{Identity: "Global", EnableOutsideAccess: false}, {Identity: "Tag:Remote", EnableOutsideAccess: true}}}, plan.ChangeNone, plan.ChangeUpdate,
			"Enabled $False → $True, VerificationLevel AlwaysVerifiable → UseSourceVerification", 0, ""},
		{"another provider on the same proxy", LyncObserved{AllowFederatedUsers: true, OtherProviders: []LyncHostingProvider{other},
			ExternalAccess: []LyncExternalAccessPolicy{{Identity: "Global", EnableOutsideAccess: true}}}, plan.ChangeNone, plan.ChangeCreate, "no \"Exchange Online\"", 1, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			acts, warnings := BuildLyncPlan(c.o, want, nil)
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
			if !strings.Contains(strings.Join(acts[3].Details, " "), c.edgeDetail) || !strings.Contains(acts[3].Reason, "every Central Management store replica") ||
				strings.Contains(acts[3].Reason, "LocalStore") {
				t.Errorf("edge step %q %q", acts[3].Reason, acts[3].Details)
			}
			for _, a := range acts[2:] {
				if a.Change != plan.ChangeCheck {
					t.Errorf("%s: %s", a.Step, a.Change)
				}
			}
		})
	}
	// Named Edge Servers: the plan checks those replicas only.
	acts, _ := BuildLyncPlan(LyncObserved{Replicas: upToDate}, want, []string{"EDGE01"})
	if a := acts[3]; !strings.Contains(a.Reason, "-ReplicaFqdn") || !strings.Contains(a.Reason, "EDGE01") || strings.Join(a.Details, " ") != "now: edge01: not up to date" {
		t.Errorf("named edge: %q %q", a.Reason, a.Details)
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
	if o.AllowFederatedUsers || o.Provider == nil || o.Provider.VerificationLevel != "AlwaysVerifiable" ||
		len(o.Replicas) != 2 || o.Replicas[0].LastUpdateCreation.IsZero() || len(o.ExternalAccess) != 2 || !o.ExternalAccess[1].EnableOutsideAccess {
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
			// A write comes with the replication status read just before it.
			if (len(r.Baseline) == 2) != (c.writes > 0) {
				t.Errorf("baseline %+v after %d writes", r.Baseline, c.writes)
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
	// The earlier attempt read the replication status before it wrote:
	// that, not a read taken after the write, is the baseline.
	before := []LyncReplica{{Fqdn: "fe01.contoso.com", UpToDate: true, LastUpdateCreation: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}}
	env.SetHeartbeatDetails(lyncBefore[*LyncHostingProvider]{Seen: true, Value: &old, Baseline: before})
	r, err := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: want})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Updated || len(r.Undo) != 1 || r.Undo[0].Kind != UndoLyncRestoreHostingProvider || *r.Undo[0].Provider != old ||
		!strings.Contains(r.Detail, "changed by an earlier attempt") || !slices.Equal(r.Baseline, before) {
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

// lyncEdgeWorld marks edge01 as the Edge Server's replica and sets the
// replicas' lags (-1: never applies a snapshot) and the Master
// Replicator's packaging delay.
func lyncEdgeWorld(t *testing.T, feLag, edgeLag, snapshotDelay int) (*sim.World, *Lync, *testsuite.TestActivityEnvironment) {
	t.Helper()
	w, a, env := newLyncTest(t)
	w.Update(lyncTenant, func(t *sim.Tenant) {
		t.Lync.Replicas[0].LagChecks = feLag
		t.Lync.Replicas[1].Role, t.Lync.Replicas[1].LagChecks = sim.LyncRoleEdge, edgeLag
		t.Lync.SnapshotDelayChecks = snapshotDelay
	})
	return w, a, env
}

func lyncStatusReads(t *testing.T, w *sim.World, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := (sim.DirectRunner{W: w, Side: sim.Lync, Tenant: lyncTenant}).Run(context.Background(), cmd("Get-CsManagementStoreReplicationStatus")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfirmLyncEdgeProviderNotThroughLocalStore follows
// shared/reference/hybrid-facts.md (e), rows "check on the Edge" and
// "check on an internal server": the site's shell runs on an internal
// server, where -LocalStore shows that server's replica. Here fe01 has the
// new provider and the Edge never receives it: the old check (-LocalStore
// through the site's shell) would confirm; the Edge step must not.
func TestConfirmLyncEdgeProviderNotThroughLocalStore(t *testing.T) {
	w, a, env := lyncEdgeWorld(t, 0, -1, 0)
	want := lyncDesired(t, "global")
	ensured, err := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: want})
	if err != nil || ensured.Outcome != Created || len(ensured.Baseline) != 2 {
		t.Fatalf("%+v %v", ensured, err)
	}
	lyncStatusReads(t, w, 3)
	rows, err := (sim.DirectRunner{W: w, Side: sim.Lync, Tenant: lyncTenant}).Run(context.Background(), cmd("Get-CsHostingProvider", "LocalStore", true))
	if p, _ := lyncFindProvider(rows, want.Identity); err != nil || p == nil || !p.Equal(want) {
		t.Fatalf("fe01's local store should hold the provider: %v %v", rows, err)
	}
	if _, edge := lyncProviders(w); len(edge) != 0 {
		t.Fatalf("the Edge's store: %+v", edge)
	}
	for _, named := range [][]string{nil, {"EDGE01.contoso.com."}} {
		in := LyncProviderInput{Target: lyncTarget, Desired: want, Baseline: ensured.Baseline, EdgeFqdns: named}
		_, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in)
		typ, nonRetryable := lyncErrType(err)
		if typ != ErrEdgeNotUpdated || nonRetryable || !strings.Contains(err.Error(), "edge01.contoso.com has not applied the latest snapshot") ||
			strings.Contains(err.Error(), "fe01") {
			t.Fatalf("edge %q: %v (%s)", named, err, typ)
		}
	}
	// The Edge's agent recovers: it applies the snapshot and the step confirms.
	w.Update(lyncTenant, func(t *sim.Tenant) { t.Lync.Replicas[1].LagChecks = 0 })
	lyncStatusReads(t, w, 1)
	r, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, LyncProviderInput{Target: lyncTarget, Desired: want, Baseline: ensured.Baseline, EdgeFqdns: []string{"edge01.contoso.com"}})
	if err != nil || r.Outcome != Unchanged || !strings.Contains(r.Detail, "edge01.contoso.com: UpToDate with a snapshot packaged after the provider was written") || len(r.Replicas) != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, edge := lyncProviders(w); len(edge) != 1 || !lyncProviderFromSim(edge[0]).Equal(want) {
		t.Fatalf("confirmed, but the Edge's store holds %+v", edge)
	}
}

// TestConfirmLyncEdgeProviderWaitsForTheSnapshot follows
// shared/reference/hybrid-facts.md (e), row "check on an internal server"
// (UpToDate and LastUpdateCreation per replica): until the Master
// Replicator packages the change every replica still reports the previous
// snapshot as up to date. UpToDate alone would confirm a change no replica
// has; the step wants a snapshot created after the one each replica had
// before the write.
func TestConfirmLyncEdgeProviderWaitsForTheSnapshot(t *testing.T) {
	w, a, env := lyncEdgeWorld(t, 0, 1, 2)
	want := lyncDesired(t, "global")
	ensured, err := runLyncStep(t, env, a.EnsureLyncHostingProvider, LyncProviderInput{Target: lyncTarget, Desired: want})
	if err != nil || len(ensured.Baseline) != 2 {
		t.Fatalf("%+v %v", ensured, err)
	}
	in := LyncProviderInput{Target: lyncTarget, Desired: want, Baseline: ensured.Baseline}
	// Attempt 1 (one status read): not packaged, all "up to date".
	_, err = runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in)
	if typ, _ := lyncErrType(err); typ != ErrEdgeNotUpdated || !strings.Contains(err.Error(), "packaged before the provider was written") {
		t.Fatalf("attempt 1: %v", err)
	}
	// Attempt 2 packages it, attempt 3 sees fe01 apply it, attempt 4 the Edge.
	for i, still := range []string{"fe01.contoso.com has not applied", "edge01.contoso.com has not applied"} {
		if _, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err == nil || !strings.Contains(err.Error(), still) {
			t.Fatalf("attempt %d: %v", i+2, err)
		}
	}
	if r, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err != nil || len(r.Replicas) != 2 {
		t.Fatalf("attempt 4: %+v %v", r, err)
	}
	if _, edge := lyncProviders(w); len(edge) != 1 {
		t.Fatalf("confirmed, but the Edge's store holds %+v", edge)
	}
	// Without a write in this run there is no baseline: UpToDate is enough.
	if r, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, LyncProviderInput{Target: lyncTarget, Desired: want}); err != nil ||
		!strings.Contains(r.Detail, "already in place before this run") {
		t.Fatalf("no baseline: %+v %v", r, err)
	}
}

func TestConfirmLyncEdgeProviderRefuses(t *testing.T) {
	w, a, env := lyncEdgeWorld(t, 0, 0, 0)
	want := lyncDesired(t, "global")
	in := LyncProviderInput{Target: lyncTarget, Desired: want}
	// Nothing in the Central Management store: nothing can replicate.
	if _, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err == nil {
		t.Fatal("confirmed a provider that does not exist")
	} else if typ, nonRetryable := lyncErrType(err); typ != ErrConflict || !nonRetryable || !strings.Contains(err.Error(), "has no \"Exchange Online\" provider") {
		t.Fatalf("%v (%s %v)", err, typ, nonRetryable)
	}
	// Someone changed it after the hosting-provider step.
	lyncSetProvider(w, &sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "AlwaysVerifiable"})
	if _, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in); err == nil || !strings.Contains(err.Error(), "VerificationLevel AlwaysVerifiable → UseSourceVerification") {
		t.Fatalf("changed provider: %v", err)
	}
	// Named Edge Servers must be replicas of this deployment, and FQDNs.
	lyncSetProvider(w, &sim.HostingProvider{Identity: "Exchange Online", Enabled: true, EnabledSharedAddressSpace: true, ProxyFqdn: "exap.um.outlook.com", VerificationLevel: "UseSourceVerification"})
	before := w.Stats().ByTenant[lyncTenant].ShellRoundTrips
	for edge, msg := range map[string]string{"edge02.contoso.com": "edge02.contoso.com is not a replica of this deployment", "https://edge01/": "edge_fqdns"} {
		in.EdgeFqdns = []string{edge}
		_, err := runLyncStep(t, env, a.ConfirmLyncEdgeProvider, in)
		if typ, nonRetryable := lyncErrType(err); typ != ErrInvalidInput || !nonRetryable || !strings.Contains(err.Error(), msg) {
			t.Fatalf("%s: %v", edge, err)
		}
	}
	if n := w.Stats().ByTenant[lyncTenant].ShellRoundTrips - before; n != 2 { // the malformed one never reaches the shell
		t.Fatalf("%d round trips", n)
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
		// -LocalStore would read the site server's replica, not the Edge's.
		if _, ok := c.Parameters["LocalStore"]; ok {
			t.Errorf("discovery sends %s -LocalStore", c.Cmdlet)
		}
	}
}
