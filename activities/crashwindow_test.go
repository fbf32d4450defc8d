package activities

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/simtest"
)

// crashRig runs one fresh tenant's steps (stepRig) for the crash-window
// cases, which discover again on demand: obs is what the last discovery
// saw, which a setup records before its first write.
type crashRig struct{ *stepRig }

func newCrashRig(t *testing.T) *crashRig { return &crashRig{newStepRig(t, nil)} }

// The objects the cases plant as someone else's, there before the run.
const (
	foreignSPN       = "https://legacy.fabrikam.example/"
	foreignConnector = "Fabrikam federation"
	foreignOverride  = "Fabrikam tuning"
	foreignForest    = "fabrikam.example"
	crashProxyURL    = "https://mail.small1.example.com/EWS/Exchange.asmx"
	crashForest      = "small1.example.com"
)

// foreignKey is another application's certificate, as a Graph key.
func foreignKey() sim.KeyCredential {
	c := sim.NewCertificate("Fabrikam HR Sync", 4242, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))
	return sim.KeyCredential{KeyID: "5b3f1c2e-0000-4000-8000-00000000f001", CustomKeyIdentifier: c.Thumbprint, DisplayName: "CN=Fabrikam HR Sync",
		Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER}
}

func keyTPs(ks []sim.KeyCredential) []string {
	var out []string
	for _, k := range ks {
		out = append(out, strings.ToUpper(k.CustomKeyIdentifier))
	}
	slices.Sort(out)
	return out
}

func (r *crashRig) dedicatedApp(tn *sim.Tenant) *sim.Application {
	for _, a := range tn.Entra.Applications {
		if a.DisplayName == r.d.DedicatedAppName {
			return a
		}
	}
	return nil
}

func (r *crashRig) firstParty(tn *sim.Tenant) *sim.ServicePrincipal {
	for _, sp := range tn.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			return sp
		}
	}
	return nil
}

func (r *crashRig) ourThumbprints() []string {
	var out []string
	for _, k := range r.d.Keys {
		out = append(out, strings.ToUpper(k.Thumbprint))
	}
	return out
}

// countFold counts the members of have that are in want, ignoring case
// and an https URL's trailing slash.
func countFold(have, want []string) int {
	n := 0
	norm := func(s string) string { return strings.TrimSuffix(strings.ToLower(s), "/") }
	for _, h := range have {
		if slices.ContainsFunc(want, func(w string) bool { return norm(w) == norm(h) }) {
			n++
		}
	}
	return n
}

// crashCase is one kind of object a setup step creates or adds.
type crashCase struct {
	name string
	// step and mode choose the Before the workflow would pass.
	step plan.Step
	mode plan.Mode
	// prepare plants what was there before the run (someone else's
	// objects, and prerequisites such as the dedicated application).
	prepare func(r *crashRig)
	// write is the request or cmdlet whose reply is lost.
	write sim.FaultRule
	// call is the step's activity and input.
	call func(r *crashRig, before *Before) (fn, in any)
	// kinds are the undo records the step must return.
	kinds []string
	// ours counts the run's objects in the tenant; others describes
	// everything else of the kind, which must come through untouched.
	ours   func(r *crashRig, tn *sim.Tenant) int
	others func(r *crashRig, tn *sim.Tenant) string
}

