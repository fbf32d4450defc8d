package activities

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/simtest"
	"github.com/hybridflow/hybridflow/steps"
)

// The organisation of configs/sim/hcw-worldwide.yaml: worldwide, as the
// Hybrid Configuration Wizard leaves it (shared/reference/hybrid-facts.md
// (a)).
const (
	hcwTenant  = "e5923069-4c1f-4b8e-9a3d-2f6b7c8d9e01"
	hcwG1      = "177cd94d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
	hcwG2      = "a3e87a2d-5b6c-4d7e-8f90-1a2b3c4d5e6f"
	hcwRouting = "contoso.mail.onmicrosoft.com"
	otherRealm = "0f0f0f0f-0000-4000-8000-000000000000"
)

// agreement runs one tenant of a world through discovery and the plan,
// then through the activities in the plan's order, as the setup workflow
// does, against the simulator.
type agreement struct {
	t   *testing.T
	w   *sim.World
	env *testsuite.TestActivityEnvironment
	tgt Target
	out PlanOutput
	// consent and appID as the workflow would know them.
	consent bool
	appID   string
}

func newAgreement(t *testing.T, mutate func(tn *sim.Tenant)) *agreement {
	t.Helper()
	w, err := sim.Load(filepath.Join("..", "configs", "sim", "hcw-worldwide.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil && !w.Update(hcwTenant, mutate) {
		t.Fatal("no tenant")
	}
	be := simtest.Backend(t, w, backend.SimOptions{DirectShell: true})
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&OnPrem{Hosts: be})
	env.RegisterActivity(&Online{Clients: be})
	env.RegisterActivity(&Entra{Clients: be, Now: w.Now})
	a := &agreement{t: t, w: w, env: env, tgt: Target{TenantID: hcwTenant, Cloud: "global", Site: "site-1"}}
	a.plan()
	return a
}

