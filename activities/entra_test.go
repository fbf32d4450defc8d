package activities

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/simtest"
)

// Tenants of configs/sim/small.yaml.
const (
	entraSmall1 = "22222222-2222-4222-8222-000000000001" // clean: a fresh tenant
	entraSmall2 = "22222222-2222-4222-8222-000000000002" // a foreign and an expired key
	entraApp    = "ExchangeServerApp-48f03c0a-1fa8-4017-a884-615d687d831c"
)

type entraTest struct {
	w   *sim.World
	be  *backend.Backend
	a   *Entra
	env *testsuite.TestActivityEnvironment
}

func newEntraTest(t *testing.T) *entraTest {
	t.Helper()
	w := simtest.World(t, filepath.Join("..", "configs", "sim", "small.yaml"))
	be := simtest.Backend(t, w, backend.SimOptions{DirectShell: true})
	a := &Entra{Clients: be, Now: w.Now}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	return &entraTest{w: w, be: be, a: a, env: env}
}

func (e *entraTest) target(t *testing.T, tenant string) Target {
	t.Helper()
	var c string
	if !e.w.View(tenant, func(tn *sim.Tenant) { c = tn.Cloud }) {
		t.Fatalf("no tenant %s", tenant)
	}
	return Target{TenantID: tenant, Cloud: c}
}

func (e *entraTest) counters(tenant string) sim.TenantCounters {
	if tc := e.w.Stats().ByTenant[strings.ToLower(tenant)]; tc != nil {
		return *tc
	}
	return sim.TenantCounters{}
}

func (e *entraTest) discover(t *testing.T, tenant string) (plan.Observed, error) {
	t.Helper()
	var o plan.Observed
	v, err := e.env.ExecuteActivity(e.a.DiscoverEntra, EntraDiscoverInput{Target: e.target(t, tenant), DedicatedAppName: entraApp})
	if err == nil {
		err = v.Get(&o)
	}
	return o, err
}