var crashCases = []crashCase{
	{
		name: "keys on the dedicated application", step: plan.StepKeys, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			// An application made earlier (by another run) that holds
			// someone else's key.
			r.exec(nil, (&Entra{}).EnsureDedicatedApplication, DedicatedAppInput{Target: r.tgt, Name: r.d.DedicatedAppName})
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				a := r.dedicatedApp(tn)
				a.KeyCredentials = append(a.KeyCredentials, foreignKey())
			})
		},
		write: sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "PATCH applications"},
		call: func(r *crashRig, before *Before) (any, any) {
			return (&Entra{}).EnsureApplicationKeys, AppKeysInput{Target: r.tgt, AppID: r.obs.DedicatedApp.AppID, Name: r.d.DedicatedAppName, Keys: r.d.Keys, Before: before}
		},
		kinds: []string{UndoRemoveKeys},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			return countFold(keyTPs(r.dedicatedApp(tn).KeyCredentials), r.ourThumbprints())
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			return strings.Join(slices.DeleteFunc(keyTPs(r.dedicatedApp(tn).KeyCredentials), func(tp string) bool { return countFold([]string{tp}, r.ourThumbprints()) > 0 }), ",")
		},
	},
	{
		name: "keys and SPNs on the first-party service principal", step: plan.StepKeys, mode: plan.ModeLegacyFirstParty,
		prepare: func(r *crashRig) {
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				sp := r.firstParty(tn)
				sp.KeyCredentials = append(sp.KeyCredentials, foreignKey())
				sp.ServicePrincipalNames = append(sp.ServicePrincipalNames, foreignSPN)
			})
		},
		write: sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "PATCH servicePrincipals"},
		call: func(r *crashRig, before *Before) (any, any) {
			return (&Entra{}).EnsureFirstPartyServicePrincipal, FirstPartyInput{Target: r.tgt, Keys: r.d.Keys, SPNs: r.d.SPNs, Before: before}
		},
		kinds: []string{UndoRemoveKeys, UndoRemoveSPNs},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			sp := r.firstParty(tn)
			return countFold(keyTPs(sp.KeyCredentials), r.ourThumbprints()) + countFold(sp.ServicePrincipalNames, r.d.SPNs)
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			sp := r.firstParty(tn)
			keys := slices.DeleteFunc(keyTPs(sp.KeyCredentials), func(tp string) bool { return countFold([]string{tp}, r.ourThumbprints()) > 0 })
			spns := slices.DeleteFunc(slices.Clone(sp.ServicePrincipalNames), func(s string) bool { return countFold([]string{s}, r.d.SPNs) > 0 })
			return strings.Join(keys, ",") + " | " + strings.Join(spns, ",")
		},
	},
	{
		name: "SPNs on the first-party service principal", step: plan.StepSPNs, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				sp := r.firstParty(tn)
				sp.ServicePrincipalNames = append(sp.ServicePrincipalNames, foreignSPN)
			})
		},
		write: sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "PATCH servicePrincipals"},
		call: func(r *crashRig, before *Before) (any, any) {
			return (&Entra{}).EnsureFirstPartyServicePrincipal, FirstPartyInput{Target: r.tgt, SPNs: r.d.SPNs, Before: before}
		},
		kinds: []string{UndoRemoveSPNs},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			return countFold(r.firstParty(tn).ServicePrincipalNames, r.d.SPNs)
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			return strings.Join(slices.DeleteFunc(slices.Clone(r.firstParty(tn).ServicePrincipalNames), func(s string) bool { return countFold([]string{s}, r.d.SPNs) > 0 }), ",")
		},
	},
	{
		name: "admin consent", step: plan.StepDedicatedApp, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			// The application and its service principal exist (an
			// earlier run made them); Fabrikam's own grant on Graph is in
			// the world file.
			var app StepResult
			r.exec(&app, (&Entra{}).EnsureDedicatedApplication, DedicatedAppInput{Target: r.tgt, Name: r.d.DedicatedAppName})
			r.exec(nil, (&Entra{}).EnsureDedicatedServicePrincipal, AppIDInput{Target: r.tgt, AppID: app.AppID})
		},
		write: sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "POST servicePrincipals/appRoleAssignments"},
		call: func(r *crashRig, before *Before) (any, any) {
			return (&Entra{}).GrantDedicatedConsent, AppIDInput{Target: r.tgt, AppID: r.obs.DedicatedApp.AppID, Before: before}
		},
		kinds: []string{UndoRemoveAssignment},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			n := 0
			for _, a := range tn.Entra.AppRoleAssignments {
				if strings.EqualFold(a.PrincipalID, r.obs.DedicatedSP.ID) && strings.EqualFold(a.AppRoleID, plan.FullAccessAsAppRoleID) {
					n++
				}
			}
			return n
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			var out []string
			for _, a := range tn.Entra.AppRoleAssignments {
				if !strings.EqualFold(a.PrincipalID, r.obs.DedicatedSP.ID) {
					out = append(out, a.ID+" "+a.PrincipalID+" "+a.AppRoleID)
				}
			}
			return strings.Join(out, ",")
		},
	},
	iocCase("Exchange Online connector", plan.StepIOCOnline, sim.ProtoEXO),
	iocCase("on-prem connector", plan.StepIOCOnPrem, sim.ProtoShell),
	{
		name: "auth server (New-AuthServer)", step: plan.StepAuthServers, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			// The Hybrid Configuration Wizard made the ACS server.
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				tn.OnPrem.AuthServers = append(tn.OnPrem.AuthServers, &sim.AuthServer{Name: "ACS - " + tn.OnPrem.OrganizationGUID, Type: "MicrosoftACS",
					AuthMetadataURL: r.d.ACS.MetadataURL, Realm: stepRigTenant, Enabled: true})
			})
		},
		write: sim.FaultRule{Protocol: sim.ProtoShell, Cmdlet: "New-AuthServer"},
		call: func(r *crashRig, before *Before) (any, any) {
			return (&OnPrem{}).EnsureAuthServers, AuthServersInput{Target: r.tgt, Servers: []plan.AuthServerSpec{r.d.ACS, r.d.EvoSTS}, Before: before}
		},
		kinds: []string{UndoRemoveAuthServer},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			n := 0
			for _, s := range tn.OnPrem.AuthServers {
				if strings.EqualFold(s.Name, r.d.EvoSTS.Name) {
					n++
				}
			}
			return n
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			var out []string
			for _, s := range tn.OnPrem.AuthServers {
				if !strings.EqualFold(s.Name, r.d.EvoSTS.Name) {
					out = append(out, fmt.Sprintf("%s %s %s %v", s.Name, s.AuthMetadataURL, s.Realm, s.Enabled))
				}
			}
			return strings.Join(out, ",")
		},
	},
	{
		name: "setting override (New-SettingOverride)", step: plan.StepSettingOverride, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				tn.OnPrem.PartnerApplications[0].Enabled = true
				tn.OnPrem.SettingOverrides = append(tn.OnPrem.SettingOverrides, &sim.SettingOverride{Name: foreignOverride, Component: "Global",
					Section: "MapiHttpThrottling", Parameters: []string{"Enabled=true"}})
			})
		},
		write: sim.FaultRule{Protocol: sim.ProtoShell, Cmdlet: "New-SettingOverride"},
		call: func(r *crashRig, before *Before) (any, any) {
			consent := true
			return (&OnPrem{}).EnsureSettingOverride, SettingOverrideInput{Target: r.tgt, ConsentGranted: &consent, Before: before}
		},
		kinds: []string{UndoRemoveSettingOverride},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			n := 0
			for _, so := range tn.OnPrem.SettingOverrides {
				if strings.EqualFold(so.Name, plan.OverrideName) {
					n++
				}
			}
			return n
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			var out []string
			for _, so := range tn.OnPrem.SettingOverrides {
				if !strings.EqualFold(so.Name, plan.OverrideName) {
					out = append(out, fmt.Sprintf("%s %s %s %q", so.Name, so.Component, so.Section, so.Parameters))
				}
			}
			return strings.Join(out, ",")
		},
	},
	{
		name: "availability address space (Add-AvailabilityAddressSpace)", step: plan.StepAvailability, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				tn.OnPrem.AvailabilityAddressSpaces = append(tn.OnPrem.AvailabilityAddressSpaces, &sim.AvailabilityAddressSpace{ForestName: foreignForest,
					AccessMethod: "OrgWideFB", UseServiceAccount: true})
			})
		},
		write: sim.FaultRule{Protocol: sim.ProtoShell, Cmdlet: "Add-AvailabilityAddressSpace"},
		call: func(r *crashRig, before *Before) (any, any) {
			return (&OnPrem{}).EnsureAvailabilityAddressSpace, AvailabilityInput{Target: r.tgt, Before: before,
				Spec: plan.AvailabilitySpec{Needed: true, ForestName: crashForest, ProxyURL: crashProxyURL}}
		},
		kinds: []string{UndoRemoveAddressSpace},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			n := 0
			for _, a := range tn.OnPrem.AvailabilityAddressSpaces {
				if strings.EqualFold(a.ForestName, crashForest) {
					n++
				}
			}
			return n
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			var out []string
			for _, a := range tn.OnPrem.AvailabilityAddressSpaces {
				if !strings.EqualFold(a.ForestName, crashForest) {
					out = append(out, fmt.Sprintf("%s %s %s", a.ForestName, a.AccessMethod, a.ProxyURL))
				}
			}
			return strings.Join(out, ",")
		},
	},
}

