package activities

import (
	"slices"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Undoing a step's change to a list-valued property removes what the step
// added and puts back what it removed, against the property as it is at
// undo time: a value someone else added after the step stays, and a
// value someone else removed stays removed. Covered: an
// IntraOrganizationConnector's TargetAddressDomains on both sides, the
// evoSTS auth server's DomainName, and the dedicated application's
// requiredResourceAccess (the lists the product edits in place; keys and
// SPNs are taken back by thumbprint and name in plan.UndoAdd/UndoSPNs).
func TestUndoLeavesWhatOthersChangedMeanwhile(t *testing.T) {
	const later, gone = "added-later.contoso.ca", "legacy.contoso.ca"
	cases := []struct {
		name   string
		step   plan.Step
		mutate func(tn *sim.Tenant)
		// list reads the property; added says what the step must have added.
		list    func(tn *sim.Tenant) []string
		added   []string
		between func(tn *sim.Tenant) // someone else: adds later, removes gone
		want    []string             // after the undo
	}{
		{name: "on-prem connector's TargetAddressDomains", step: plan.StepIOCOnPrem,
			mutate: func(tn *sim.Tenant) {
				c := tn.OnPrem.IntraOrganizationConnectors[0]
				c.Name, c.TargetAddressDomains = plan.OnPremIOCName, []string{gone}
			},
			list: func(tn *sim.Tenant) []string {
				return ioc(tn.OnPrem.IntraOrganizationConnectors, plan.OnPremIOCName).TargetAddressDomains
			},
			added: []string{hcwRouting},
			between: func(tn *sim.Tenant) {
				c := ioc(tn.OnPrem.IntraOrganizationConnectors, plan.OnPremIOCName)
				c.TargetAddressDomains = append(slices.DeleteFunc(c.TargetAddressDomains, func(d string) bool { return d == gone }), "added-later.mail.onmicrosoft.com")
			},
			want: []string{"added-later.mail.onmicrosoft.com"}},
		{name: "Exchange Online connector's TargetAddressDomains", step: plan.StepIOCOnline,
			mutate: func(tn *sim.Tenant) {
				tn.OnPrem.AcceptedDomains = append(tn.OnPrem.AcceptedDomains, sim.AcceptedDomain{DomainName: "fabrikam.ca"})
				tn.Entra.Domains = append(tn.Entra.Domains, sim.Domain{ID: "fabrikam.ca", IsVerified: true})
				c := tn.Online.IntraOrganizationConnectors[0]
				c.TargetAddressDomains = append(c.TargetAddressDomains, gone)
			},
			list: func(tn *sim.Tenant) []string {
				return ioc(tn.Online.IntraOrganizationConnectors, "HybridIOC - "+hcwG2).TargetAddressDomains
			},
			added: []string{"fabrikam.ca"},
			between: func(tn *sim.Tenant) {
				c := ioc(tn.Online.IntraOrganizationConnectors, "HybridIOC - "+hcwG2)
				c.TargetAddressDomains = append(slices.DeleteFunc(c.TargetAddressDomains, func(d string) bool { return d == gone }), later)
			},
			want: []string{"contoso.ca", later}},
		{name: "evoSTS auth server's DomainName", step: plan.StepOnPremAuthServerApp,
			mutate: func(tn *sim.Tenant) { tn.OnPrem.AuthServers[1].DomainName = []string{gone} },
			list:   func(tn *sim.Tenant) []string { return authServer(tn, "EvoSts - "+hcwG1).DomainName },
			added:  []string{"contoso.ca", hcwRouting},
			between: func(tn *sim.Tenant) {
				s := authServer(tn, "EvoSts - "+hcwG1)
				s.DomainName = append(slices.DeleteFunc(s.DomainName, func(d string) bool { return d == gone }), later)
			},
			want: []string{later}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAgreement(t, c.mutate)
			if act := a.action(c.step); act.Change != plan.ChangeUpdate {
				t.Fatalf("plan: %s (%s); want an update", act.Change, act.Reason)
			}
			a.runUpTo(c.step)
			before := c.list(a.tenant())
			res, err := a.run(c.step)
			if err != nil || res.Outcome != Updated {
				t.Fatalf("step: %+v %v", res, err)
			}
			after := c.list(a.tenant())
			if !sameFold(after, append(slices.Clone(before), c.added...)) {
				t.Fatalf("the step made %q of %q; want %q added", after, before, c.added)
			}
			a.w.Update(hcwTenant, c.between)
			a.undo(res)
			if got := c.list(a.tenant()); !slices.Equal(got, c.want) {
				t.Errorf("after the undo: %q; want %q (the step's additions gone, someone else's changes kept)", got, c.want)
			}
		})
	}
}