// step runs a write activity and returns its result.
func (e *entraTest) step(t *testing.T, fn any, in any) StepResult {
	t.Helper()
	v, err := e.env.ExecuteActivity(fn, in)
	if err != nil {
		t.Fatal(err)
	}
	var r StepResult
	if err := v.Get(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// authKey is the tenant's on-prem auth certificate as a key to upload.
func (e *entraTest) authKey(t *testing.T, tenant string) plan.Key {
	t.Helper()
	var c *sim.ExchangeCertificate
	e.w.View(tenant, func(tn *sim.Tenant) { c = tn.OnPrem.Certificates[0] })
	return authCertKey(AuthCertificate{Thumbprint: c.Thumbprint, NotBefore: c.NotBefore, NotAfter: c.NotAfter, DER: c.DER})
}

// converge writes the dedicated-application configuration with the
// product's own Entra activities; withSP false stops after the application.
func (e *entraTest) converge(t *testing.T, tenant string, withSP bool) {
	t.Helper()
	tg := e.target(t, tenant)
	app := e.step(t, e.a.EnsureDedicatedApplication, DedicatedAppInput{Target: tg, Name: entraApp})
	e.step(t, e.a.EnsureApplicationKeys, AppKeysInput{Target: tg, AppID: app.AppID, Name: entraApp, Keys: []plan.Key{e.authKey(t, tenant)}})
	if !withSP {
		return
	}
	e.step(t, e.a.EnsureDedicatedServicePrincipal, AppIDInput{Target: tg, AppID: app.AppID})
	e.step(t, e.a.GrantDedicatedConsent, AppIDInput{Target: tg, AppID: app.AppID})
	e.step(t, e.a.EnsureFirstPartyServicePrincipal, FirstPartyInput{Target: tg, SPNs: []string{"https://mail." + tenant + ".example.com/"}})
}

// discoverIndividually is DiscoverEntra as it was before batching (one
// Graph read per object), kept as the reference the batched read must
// match exactly.
func discoverIndividually(ctx context.Context, c *graph.Client, appName string) (plan.Observed, error) {
	var o plan.Observed
	sp, err := c.ServicePrincipalByAppID(ctx, cloud.FirstPartyAppID)
	if err != nil && !errors.Is(err, graph.ErrNotFound) {
		return o, err
	}
	if sp != nil {
		o.FirstPartySP = plan.ServicePrincipal{ID: sp.ID, Keys: toPlanKeys(sp.KeyCredentials), SPNs: sp.ServicePrincipalNames}
	}
	app, err := c.ApplicationByDisplayName(ctx, appName)
	switch {
	case errors.Is(err, graph.ErrNotFound):
	case err != nil:
		return o, err
	default:
		o.DedicatedApp = plan.Application{Exists: true, ID: app.ID, AppID: app.AppID, Keys: toPlanKeys(app.KeyCredentials), HasFullAccessAsApp: hasFullAccess(app.RequiredResourceAccess)}
		dsp, err := c.ServicePrincipalByAppID(ctx, app.AppID)
		switch {
		case errors.Is(err, graph.ErrNotFound):
		case err != nil:
			return o, err
		default:
			o.DedicatedSP = plan.DedicatedSP{Exists: true, ID: dsp.ID}
			if sp != nil {
				as, err := c.AppRoleAssignments(ctx, dsp.ID)
				if err != nil {
					return o, err
				}
				o.ConsentGranted = hasConsent(as, sp.ID)
			}
		}
	}
	ds, err := c.Domains(ctx)
	if err != nil {
		return o, err
	}
	for _, d := range ds {
		if d.IsVerified {
			o.TenantDomains = append(o.TenantDomains, d.ID)
		}
	}
	return o, nil
}

// sameAsIndividually compares DiscoverEntra's result (called directly, not
// through the activity environment's JSON round trip) with the individual
// reads', value for value.
func (e *entraTest) sameAsIndividually(t *testing.T, tenant string) {
	t.Helper()
	tg := e.target(t, tenant)
	got, err := e.a.DiscoverEntra(context.Background(), EntraDiscoverInput{Target: tg, DedicatedAppName: entraApp})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.be.Graph(tg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := discoverIndividually(context.Background(), c, entraApp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batched discovery\n%#v\nindividual reads\n%#v", got, want)
	}
}

// TestDiscoverEntraIsOneGraphRead: the cost target (one discovery
// round trip per system per tenant, no writes) for a fresh tenant, one
// with the dedicated application and its service principal but no
// consent, and a converged one; and the result is exactly what the
// individual reads gave. Keys add one read (a batch of single-object
// $select=keyCredentials reads), the only one Graph answers with their
// certificates.
func TestDiscoverEntraIsOneGraphRead(t *testing.T) {
	e := newEntraTest(t)
	cases := []struct {
		name   string
		tenant string
		reads  int64 // 1, plus the key read when there are keys
		setup  func(t *testing.T)
		check  func(t *testing.T, o plan.Observed)
	}{
		{"fresh", entraSmall1, 1, func(*testing.T) {}, func(t *testing.T, o plan.Observed) {
			if o.DedicatedApp.Exists || o.DedicatedSP.Exists || o.ConsentGranted || o.FirstPartySP.ID == "" || len(o.TenantDomains) != 3 {
				t.Errorf("fresh: %+v", o)
			}
		}},
		{"dedicated app without consent", entraSmall2, 2, func(t *testing.T) {
			e.converge(t, entraSmall2, false)
			app := e.step(t, e.a.EnsureDedicatedApplication, DedicatedAppInput{Target: e.target(t, entraSmall2), Name: entraApp})
			e.step(t, e.a.EnsureDedicatedServicePrincipal, AppIDInput{Target: e.target(t, entraSmall2), AppID: app.AppID})
		}, func(t *testing.T, o plan.Observed) {
			if !o.DedicatedApp.Exists || !o.DedicatedApp.HasFullAccessAsApp || len(o.DedicatedApp.Keys) != 1 || !o.DedicatedSP.Exists || o.ConsentGranted {
				t.Errorf("dedicated app: %+v", o)
			}
			// Keys come with their certificates, read the one way Graph
			// sends them.
			for _, k := range append(slices.Clone(o.DedicatedApp.Keys), o.FirstPartySP.Keys...) {
				if len(k.DER) == 0 || k.CustomKeyIdentifier == "" {
					t.Errorf("key without its certificate or identifier: %+v", k)
				}
			}
		}},
		{"converged", entraSmall1, 2, func(t *testing.T) { e.converge(t, entraSmall1, true) }, func(t *testing.T, o plan.Observed) {
			if !o.DedicatedApp.Exists || !o.DedicatedSP.Exists || !o.ConsentGranted || len(o.FirstPartySP.SPNs) != 4 {
				t.Errorf("converged: %+v", o)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			before := e.counters(tc.tenant)
			o, err := e.discover(t, tc.tenant)
			if err != nil {
				t.Fatal(err)
			}
			after := e.counters(tc.tenant)
			if reads := after.GraphReads - before.GraphReads; reads != tc.reads || after.Writes != before.Writes {
				t.Fatalf("DiscoverEntra made %d Graph read(s) and %d write(s); want %d and 0", reads, after.Writes-before.Writes, tc.reads)
			}
			tc.check(t, o)
			e.sameAsIndividually(t, tc.tenant)
		})
	}
}

// TestDiscoverEntraApplicationWithoutServicePrincipal: the one partial
// state one batch cannot settle (no service principal under the
// application's name might be a renamed one), so the appId lookup follows:
// two reads, the key read for the application's key, and the same result
// as the individual reads.
func TestDiscoverEntraApplicationWithoutServicePrincipal(t *testing.T) {
	e := newEntraTest(t)
	e.converge(t, entraSmall1, false)
	before := e.counters(entraSmall1)
	o, err := e.discover(t, entraSmall1)
	if err != nil {
		t.Fatal(err)
	}
	if reads := e.counters(entraSmall1).GraphReads - before.GraphReads; reads != 3 || !o.DedicatedApp.Exists || o.DedicatedSP.Exists {
		t.Fatalf("%d reads, %+v", reads, o)
	}
	e.sameAsIndividually(t, entraSmall1)
}

func TestDiscoverEntraErrorsKeepTheirTypes(t *testing.T) {
	e := newEntraTest(t)
	cases := []struct {
		name      string
		rule      sim.FaultRule
		typ       string
		retryable bool
		delay     time.Duration
	}{
		{"inner 429", sim.FaultRule{Operation: "GET domains", Kind: sim.FaultThrottle, Rate: 1, RetryAfter: 45 * time.Second}, ErrThrottled, true, 45 * time.Second},
		{"inner 503", sim.FaultRule{Operation: "GET applications", Kind: sim.FaultServer, Rate: 1, RetryAfter: 40 * time.Second}, ErrTransient, true, 40 * time.Second},
		{"inner 403", sim.FaultRule{Operation: "GET servicePrincipals", Kind: sim.FaultFail, ErrorType: "403", Rate: 1}, ErrMissingPermission, false, 0},
		{"batch 429", sim.FaultRule{Operation: "POST $batch", Kind: sim.FaultThrottle, Rate: 1, RetryAfter: 45 * time.Second}, ErrThrottled, true, 45 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule.Protocol = sim.ProtoGraph
			e.w.SetFaults([]sim.FaultRule{tc.rule})
			began := time.Now()
			_, err := e.discover(t, entraSmall1)
			if time.Since(began) > 5*time.Second {
				t.Fatalf("waited %s for a Retry-After beyond the in-call budget", time.Since(began))
			}
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != tc.typ || app.NonRetryable() == tc.retryable || app.NextRetryDelay() != tc.delay {
				t.Fatalf("got %v (%#v)", err, app)
			}
		})
	}
	e.w.SetFaults(nil)
}

// TestLegacyFirstPartyKeysAndNamesInOnePatch: a fresh tenant's legacy
// step 4 and 5 write the first-party principal's keys and SPNs together,
// in exactly one Graph write.
func TestLegacyFirstPartyKeysAndNamesInOnePatch(t *testing.T) {
	e := newEntraTest(t)
	tg := e.target(t, entraSmall1)
	key := e.authKey(t, entraSmall1)
	before := e.counters(entraSmall1)
	r := e.step(t, e.a.EnsureFirstPartyServicePrincipal, FirstPartyInput{Target: tg, Keys: []plan.Key{key}, SPNs: []string{"https://mail.small1.example.com/"}})
	after := e.counters(entraSmall1)
	if r.Outcome != Updated || after.GraphWrites-before.GraphWrites != 1 || after.Writes-before.Writes != 1 {
		t.Fatalf("%+v; %d Graph write(s), want one PATCH", r, after.GraphWrites-before.GraphWrites)
	}
	var fp sim.ServicePrincipal
	e.w.View(entraSmall1, func(tn *sim.Tenant) {
		for _, sp := range tn.Entra.ServicePrincipals {
			if sp.AppID == cloud.FirstPartyAppID {
				fp = *sp
			}
		}
	})
	if len(fp.KeyCredentials) != 1 || !containsString(fp.ServicePrincipalNames, "https://mail.small1.example.com/") {
		t.Fatalf("first party after the PATCH: %d keys, SPNs %v", len(fp.KeyCredentials), fp.ServicePrincipalNames)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A cloud step is a local activity: when its worker dies after the write
// but before the result is recorded, the step runs again and finds its own
// object. The run tag lets it claim exactly that object (so an abort
// removes it) and nothing else.
func TestDedicatedObjectsClaimOnlyThisRunsOwn(t *testing.T) {
	e := newEntraTest(t)
	tg := e.target(t, entraSmall1)
	in := DedicatedAppInput{Target: tg, Name: entraApp}
	const ownTag = RunTagPrefix + "default-test-run-id" // the test environment's run

	first := e.step(t, e.a.EnsureDedicatedApplication, in)
	again := e.step(t, e.a.EnsureDedicatedApplication, in)
	if first.Outcome != Created || again.Outcome != Created || again.ObjectID != first.ObjectID {
		t.Fatalf("same run twice: %s %s then %s %s; want created, then created again (the same object)", first.Outcome, first.ObjectID, again.Outcome, again.ObjectID)
	}
	if len(again.Undo) != 1 || again.Undo[0].Kind != UndoDeleteApplication || again.Undo[0].ObjectID != first.ObjectID {
		t.Errorf("the repeated step's undo = %+v; want the application's deletion", again.Undo)
	}
	spIn := AppIDInput{Target: tg, AppID: first.AppID}
	sp1 := e.step(t, e.a.EnsureDedicatedServicePrincipal, spIn)
	sp2 := e.step(t, e.a.EnsureDedicatedServicePrincipal, spIn)
	if sp1.Outcome != Created || sp2.Outcome != Created || sp2.ObjectID != sp1.ObjectID || len(sp2.Undo) != 1 || sp2.Undo[0].Kind != UndoDeleteSP {
		t.Fatalf("service principal, same run twice: %+v then %+v; want created twice with its deletion as undo", sp1, sp2)
	}
	e.w.View(entraSmall1, func(tn *sim.Tenant) {
		for _, a := range tn.Entra.Applications {
			if a.ID == first.ObjectID && !slices.Equal(a.Tags, []string{ownTag}) {
				t.Errorf("application tags = %v, want [%s]", a.Tags, ownTag)
			}
		}
	})

	// Another run's objects, or untagged ones, are found, never claimed.
	for _, tags := range [][]string{{RunTagPrefix + "another-run"}, nil} {
		e.w.Update(entraSmall1, func(tn *sim.Tenant) {
			for _, a := range tn.Entra.Applications {
				if a.ID == first.ObjectID {
					a.Tags = tags
				}
			}
			for _, sp := range tn.Entra.ServicePrincipals {
				if sp.ID == sp1.ObjectID {
					sp.Tags = tags
				}
			}
		})
		if r := e.step(t, e.a.EnsureDedicatedApplication, in); r.Outcome != Unchanged || len(r.Undo) != 0 {
			t.Errorf("application tagged %v: %s with undo %+v; want unchanged, no undo", tags, r.Outcome, r.Undo)
		}
		if r := e.step(t, e.a.EnsureDedicatedServicePrincipal, spIn); r.Outcome != Unchanged || len(r.Undo) != 0 {
			t.Errorf("service principal tagged %v: %s with undo %+v; want unchanged, no undo", tags, r.Outcome, r.Undo)
		}
	}
}

// Called outside a workflow (the bench's baselines), the steps tag nothing
// and claim nothing.
func TestDedicatedApplicationOutsideAWorkflowIsUntagged(t *testing.T) {
	e := newEntraTest(t)
	in := DedicatedAppInput{Target: e.target(t, entraSmall1), Name: entraApp}
	first, err := e.a.EnsureDedicatedApplication(context.Background(), in)
	if err != nil || first.Outcome != Created {
		t.Fatalf("first call: %+v, %v; want created", first, err)
	}
	again, err := e.a.EnsureDedicatedApplication(context.Background(), in)
	if err != nil || again.Outcome != Unchanged {
		t.Fatalf("second call: %+v, %v; want unchanged", again, err)
	}
	e.w.View(entraSmall1, func(tn *sim.Tenant) {
		for _, a := range tn.Entra.Applications {
			if a.ID == first.ObjectID && len(a.Tags) != 0 {
				t.Errorf("tags = %v, want none", a.Tags)
			}
		}
	})
}