// iocCase is the connector case for one side; someone else's connector
// (another federation, other domains) is there before the run.
func iocCase(name string, step plan.Step, proto string) crashCase {
	side := func(r *crashRig, tn *sim.Tenant) ([]*sim.IntraOrgConnector, plan.IOCSpec) {
		if step == plan.StepIOCOnline {
			return tn.Online.IntraOrganizationConnectors, r.d.OnlineIOC
		}
		return tn.OnPrem.IntraOrganizationConnectors, r.d.OnPremIOC
	}
	return crashCase{
		name: name, step: step, mode: plan.ModeDedicatedApp,
		prepare: func(r *crashRig) {
			c := &sim.IntraOrgConnector{Name: foreignConnector, DiscoveryEndpoint: "https://autodiscover.fabrikam.example/autodiscover/autodiscover.svc",
				TargetAddressDomains: []string{"fabrikam.example"}, Enabled: true}
			r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
				if step == plan.StepIOCOnline {
					tn.Online.IntraOrganizationConnectors = append(tn.Online.IntraOrganizationConnectors, c)
				} else {
					tn.OnPrem.IntraOrganizationConnectors = append(tn.OnPrem.IntraOrganizationConnectors, c)
				}
			})
		},
		write: sim.FaultRule{Protocol: proto, Cmdlet: "New-IntraOrganizationConnector"},
		call: func(r *crashRig, before *Before) (any, any) {
			in := IOCInput{Target: r.tgt, Before: before, Spec: r.d.OnPremIOC}
			if step == plan.StepIOCOnline {
				in.Spec = r.d.OnlineIOC
				return (&Online{}).EnsureOnlineConnector, in
			}
			return (&OnPrem{}).EnsureOnPremConnector, in
		},
		kinds: []string{UndoRemoveIOC},
		ours: func(r *crashRig, tn *sim.Tenant) int {
			list, spec := side(r, tn)
			n := 0
			for _, c := range list {
				if strings.EqualFold(c.Name, spec.Name) {
					n++
				}
			}
			return n
		},
		others: func(r *crashRig, tn *sim.Tenant) string {
			list, spec := side(r, tn)
			var out []string
			for _, c := range list {
				if !strings.EqualFold(c.Name, spec.Name) {
					out = append(out, fmt.Sprintf("%s %s %q %v", c.Name, c.DiscoveryEndpoint, c.TargetAddressDomains, c.Enabled))
				}
			}
			return strings.Join(out, ",")
		},
	}
}