// The same for the dedicated application's requiredResourceAccess, on an
// application Microsoft's tools made (by display name, no uniqueName)
// that lacks full_access_as_app: it is adopted, not duplicated; the step
// adds the permission; someone then grants the application another
// permission and drops one it had; the undo takes back full_access_as_app
// only.
func TestUndoOfAddedFullAccessLeavesOtherPermissions(t *testing.T) {
	e := newEntraTest(t)
	const (
		graphApp      = "00000003-0000-0000-c000-000000000000"
		domainRead    = "dbb9058a-0e50-45d7-ae91-66909b5d4664"
		appReadWrite  = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"
		mailboxRoleID = "dc50a0fb-09a3-484d-be87-e023b12c6440" // Exchange.ManageAsApp
	)
	e.w.Update(entraSmall1, func(tn *sim.Tenant) {
		tn.Entra.Applications = append(tn.Entra.Applications, &sim.Application{ID: "7d0c5f0e-0000-4000-8000-00000000a001", AppID: "7d0c5f0e-0000-4000-8000-00000000a002",
			DisplayName: entraApp, SignInAudience: "AzureADMyOrg", RequiredResourceAccess: []sim.RequiredResourceAccess{
				{ResourceAppID: graphApp, ResourceAccess: []sim.ResourceAccess{{ID: domainRead, Type: "Role"}}},
				{ResourceAppID: cloud.FirstPartyAppID, ResourceAccess: []sim.ResourceAccess{{ID: mailboxRoleID, Type: "Role"}}},
			}})
	})
	perms := func() []string {
		var out []string
		n := 0
		e.w.View(entraSmall1, func(tn *sim.Tenant) {
			for _, a := range tn.Entra.Applications {
				if a.DisplayName != entraApp {
					continue
				}
				n++
				if a.UniqueName != "" {
					t.Errorf("the adopted application was given uniqueName %q", a.UniqueName)
				}
				for _, r := range a.RequiredResourceAccess {
					for _, x := range r.ResourceAccess {
						out = append(out, r.ResourceAppID+"/"+x.ID)
					}
				}
			}
		})
		if n != 1 {
			t.Fatalf("%d applications named %s; want the one Microsoft's tools made", n, entraApp)
		}
		return out
	}
	res := e.step(t, e.a.EnsureDedicatedApplication, DedicatedAppInput{Target: e.target(t, entraSmall1), Name: entraApp})
	if res.Outcome != Updated || len(res.Undo) != 1 || res.Undo[0].Kind != UndoRestoreRRA {
		t.Fatalf("step: %+v; want full_access_as_app added with its undo", res)
	}
	if got := perms(); !slices.Contains(got, cloud.FirstPartyAppID+"/"+plan.FullAccessAsAppRoleID) || len(got) != 3 {
		t.Fatalf("after the step: %q", got)
	}
	// Someone else grants Application.ReadWrite.All and drops Domain.Read.All.
	e.w.Update(entraSmall1, func(tn *sim.Tenant) {
		for _, a := range tn.Entra.Applications {
			if a.DisplayName == entraApp {
				a.RequiredResourceAccess[0].ResourceAccess = []sim.ResourceAccess{{ID: appReadWrite, Type: "Role"}}
			}
		}
	})
	if _, err := e.env.ExecuteActivity(e.a.UndoEntra, UndoInput{Target: e.target(t, entraSmall1), Record: res.Undo[0]}); err != nil {
		t.Fatal(err)
	}
	got, want := perms(), []string{graphApp + "/" + appReadWrite, cloud.FirstPartyAppID + "/" + mailboxRoleID}
	if !slices.Equal(got, want) {
		t.Errorf("after the undo: %s; want %s (full_access_as_app gone, someone else's grant kept, the dropped one not back)", strings.Join(got, " "), strings.Join(want, " "))
	}
}