func exec[T any](a *agreement, fn any, arg any) (T, error) {
	var out T
	v, err := a.env.ExecuteActivity(fn, arg)
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

// plan discovers the three systems and plans, as the workflow does.
func (a *agreement) plan() {
	a.t.Helper()
	a.planWith(false)
}

// planWith plans as a setup whose options ask (or not) for the reset of
// the first-party service principal's keys.
func (a *agreement) planWith(reset bool) {
	a.t.Helper()
	on, err := exec[plan.Observed](a, (&OnPrem{}).DiscoverOnPrem, a.tgt)
	if err != nil {
		a.t.Fatal(err)
	}
	ol, err := exec[plan.Observed](a, (&Online{}).DiscoverOnline, a.tgt)
	if err != nil {
		a.t.Fatal(err)
	}
	en, err := exec[plan.Observed](a, (&Entra{}).DiscoverEntra, EntraDiscoverInput{Target: a.tgt, DedicatedAppName: plan.DedicatedAppPrefix + on.OrganizationGUID})
	if err != nil {
		a.t.Fatal(err)
	}
	now := a.w.Now()
	facts := plan.TenantFacts{ID: hcwTenant, Cloud: "global", InitialDomain: "contoso.onmicrosoft.com"}
	a.out, err = PlanSetup(context.Background(), PlanInput{Tenant: facts, Observed: MergeObserved(on, ol, en, now), Now: now, ResetFirstPartyKeys: reset})
	if err != nil {
		a.t.Fatalf("plan: %v", err)
	}
	// The plan carries its step graph, so a running setup keeps it.
	if want := steps.Graph(a.out.Actions); !reflect.DeepEqual(a.out.After, want) {
		a.t.Fatalf("plan's step graph %v, want %v", a.out.After, want)
	}
	a.consent, a.appID = en.ConsentGranted, en.DedicatedApp.AppID
}

func (a *agreement) action(step plan.Step) plan.Action {
	for _, x := range a.out.Actions {
		if x.Step == step {
			return x
		}
	}
	a.t.Fatalf("no step %s", step)
	return plan.Action{}
}

// run executes one step's activities as the setup workflow maps them.
func (a *agreement) run(step plan.Step) (StepResult, error) {
	d, t := a.out.Desired, a.tgt
	var on OnPrem
	var ol Online
	var en Entra
	switch step {
	case plan.StepAuthServers:
		return exec[StepResult](a, on.EnsureAuthServers, AuthServersInput{Target: t, Servers: []plan.AuthServerSpec{d.ACS, d.EvoSTS}})
	case plan.StepPartnerApp:
		return exec[StepResult](a, on.EnablePartnerApplication, t)
	case plan.StepDedicatedApp:
		var all StepResult
		r, err := exec[StepResult](a, en.EnsureDedicatedApplication, DedicatedAppInput{Target: t, Name: d.DedicatedAppName})
		if err != nil {
			return all, err
		}
		all.Merge(r)
		a.appID = r.AppID
		for _, fn := range []any{en.EnsureDedicatedServicePrincipal, en.GrantDedicatedConsent} {
			if r, err = exec[StepResult](a, fn, AppIDInput{Target: t, AppID: a.appID}); err != nil {
				return all, err
			}
			all.Merge(r)
		}
		a.consent = true
		return all, nil
	case plan.StepKeys:
		return exec[StepResult](a, en.EnsureApplicationKeys, AppKeysInput{Target: t, AppID: a.appID, Name: d.DedicatedAppName, Keys: d.Keys})
	case plan.StepSPNs:
		return exec[StepResult](a, en.EnsureFirstPartyServicePrincipal, FirstPartyInput{Target: t, SPNs: d.SPNs})
	case plan.StepOnPremAuthServerApp:
		app := a.appID
		if app == "" {
			app = "aaaaaaaa-1111-4222-8333-444444444444" // the dedicated-app step did not run in this case
		}
		return exec[StepResult](a, on.SetAuthServerApplication, AuthServerAppInput{Target: t, EvoSTS: d.EvoSTS, AppID: app, Domains: d.AuthServerDomains})
	case plan.StepIOCOnPrem:
		return exec[StepResult](a, on.EnsureOnPremConnector, IOCInput{Target: t, Spec: d.OnPremIOC})
	case plan.StepIOCOnline:
		return exec[StepResult](a, ol.EnsureOnlineConnector, IOCInput{Target: t, Spec: d.OnlineIOC})
	case plan.StepSettingOverride:
		consent := a.consent
		return exec[StepResult](a, on.EnsureSettingOverride, SettingOverrideInput{Target: t, ConsentGranted: &consent, ConnectorsFirst: true})
	}
	a.t.Fatalf("no activity for %s in this test", step)
	return StepResult{}, nil
}

// runUpTo runs every step before target that the plan says writes, as the
// workflow would; a blocked earlier step is passed over, as an operator's
// skip would.
func (a *agreement) runUpTo(target plan.Step) {
	a.t.Helper()
	for _, x := range a.out.Actions {
		if x.Step == target {
			return
		}
		if !x.Change.Writes() {
			continue
		}
		if _, err := a.run(x.Step); err != nil {
			a.t.Fatalf("earlier step %s (%s): %v", x.Step, x.Change, err)
		}
	}
}

func (a *agreement) tenant() *sim.Tenant {
	var c *sim.Tenant
	a.w.View(hcwTenant, func(tn *sim.Tenant) { c = cloneTenant(a.t, tn) })
	return c
}

func cloneTenant(t *testing.T, tn *sim.Tenant) *sim.Tenant {
	t.Helper()
	w := (&sim.World{Tenants: []*sim.Tenant{tn}}).Clone()
	return w.Tenants[0]
}

func (a *agreement) writes() int64 {
	if c := a.w.Stats().ByTenant[hcwTenant]; c != nil {
		return c.Writes
	}
	return 0
}

// undo runs a result's undo records in reverse, as compensation does.
func (a *agreement) undo(res StepResult) {
	a.t.Helper()
	var on OnPrem
	var ol Online
	for i := len(res.Undo) - 1; i >= 0; i-- {
		u := res.Undo[i]
		fn := any(on.UndoOnPrem)
		if u.System == SystemOnline {
			fn = ol.UndoOnline
		}
		if _, err := a.env.ExecuteActivity(fn, UndoInput{Target: a.tgt, Record: u}); err != nil {
			a.t.Fatalf("undo %s %s: %v", u.Kind, u.Name, err)
		}
	}
}

var outcomeOf = map[plan.Change]Outcome{plan.ChangeNone: Unchanged, plan.ChangeCreate: Created, plan.ChangeUpdate: Updated}

func authServer(tn *sim.Tenant, name string) *sim.AuthServer {
	for _, s := range tn.OnPrem.AuthServers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func ioc(list []*sim.IntraOrgConnector, name string) *sim.IntraOrgConnector {
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestPlanAndActivitiesAgree: for each existing-object case, what the plan
// says a step will do (none, create, update, blocked) is exactly what the
// step's activity does against the simulator, after the earlier steps ran
// as the workflow runs them; a blocked step's activity refuses without
// writing, with a non-retryable error of the named type. After a step
// that wrote, a new plan finds the step done, and the step's undo records
// reverse only its own change (a change made by someone else in between
// stays). Objects follow shared/reference/hybrid-facts.md (a) (what the
// Hybrid Configuration Wizard builds) and (b) "Set-AuthServer" and
// "Setting override" (the rules of Microsoft's script).
func TestPlanAndActivitiesAgree(t *testing.T) {
	cases := []struct {
		name    string
		step    plan.Step
		mutate  func(tn *sim.Tenant)
		want    plan.Change
		errType string // blocked: the activity's error type
		// between runs after the step, before its undo: someone else's change.
		between func(tn *sim.Tenant)
		// check inspects the tenant after the step (and, with undone, after its undo).
		check func(t *testing.T, before, after *sim.Tenant, undone bool)
	}{
		{name: "the wizard's auth servers are adopted", step: plan.StepAuthServers, want: plan.ChangeNone},
		{name: "a disabled wizard evoSTS server is enabled", step: plan.StepAuthServers, want: plan.ChangeUpdate,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.AuthServers[1].Enabled = false },
			check: func(t *testing.T, _, after *sim.Tenant, undone bool) {
				if s := authServer(after, "EvoSts - "+hcwG1); s == nil || s.Enabled == undone || len(after.OnPrem.AuthServers) != 2 {
					t.Errorf("evoSTS %+v (undone %v), %d servers", s, undone, len(after.OnPrem.AuthServers))
				}
			}},
		{name: "our name on another tenant's ACS server is blocked", step: plan.StepAuthServers, want: plan.ChangeBlocked, errType: ErrConflict,
			mutate: func(tn *sim.Tenant) {
				acs := tn.OnPrem.AuthServers[0]
				acs.Name, acs.Realm = "WindowsAzureACS", otherRealm
				acs.AuthMetadataURL = cloud.MustLookup("global").ACSMetadataURL(otherRealm)
			}},
		{name: "no auth servers: both are created", step: plan.StepAuthServers, want: plan.ChangeCreate,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.AuthServers = nil },
			check: func(t *testing.T, _, after *sim.Tenant, undone bool) {
				if n := len(after.OnPrem.AuthServers); (n == 2) == undone {
					t.Errorf("%d auth servers (undone %v)", n, undone)
				}
			}},

		{name: "an enabled partner application is left", step: plan.StepPartnerApp, want: plan.ChangeNone},
		{name: "a disabled partner application is enabled", step: plan.StepPartnerApp, want: plan.ChangeUpdate,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.PartnerApplications[0].Enabled = false }},
		{name: "a missing partner application is refused", step: plan.StepPartnerApp, want: plan.ChangeBlocked, errType: ErrInvalidInput,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.PartnerApplications = nil }},

		{name: "the wizard's evoSTS server gets the app and the ACS server's domains", step: plan.StepOnPremAuthServerApp, want: plan.ChangeUpdate,
			between: func(tn *sim.Tenant) {
				s := authServer(tn, "EvoSts - "+hcwG1)
				s.DomainName = append(s.DomainName, "added-later.contoso.ca")
			},
			check: func(t *testing.T, before, after *sim.Tenant, undone bool) {
				acsB, acsA := authServer(before, "ACS - "+hcwG1), authServer(after, "ACS - "+hcwG1)
				if acsA.ApplicationIdentifier != "" || !reflect.DeepEqual(acsA, acsB) {
					t.Errorf("the ACS server changed: %+v", acsA)
				}
				evo := authServer(after, "EvoSts - "+hcwG1)
				want := []string{"contoso.ca", hcwRouting}
				if undone {
					if evo.ApplicationIdentifier != "" || !slices.Equal(evo.DomainName, []string{"added-later.contoso.ca"}) {
						t.Errorf("after undo: evoSTS %q %q; want no app and only the domain added by someone else", evo.ApplicationIdentifier, evo.DomainName)
					}
					return
				}
				if evo.ApplicationIdentifier == "" || !slices.Equal(evo.DomainName, want) {
					t.Errorf("evoSTS %q %q, want an app and %q", evo.ApplicationIdentifier, evo.DomainName, want)
				}
			}},
		{name: "an AzureAD server not named like evoSTS is refused", step: plan.StepOnPremAuthServerApp, want: plan.ChangeBlocked, errType: ErrConflict,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.AuthServers[1].Name = "Azure AD login" }},

		{name: "the wizard's on-prem connector is adopted", step: plan.StepIOCOnPrem, want: plan.ChangeNone},
		{name: "a disabled wizard connector is enabled", step: plan.StepIOCOnPrem, want: plan.ChangeUpdate,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.IntraOrganizationConnectors[0].Enabled = false },
			between: func(tn *sim.Tenant) {
				c := tn.OnPrem.IntraOrganizationConnectors[0]
				c.TargetAddressDomains = append(c.TargetAddressDomains, "added-later.mail.onmicrosoft.com")
			},
			check: func(t *testing.T, _, after *sim.Tenant, undone bool) {
				c := ioc(after.OnPrem.IntraOrganizationConnectors, "HybridIOC - "+hcwG1)
				if len(after.OnPrem.IntraOrganizationConnectors) != 1 || c == nil || c.Enabled == undone ||
					c.DiscoveryEndpoint != "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc" {
					t.Errorf("connectors %+v (undone %v)", after.OnPrem.IntraOrganizationConnectors, undone)
				}
				if undone && !slices.Equal(c.TargetAddressDomains, []string{hcwRouting, "added-later.mail.onmicrosoft.com"}) {
					t.Errorf("undo touched what it did not change: %q", c.TargetAddressDomains)
				}
			}},
		{name: "a connector at a foreign endpoint is refused", step: plan.StepIOCOnPrem, want: plan.ChangeBlocked, errType: ErrConflict,
			mutate: func(tn *sim.Tenant) {
				tn.OnPrem.IntraOrganizationConnectors[0].DiscoveryEndpoint = "https://relay.example.net/autodiscover/autodiscover.svc"
			}},
		{name: "no on-prem connector: ours is created", step: plan.StepIOCOnPrem, want: plan.ChangeCreate,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.IntraOrganizationConnectors = nil }},
		{name: "the wizard's Exchange Online connector is adopted", step: plan.StepIOCOnline, want: plan.ChangeNone},
		{name: "the wizard's Exchange Online connector gains a new domain", step: plan.StepIOCOnline, want: plan.ChangeUpdate,
			mutate: func(tn *sim.Tenant) {
				tn.OnPrem.AcceptedDomains = append(tn.OnPrem.AcceptedDomains, sim.AcceptedDomain{DomainName: "fabrikam.ca"})
				tn.Entra.Domains = append(tn.Entra.Domains, sim.Domain{ID: "fabrikam.ca", IsVerified: true})
			},
			check: func(t *testing.T, _, after *sim.Tenant, undone bool) {
				c := ioc(after.Online.IntraOrganizationConnectors, "HybridIOC - "+hcwG2)
				want := []string{"contoso.ca", "fabrikam.ca"}
				if undone {
					want = want[:1]
				}
				if len(after.Online.IntraOrganizationConnectors) != 1 || c == nil || !slices.Equal(c.TargetAddressDomains, want) {
					t.Errorf("connectors %+v, want HybridIOC - %s for %q", after.Online.IntraOrganizationConnectors, hcwG2, want)
				}
			}},

		{name: "the override is created once its preconditions hold", step: plan.StepSettingOverride, want: plan.ChangeCreate},
		{name: "an override under another name that enables the feature counts", step: plan.StepSettingOverride, want: plan.ChangeNone,
			mutate: func(tn *sim.Tenant) {
				tn.OnPrem.SettingOverrides = []*sim.SettingOverride{{Name: "Hybrid app by hand", Component: "Global", Section: plan.OverrideSection, Parameters: []string{"Enabled=true"}}}
				tn.OnPrem.VariantConfigRefreshed = true // made by hand and loaded since
			}},
		{name: "an override that disables the feature is a conflict", step: plan.StepSettingOverride, want: plan.ChangeBlocked, errType: ErrConflict,
			mutate: func(tn *sim.Tenant) {
				tn.OnPrem.SettingOverrides = []*sim.SettingOverride{{Name: "Keep first-party", Component: "Global", Section: plan.OverrideSection, Parameters: []string{"Enabled=false"}}}
			}},
		{name: "no override without a partner application", step: plan.StepSettingOverride, want: plan.ChangeBlocked, errType: ErrInvalidInput,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.PartnerApplications = nil }},
		{name: "no override without an enabled connector", step: plan.StepSettingOverride, want: plan.ChangeBlocked, errType: ErrInvalidInput,
			mutate: func(tn *sim.Tenant) {
				c := tn.OnPrem.IntraOrganizationConnectors[0]
				c.DiscoveryEndpoint, c.Enabled = "https://relay.example.net/autodiscover/autodiscover.svc", false
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAgreement(t, c.mutate)
			act := a.action(c.step)
			if act.Change != c.want {
				t.Fatalf("plan: %s %s (%s), want %s", c.step, act.Change, act.Reason, c.want)
			}
			a.runUpTo(c.step)
			before, w0 := a.tenant(), a.writes()
			res, err := a.run(c.step)
			if c.want == plan.ChangeBlocked {
				var app *temporal.ApplicationError
				if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != c.errType {
					t.Fatalf("activity: %v (%+v); want a non-retryable %s as the plan says: %s", err, res, c.errType, act.Reason)
				}
				if n := a.writes() - w0; n != 0 {
					t.Errorf("a blocked step wrote %d time(s)", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("activity failed where the plan says %s: %v", act.Change, err)
			}
			if res.Outcome != outcomeOf[c.want] {
				t.Fatalf("activity %s (%s); the plan said %s: %s", res.Outcome, res.Detail, act.Change, act.Reason)
			}
			if c.want == plan.ChangeNone && a.writes() != w0 {
				t.Errorf("the plan said none but the activity wrote %d time(s)", a.writes()-w0)
			}
			if c.check != nil {
				c.check(t, before, a.tenant(), false)
			}
			// Converged: planning again finds the step done.
			a.plan()
			if again := a.action(c.step); again.Change != plan.ChangeNone {
				t.Errorf("after the step the plan still says %s: %s", again.Change, again.Reason)
			}
			if len(res.Undo) == 0 {
				return
			}
			if c.between != nil {
				a.w.Update(hcwTenant, c.between)
			}
			a.undo(res)
			if c.check != nil {
				c.check(t, before, a.tenant(), true)
			}
		})
	}
}