// The crash window, for every kind of object a setup step creates or
// adds. The step's write is applied and its reply lost (the simulator's
// apply_then_drop: the connection closes, the PowerShell host dies after
// the cmdlet ran), and that attempt's result never reaches the workflow
// (the worker died before its completion was recorded). The retry finds
// the object already there. Since discovery did not see it, and it is
// exactly what the step sends, it is this run's: the retry must return
// the undo record its own write would have had. The abort then removes
// exactly it, and leaves what was there before (someone else's key, SPN,
// grant, connector, auth server, override, address space) as it was.
// An operator's retry of the step afterwards (the run holds the record)
// claims nothing twice.
func TestCrashWindowAbortRemovesWhatTheRunMade(t *testing.T) {
	for _, c := range crashCases {
		t.Run(c.name, func(t *testing.T) {
			r := newCrashRig(t)
			c.prepare(r)
			r.discover()
			before := StepBefore(r.obs, c.step, c.mode, nil)
			if n := c.ours(r, r.tenant()); n != 0 {
				t.Fatalf("before the step: %d of the run's objects already there", n)
			}
			kept := c.others(r, r.tenant())
			if kept == "" {
				t.Fatal("the case plants nothing of someone else's")
			}

			fault := c.write
			fault.Kind, fault.FailFirstN = sim.FaultApplyThenDrop, 1
			r.w.SetFaults([]sim.FaultRule{fault})
			fn, in := c.call(r, before)
			_, _ = r.env.ExecuteActivity(fn, in) // its result is lost with the worker
			if fired := r.w.FaultsFired()[sim.FaultApplyThenDrop]; fired != 1 {
				t.Fatalf("%d replies lost; want the write's", fired)
			}
			r.w.SetFaults(nil)
			made := c.ours(r, r.tenant())
			if made == 0 {
				t.Fatal("the write whose reply was lost was not applied")
			}

			res := r.run(fn, in, 3)
			var kinds []string
			for _, u := range res.Undo {
				kinds = append(kinds, u.Kind)
				if u.Evidence == "" {
					t.Errorf("undo record %s does not say how the object was proven this run's", u.Kind)
				}
			}
			if res.Outcome == Unchanged || !slices.Equal(kinds, c.kinds) {
				t.Fatalf("the retry: %s %q with undo %+v; want the undo records %v of the write whose result was lost", res.Outcome, res.Detail, res.Undo, c.kinds)
			}
			if n := c.ours(r, r.tenant()); n != made {
				t.Fatalf("the retry made %d objects of the run's; the lost write had made %d", n, made)
			}

			// An operator's retry of the step, with the records held.
			again := r.run(fn, mustCall(c, r, StepBefore(r.obs, c.step, c.mode, res.Undo)), 1)
			if len(again.Undo) != 0 {
				t.Errorf("a retry of the step with the records held claims again: %+v", again.Undo)
			}

			r.undo(res.Undo)
			if n := c.ours(r, r.tenant()); n != 0 {
				t.Errorf("after the abort: %d of the run's objects left", n)
			}
			if got := c.others(r, r.tenant()); got != kept {
				t.Errorf("after the abort, what was there before changed:\n got %s\nwant %s", got, kept)
			}
		})
	}
}

