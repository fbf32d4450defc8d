package activities

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// The on-prem steps of these tests run through real PowerShell-host relay
// processes: this test binary, started again as the relay.
func init() { sim.MaybeRunHost() }

// gatewayLoss sits under the Graph client, in front of the simulator.
// When armed with a kind of request it lets the next one through, so the
// service applies it, and answers the client 504 instead of the service's
// reply: a gateway that gave up waiting. It counts the requests of that
// kind that reached the service.
type gatewayLoss struct {
	next  http.RoundTripper
	mu    sync.Mutex
	match func(*http.Request) bool
	armed bool
	sent  int
}

func (g *gatewayLoss) arm(match func(*http.Request) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.match, g.armed, g.sent = match, true, 0
}

func (g *gatewayLoss) requests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent
}

func (g *gatewayLoss) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	match := g.match != nil && g.match(r)
	lose := match && g.armed
	if match {
		g.sent++
		g.armed = false
	}
	g.mu.Unlock()
	resp, err := g.next.RoundTrip(r)
	if err != nil || !lose {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	const body = `{"error":{"code":"UnknownError","message":"The gateway timed out."}}`
	return &http.Response{StatusCode: http.StatusGatewayTimeout, Status: "504 Gateway Timeout", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// lostReplyRig runs a fresh tenant's steps as the setup workflow would,
// through the real clients (Graph, Exchange Online, PowerShell-host
// relays) against the simulator, retrying a failed attempt as Temporal
// does.
type lostReplyRig struct {
	*stepRig
	gw *gatewayLoss
}

func newLostReplyRig(t *testing.T) *lostReplyRig {
	t.Helper()
	var gw *gatewayLoss
	r := newStepRig(t, func(be *backend.Backend, w *sim.World) *Entra {
		gw = &gatewayLoss{next: be.Sim.Servers.Transport()}
		gc, err := graph.New(graph.Options{Cloud: cloud.MustLookup("global"), TenantID: stepRigTenant, Credential: sim.StaticCredential(stepRigTenant),
			BaseURL: be.Sim.Servers.GraphURL(), HTTPClient: &http.Client{Transport: gw, Timeout: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		return &Entra{Clients: oneClient{gc}, Now: w.Now}
	})
	return &lostReplyRig{stepRig: r, gw: gw}
}

// created checks a step's result: created, with exactly one undo record
// of kind naming the object.
func (r *lostReplyRig) created(what string, res StepResult, kind string) UndoRecord {
	r.t.Helper()
	if res.Outcome != Created || len(res.Undo) != 1 || res.Undo[0].Kind != kind {
		r.t.Fatalf("%s after a lost reply: %s %q with undo %+v; want created, with its %s as undo", what, res.Outcome, res.Detail, res.Undo, kind)
	}
	return res.Undo[0]
}

// count is how many of the dedicated objects and connectors the tenant has.
type lostReplyCount struct{ apps, sps, grants, onprem, online int }

func (r *lostReplyRig) count(appID string) lostReplyCount {
	tn := r.tenant()
	var c lostReplyCount
	for _, a := range tn.Entra.Applications {
		if a.DisplayName == r.d.DedicatedAppName {
			c.apps++
		}
	}
	var spID string
	for _, sp := range tn.Entra.ServicePrincipals {
		if appID != "" && strings.EqualFold(sp.AppID, appID) {
			c.sps++
			spID = sp.ID
		}
	}
	for _, a := range tn.Entra.AppRoleAssignments {
		if spID != "" && strings.EqualFold(a.PrincipalID, spID) && strings.EqualFold(a.AppRoleID, plan.FullAccessAsAppRoleID) {
			c.grants++
		}
	}
	for _, x := range tn.OnPrem.IntraOrganizationConnectors {
		if x.Name == r.d.OnPremIOC.Name {
			c.onprem++
		}
	}
	for _, x := range tn.Online.IntraOrganizationConnectors {
		if x.Name == r.d.OnlineIOC.Name {
			c.online++
		}
	}
	return c
}

// Every create of a setup whose reply is lost after the service applied it
// (the simulator's apply_then_drop: the connection closes, the PowerShell
// host dies) leaves exactly one object, and the step reports it as created
// with the undo record that removes it; running the records removes them
// all.
func TestCreatesWithALostReplyAreCreatedOnce(t *testing.T) {
	r := newLostReplyRig(t)
	var undo []UndoRecord
	// lose loses the reply of the next request a rule matches, then runs
	// the step; exactly that one reply must have been lost.
	lose := func(what, kind string, step func() StepResult, rules ...sim.FaultRule) StepResult {
		t.Helper()
		for i := range rules {
			rules[i].Kind, rules[i].FailFirstN = sim.FaultApplyThenDrop, 1
		}
		r.w.SetFaults(rules) // the count of faults fired starts afresh
		res := step()
		if fired := r.w.FaultsFired()[sim.FaultApplyThenDrop]; fired != 1 {
			t.Fatalf("%s: %d replies lost; want the create's", what, fired)
		}
		rec := r.created(what, res, kind)
		if kind == UndoRemoveIOC && (rec.Evidence == "" || rec.IOC == nil) {
			t.Errorf("%s: the undo record does not say how the connector was proven ours: %+v", what, rec)
		}
		undo = append(undo, rec)
		return res
	}

	// The dedicated application: whichever request creates it (a POST,
	// or the upsert by uniqueName).
	app := lose("dedicated application", UndoDeleteApplication, func() StepResult {
		return r.run((&Entra{}).EnsureDedicatedApplication, DedicatedAppInput{Target: r.tgt, Name: r.d.DedicatedAppName}, 3)
	}, sim.FaultRule{Protocol: sim.ProtoGraph, Method: http.MethodPost, Path: "/applications"},
		sim.FaultRule{Protocol: sim.ProtoGraph, Method: http.MethodPatch, Path: "/applications(uniqueName="})
	lose("service principal", UndoDeleteSP, func() StepResult {
		return r.run((&Entra{}).EnsureDedicatedServicePrincipal, AppIDInput{Target: r.tgt, AppID: app.AppID}, 3)
	}, sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "POST servicePrincipals"})
	lose("admin consent", UndoRemoveAssignment, func() StepResult {
		return r.run((&Entra{}).GrantDedicatedConsent, AppIDInput{Target: r.tgt, AppID: app.AppID}, 3)
	}, sim.FaultRule{Protocol: sim.ProtoGraph, Operation: "POST servicePrincipals/appRoleAssignments"})
	lose("on-prem connector", UndoRemoveIOC, func() StepResult {
		return r.run((&OnPrem{}).EnsureOnPremConnector, IOCInput{Target: r.tgt, Spec: r.d.OnPremIOC}, 3)
	}, sim.FaultRule{Protocol: sim.ProtoShell, Cmdlet: "New-IntraOrganizationConnector"})
	lose("Exchange Online connector", UndoRemoveIOC, func() StepResult {
		return r.run((&Online{}).EnsureOnlineConnector, IOCInput{Target: r.tgt, Spec: r.d.OnlineIOC}, 3)
	}, sim.FaultRule{Protocol: sim.ProtoEXO, Cmdlet: "New-IntraOrganizationConnector"})

	if c := r.count(app.AppID); c != (lostReplyCount{1, 1, 1, 1, 1}) {
		t.Fatalf("after the lost replies: %+v; want exactly one of each", c)
	}
	r.w.SetFaults(nil)
	r.undo(undo)
	if c := r.count(app.AppID); c != (lostReplyCount{}) {
		t.Fatalf("after undoing: %+v; want none left", c)
	}
}

// The same through a gateway that answers 503/504 after the service
// applied the request: the Graph client must not send the create again
// (a second application, or a conflict for the service principal), and
// the step still reports the one object as created.
func TestGraphCreatesBehindATimedOutGatewayAreCreatedOnce(t *testing.T) {
	r := newLostReplyRig(t)
	post := func(suffix string) func(*http.Request) bool {
		return func(q *http.Request) bool {
			return q.Method == http.MethodPost && strings.HasSuffix(q.URL.Path, suffix)
		}
	}
	var undo []UndoRecord
	var appID string
	for _, a := range []struct {
		what, kind string
		match      func(*http.Request) bool
		step       func() StepResult
	}{
		// Whichever request creates the application: a POST, or the upsert
		// by uniqueName.
		{"dedicated application", UndoDeleteApplication, func(q *http.Request) bool {
			return post("/applications")(q) || (q.Method == http.MethodPatch && strings.Contains(q.URL.Path, "/applications(uniqueName="))
		}, func() StepResult {
			return r.run((&Entra{}).EnsureDedicatedApplication, DedicatedAppInput{Target: r.tgt, Name: r.d.DedicatedAppName}, 3)
		}},
		{"service principal", UndoDeleteSP, post("/servicePrincipals"), func() StepResult {
			return r.run((&Entra{}).EnsureDedicatedServicePrincipal, AppIDInput{Target: r.tgt, AppID: appID}, 3)
		}},
		{"admin consent", UndoRemoveAssignment, post("/appRoleAssignments"), func() StepResult {
			return r.run((&Entra{}).GrantDedicatedConsent, AppIDInput{Target: r.tgt, AppID: appID}, 3)
		}},
	} {
		r.gw.arm(a.match)
		res := a.step()
		undo = append(undo, r.created(a.what, res, a.kind))
		if res.AppID != "" {
			appID = res.AppID
		}
		if n := r.gw.requests(); n != 1 {
			t.Errorf("%s: the create went out %d times; want once", a.what, n)
		}
	}
	if c := r.count(appID); c.apps != 1 || c.sps != 1 || c.grants != 1 {
		t.Fatalf("after the lost replies: %+v; want exactly one of each", c)
	}
	r.undo(undo)
	if c := r.count(appID); c.apps != 0 || c.sps != 0 || c.grants != 0 {
		t.Fatalf("after undoing: %+v; want none left", c)
	}
}

// beforeRequest runs a hook just before the first request it matches
// reaches the simulator: someone else's write landing between the step's
// read and its own write.
type beforeRequest struct {
	next  http.RoundTripper
	match func(*http.Request) bool
	hook  func()
	once  sync.Once
}

func (b *beforeRequest) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.match(r) {
		b.once.Do(b.hook)
	}
	return b.next.RoundTrip(r)
}

// When the upsert finds an application with the uniqueName that the reads
// just before did not (another writer was quicker), Graph updates it
// (204) and the step did not create it: it is not claimed, and the run's
// tag the upsert wrote into it is taken off again, so no later attempt
// claims it either. There is still one application.
func TestUpsertThatFindsAnotherWritersApplicationDoesNotClaimIt(t *testing.T) {
	e := newEntraTest(t)
	const ownTag = RunTagPrefix + "default-test-run-id"
	hook := &beforeRequest{next: e.be.Sim.Servers.Transport(),
		match: func(r *http.Request) bool {
			return r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/applications(uniqueName=")
		},
		hook: func() {
			e.w.Update(entraSmall1, func(tn *sim.Tenant) {
				tn.Entra.Applications = append(tn.Entra.Applications, &sim.Application{ID: "7d0c5f0e-0000-4000-8000-00000000b001", AppID: "7d0c5f0e-0000-4000-8000-00000000b002",
					DisplayName: entraApp, UniqueName: plan.DedicatedAppUniqueName(entraApp), SignInAudience: "AzureADMyOrg", Tags: []string{RunTagPrefix + "another-run"},
					RequiredResourceAccess: []sim.RequiredResourceAccess{{ResourceAppID: cloud.FirstPartyAppID, ResourceAccess: []sim.ResourceAccess{{ID: plan.FullAccessAsAppRoleID, Type: "Role"}}}}})
			})
		}}
	gc, err := graph.New(graph.Options{Cloud: cloud.MustLookup("global"), TenantID: entraSmall1, Credential: sim.StaticCredential(entraSmall1),
		BaseURL: e.be.Sim.Servers.GraphURL(), HTTPClient: &http.Client{Transport: hook, Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	e.env.RegisterActivity(&Entra{Clients: oneClient{gc}, Now: e.w.Now})
	res := e.step(t, (&Entra{}).EnsureDedicatedApplication, DedicatedAppInput{Target: e.target(t, entraSmall1), Name: entraApp})
	if res.Outcome != Unchanged || len(res.Undo) != 0 || res.ObjectID != "7d0c5f0e-0000-4000-8000-00000000b001" {
		t.Fatalf("step: %+v; want the other writer's application, unchanged, no undo", res)
	}
	n := 0
	e.w.View(entraSmall1, func(tn *sim.Tenant) {
		for _, a := range tn.Entra.Applications {
			if a.DisplayName == entraApp {
				n++
				if slices.Contains(a.Tags, ownTag) {
					t.Errorf("the other writer's application keeps this run's tag: %q", a.Tags)
				}
			}
		}
	})
	if n != 1 {
		t.Fatalf("%d applications named %s; want one", n, entraApp)
	}
	// A later attempt of the same run does not claim it either.
	if again := e.step(t, (&Entra{}).EnsureDedicatedApplication, DedicatedAppInput{Target: e.target(t, entraSmall1), Name: entraApp}); again.Outcome != Unchanged || len(again.Undo) != 0 {
		t.Errorf("the next attempt: %+v; want unchanged", again)
	}
}

// A connector taken for this run's because it matched what the run sent
// (its create's reply was lost) is removed by the undo only while it still
// is that connector: changed since, it is left, and the undo says why.
func TestConnectorProvenByContentIsRemovedOnlyWhileUnchanged(t *testing.T) {
	r := newLostReplyRig(t)
	r.w.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Cmdlet: "New-IntraOrganizationConnector", Kind: sim.FaultApplyThenDrop, FailFirstN: 1}})
	res := r.run((&OnPrem{}).EnsureOnPremConnector, IOCInput{Target: r.tgt, Spec: r.d.OnPremIOC}, 3)
	rec := r.created("on-prem connector", res, UndoRemoveIOC)
	r.w.SetFaults(nil)
	r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
		c := ioc(tn.OnPrem.IntraOrganizationConnectors, r.d.OnPremIOC.Name)
		c.TargetAddressDomains = append(c.TargetAddressDomains, "someone-else.mail.onmicrosoft.com")
	})
	_, err := r.env.ExecuteActivity((&OnPrem{}).UndoOnPrem, UndoInput{Target: r.tgt, Record: rec})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrConflict {
		t.Fatalf("undo of a connector changed since: %v; want a non-retryable %s", err, ErrConflict)
	}
	if c := r.count(""); c.onprem != 1 {
		t.Fatalf("%d connectors named %s after the refused undo; want it left", c.onprem, r.d.OnPremIOC.Name)
	}
	// Back as it was sent, the undo removes it.
	r.w.Update(stepRigTenant, func(tn *sim.Tenant) {
		c := ioc(tn.OnPrem.IntraOrganizationConnectors, r.d.OnPremIOC.Name)
		c.TargetAddressDomains = slices.Clone(r.d.OnPremIOC.TargetAddressDomains)
	})
	r.undo([]UndoRecord{rec})
	if c := r.count(""); c.onprem != 0 {
		t.Fatalf("%d connectors left after the undo; want none", c.onprem)
	}
}

// Once hybridflow has created the dedicated application (with its
// uniqueName), an application another tool later creates under the same
// display name does not make the steps ambiguous: they address the one
// with the uniqueName.
func TestDedicatedStepsAddressTheApplicationByItsUniqueName(t *testing.T) {
	e := newEntraTest(t)
	tg := e.target(t, entraSmall1)
	app := e.step(t, e.a.EnsureDedicatedApplication, DedicatedAppInput{Target: tg, Name: entraApp})
	e.w.Update(entraSmall1, func(tn *sim.Tenant) {
		tn.Entra.Applications = append(tn.Entra.Applications, &sim.Application{ID: "7d0c5f0e-0000-4000-8000-00000000c001", AppID: "7d0c5f0e-0000-4000-8000-00000000c002",
			DisplayName: entraApp, SignInAudience: "AzureADMyOrg"})
	})
	if again := e.step(t, e.a.EnsureDedicatedApplication, DedicatedAppInput{Target: tg, Name: entraApp}); again.ObjectID != app.ObjectID {
		t.Fatalf("the application step addressed %s; want %s, the one with the uniqueName", again.ObjectID, app.ObjectID)
	}
	keys := e.step(t, e.a.EnsureApplicationKeys, AppKeysInput{Target: tg, AppID: app.AppID, Name: entraApp, Keys: []plan.Key{e.authKey(t, entraSmall1)}})
	if keys.Outcome != Updated || keys.ObjectID != app.ObjectID {
		t.Fatalf("keys step: %+v; want the key uploaded to %s", keys, app.ObjectID)
	}
}