// TestAgreementWorldIsTheWizards pins the world the cases start from to
// shared/reference/hybrid-facts.md (a), so that a drift of the YAML cannot
// quietly turn the cases into something else.
func TestAgreementWorldIsTheWizards(t *testing.T) {
	a := newAgreement(t, nil)
	tn := a.tenant()
	p := cloud.MustLookup("global")
	acs, evo := authServer(tn, "ACS - "+hcwG1), authServer(tn, "EvoSts - "+hcwG1)
	if acs == nil || evo == nil || acs.AuthMetadataURL != p.ACSMetadataURL(hcwTenant) || evo.AuthMetadataURL != p.EvoSTSMetadataURL("contoso.onmicrosoft.com") ||
		evo.Type != "AzureAD" || acs.Realm != hcwTenant || evo.Realm != hcwTenant || !slices.Equal(acs.DomainName, []string{"contoso.ca", hcwRouting}) {
		t.Errorf("auth servers %+v %+v", acs, evo)
	}
	on, ol := ioc(tn.OnPrem.IntraOrganizationConnectors, "HybridIOC - "+hcwG1), ioc(tn.Online.IntraOrganizationConnectors, "HybridIOC - "+hcwG2)
	if on == nil || on.DiscoveryEndpoint != "https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc" || !slices.Equal(on.TargetAddressDomains, []string{hcwRouting}) ||
		ol == nil || ol.DiscoveryEndpoint != "https://mail.contoso.ca/autodiscover/autodiscover.svc" || !slices.Equal(ol.TargetAddressDomains, []string{"contoso.ca"}) {
		t.Errorf("connectors %+v %+v", on, ol)
	}
	if !strings.EqualFold(tn.OnPrem.OrganizationGUID, hcwG2) || len(tn.OnPrem.PartnerApplications) != 1 || !tn.OnPrem.PartnerApplications[0].Enabled {
		t.Errorf("organization %s, partner applications %+v", tn.OnPrem.OrganizationGUID, tn.OnPrem.PartnerApplications)
	}
}