func mustCall(c crashCase, r *crashRig, b *Before) any {
	_, in := c.call(r, b)
	return in
}

// The other side of the proof: an object exactly as the step sends it
// that the run's discovery saw (an earlier run made it, or someone did
// by hand) is adopted without an undo record, so an abort never removes
// it.
func TestCrashWindowAdoptsWhatWasThereBefore(t *testing.T) {
	for _, c := range crashCases {
		t.Run(c.name, func(t *testing.T) {
			r := newCrashRig(t)
			c.prepare(r)
			r.discover()
			fn, in := c.call(r, nil)
			r.run(fn, in, 1) // an earlier run
			r.discover()     // this run's discovery sees it
			made := c.ours(r, r.tenant())
			if made == 0 {
				t.Fatal("the earlier run made nothing")
			}
			res := r.run(fn, mustCall(c, r, StepBefore(r.obs, c.step, c.mode, nil)), 1)
			if res.Outcome != Unchanged || len(res.Undo) != 0 {
				t.Fatalf("the step: %s %q with undo %+v; want it found unchanged, without an undo record", res.Outcome, res.Detail, res.Undo)
			}
		})
	}
}

// Without Before (setups recorded before it was passed, renewal, the
// bench) nothing found is claimed.
func TestCrashWindowClaimsNothingWithoutBefore(t *testing.T) {
	c := crashCases[slices.IndexFunc(crashCases, func(c crashCase) bool { return c.step == plan.StepAuthServers })]
	r := newCrashRig(t)
	c.prepare(r)
	r.discover()
	r.w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "New-AuthServer", Kind: sim.FaultApplyThenDrop, FailFirstN: 1}})
	fn, in := c.call(r, nil)
	_, _ = r.env.ExecuteActivity(fn, in)
	r.w.SetFaults(nil)
	if res := r.run(fn, in, 3); len(res.Undo) != 0 {
		t.Fatalf("without Before: undo %+v; want none", res.Undo)
	}
}

// An auth server claimed by its content is removed by the abort only
// while it still has the metadata URL this run sent; changed since, it is
// left and the undo says why.
func TestClaimedAuthServerIsRemovedOnlyWhileUnchanged(t *testing.T) {
	c := crashCases[slices.IndexFunc(crashCases, func(c crashCase) bool { return c.step == plan.StepAuthServers })]
	r := newCrashRig(t)
	c.prepare(r)
	r.discover()
	r.w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "New-AuthServer", Kind: sim.FaultApplyThenDrop, FailFirstN: 1}})
	fn, in := c.call(r, StepBefore(r.obs, c.step, c.mode, nil))
	_, _ = r.env.ExecuteActivity(fn, in)
	r.w.SetFaults(nil)
	res := r.run(fn, in, 3)
	if len(res.Undo) != 1 || res.Undo[0].URL != r.d.EvoSTS.MetadataURL {
		t.Fatalf("the retry: undo %+v; want the evoSTS server's, with the metadata URL sent", res.Undo)
	}
	r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
		authServer(tn, r.d.EvoSTS.Name).AuthMetadataURL = "https://login.fabrikam.example/metadata/json/1"
	})
	_, err := r.env.ExecuteActivity((&OnPrem{}).UndoOnPrem, UndoInput{Target: r.tgt, Record: res.Undo[0]})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrConflict {
		t.Fatalf("undo of an auth server changed since: %v; want a non-retryable %s", err, ErrConflict)
	}
	if c.ours(r, r.tenant()) != 1 {
		t.Fatal("the changed auth server was removed")
	}
	r.w.Update(stepRigTenant, func(tn *sim.Tenant) { authServer(tn, r.d.EvoSTS.Name).AuthMetadataURL = r.d.EvoSTS.MetadataURL })
	r.undo(res.Undo)
	if c.ours(r, r.tenant()) != 0 {
		t.Fatal("back as it was sent, the auth server was not removed")
	}
}

// StepBefore takes a step's objects from the observation and adds those
// the run holds undo records for, of the step's own kind and side only.
func TestStepBeforeAddsHeldRecordsOfTheStepsKind(t *testing.T) {
	o := plan.Observed{
		OnlineIOCs:   []plan.IOC{{Name: "HybridIOC - 1"}},
		OnPremIOCs:   []plan.IOC{{Name: "Fabrikam"}},
		FirstPartySP: plan.ServicePrincipal{ID: "sp", SPNs: []string{"a"}, Keys: []plan.Key{{Thumbprint: "AA"}}},
		DedicatedApp: plan.Application{Exists: true, ID: "app", Keys: []plan.Key{{Thumbprint: "BB"}}},
	}
	held := []UndoRecord{
		{System: SystemOnPrem, Kind: UndoRemoveIOC, Name: "ours-onprem"},
		{System: SystemOnline, Kind: UndoRemoveIOC, Name: "ours-online"},
		{System: SystemEntra, Kind: UndoRemoveKeys, ObjectID: "app", Thumbprints: []string{"CC"}},
		{System: SystemEntra, Kind: UndoRemoveSPNs, ObjectID: "sp", SPNs: []string{"b"}},
		{System: SystemEntra, Kind: UndoRemoveAssignment, ObjectID: "dsp", AssignmentID: "x"},
	}
	if b := StepBefore(o, plan.StepIOCOnline, plan.ModeDedicatedApp, held); !slices.Equal(b.Names, []string{"HybridIOC - 1", "ours-online"}) {
		t.Errorf("online connectors: %q", b.Names)
	}
	if b := StepBefore(o, plan.StepIOCOnPrem, plan.ModeDedicatedApp, held); !slices.Equal(b.Names, []string{"Fabrikam", "ours-onprem"}) {
		t.Errorf("on-prem connectors: %q", b.Names)
	}
	if b := StepBefore(o, plan.StepKeys, plan.ModeDedicatedApp, held); b.ObjectID != "app" || !slices.Equal(b.Thumbprints, []string{"BB", "CC"}) || len(b.SPNs) != 0 {
		t.Errorf("dedicated keys: %+v", b)
	}
	if b := StepBefore(o, plan.StepKeys, plan.ModeLegacyFirstParty, held); b.ObjectID != "sp" || !slices.Equal(b.Thumbprints, []string{"AA", "CC"}) || !slices.Equal(b.SPNs, []string{"a", "b"}) {
		t.Errorf("legacy keys: %+v", b)
	}
	if b := StepBefore(o, plan.StepDedicatedApp, plan.ModeDedicatedApp, held); !b.Consent {
		t.Errorf("consent held: %+v", b)
	}
	if b := StepBefore(o, plan.StepDedicatedApp, plan.ModeDedicatedApp, nil); b.Consent || b.ObjectID != "" {
		t.Errorf("no service principal, no consent: %+v", b)
	}
	if b := StepBefore(o, plan.StepVerify, plan.ModeDedicatedApp, held); b != nil {
		t.Errorf("verify: %+v; want nil", b)
	}
}