// TestSettingOverrideChecksConsentFirst: the override step refuses, with
// the first unmet precondition in the order of Microsoft's script
// (shared/reference/hybrid-facts.md (b) "Setting override": consent, the
// partner application, an enabled connector), when the workflow says the
// dedicated application has no consent (its step was skipped); an input
// recorded before consent was passed (nil) skips only that check.
func TestSettingOverrideChecksConsentFirst(t *testing.T) {
	no := false
	a := newAgreement(t, func(tn *sim.Tenant) { tn.OnPrem.PartnerApplications[0].Enabled = false })
	w0 := a.writes()
	_, err := exec[StepResult](a, (&OnPrem{}).EnsureSettingOverride, SettingOverrideInput{Target: a.tgt, ConsentGranted: &no, ConnectorsFirst: true})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrInvalidInput || !strings.Contains(app.Message(), "admin consent") {
		t.Fatalf("without consent: %v; want a non-retryable InvalidInput naming consent first", err)
	}
	_, err = exec[StepResult](a, (&OnPrem{}).EnsureSettingOverride, SettingOverrideInput{Target: a.tgt})
	if !errors.As(err, &app) || !strings.Contains(app.Message(), "partner application is not enabled") {
		t.Fatalf("consent unknown: %v; want the partner application named next", err)
	}
	if a.writes() != w0 {
		t.Errorf("a refused override step wrote %d time(s)", a.writes()-w0)
	}
	a.w.Update(hcwTenant, func(tn *sim.Tenant) { tn.OnPrem.PartnerApplications[0].Enabled = true })
	res, err := exec[StepResult](a, (&OnPrem{}).EnsureSettingOverride, SettingOverrideInput{Target: a.tgt})
	if err != nil || res.Outcome != Created {
		t.Fatalf("with every precondition: %+v %v", res, err)
	}
}

// TestSettingOverrideOldOrder: a setup planned when the override came
// before the connectors (its recorded plan keeps that order) reaches this
// step before any connector exists; it is not held up by the connector
// check, as it was not before, while a setup planned in today's order is.
func TestSettingOverrideOldOrder(t *testing.T) {
	for _, first := range []bool{false, true} {
		yes := true
		a := newAgreement(t, func(tn *sim.Tenant) { tn.OnPrem.IntraOrganizationConnectors = nil })
		res, err := exec[StepResult](a, (&OnPrem{}).EnsureSettingOverride, SettingOverrideInput{Target: a.tgt, ConsentGranted: &yes, ConnectorsFirst: first})
		if created := err == nil && res.Outcome == Created; created == first {
			t.Errorf("connectors first %v: %+v %v", first, res, err)
		}
	}
}