// crashHeartbeatWorkflow runs EnsureAuthServers as the setup runs an
// on-prem step, with a short heartbeat timeout and no retry.
func crashHeartbeatWorkflow(ctx workflow.Context, in AuthServersInput) (StepResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	var res StepResult
	err := workflow.ExecuteActivity(ctx, (&OnPrem{}).EnsureAuthServers, in).Get(ctx, &res)
	return res, err
}

// An on-prem step whose cmdlet takes longer than its heartbeat timeout
// (here the second New-AuthServer takes three seconds against a one-second
// timeout) stays alive by heartbeating while it waits, and those
// heartbeats carry the undo record of the write it has already made, so
// that a retry after the worker died would still report it.
func TestOnPremStepHeartbeatsThroughASlowCmdlet(t *testing.T) {
	w := simtest.World(t, filepath.Join("..", "configs", "sim", "small.yaml"))
	be := simtest.Backend(t, w, backend.SimOptions{})
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute) // the heartbeat timeout is what must not fire
	env.RegisterWorkflow(crashHeartbeatWorkflow)
	env.RegisterActivity(&OnPrem{Hosts: be})
	// What each heartbeat carried, in order: once the first server's
	// record is carried, every later heartbeat must carry it too (a
	// heartbeat replaces the details of the one before).
	var mu sync.Mutex
	var beats [][]string
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		var r StepResult
		names := []string{}
		if d != nil && d.HasValues() && d.Get(&r) == nil {
			for _, u := range r.Undo {
				names = append(names, u.Name)
			}
		}
		mu.Lock()
		beats = append(beats, names)
		mu.Unlock()
	})
	p := cloud.MustLookup("global")
	acs := plan.AuthServerSpec{Name: "ACS", Type: plan.AuthServerTypeACS, MetadataURL: p.ACSMetadataURL(stepRigTenant), Realm: stepRigTenant}
	evo := plan.AuthServerSpec{Name: "evoSTS", Type: plan.AuthServerTypeAzureAD, MetadataURL: p.EvoSTSMetadataURL("small1.onmicrosoft.com"), Realm: stepRigTenant}
	w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "New-AuthServer", Kind: sim.FaultLatency, Latency: 3 * time.Second, SkipFirstN: 1, FailFirstN: 1}})
	env.ExecuteWorkflow(crashHeartbeatWorkflow, AuthServersInput{Target: Target{TenantID: stepRigTenant, Cloud: "global", Site: "site-1"}, Servers: []plan.AuthServerSpec{acs, evo}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("the step did not survive its slow cmdlet: %v", err)
	}
	var res StepResult
	if err := env.GetWorkflowResult(&res); err != nil || len(res.Undo) != 2 {
		t.Fatalf("result %+v %v; want both servers created", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	first := slices.IndexFunc(beats, func(names []string) bool { return slices.Contains(names, "ACS") })
	if first < 0 || len(beats)-first < 3 {
		t.Fatalf("heartbeats %q: want the first server's undo record carried, and heartbeats through the slow cmdlet after it", beats)
	}
	for i, names := range beats[first:] {
		if !slices.Contains(names, "ACS") {
			t.Fatalf("heartbeat %d of %q drops the first server's undo record", first+i, beats)
		}
	}
}
