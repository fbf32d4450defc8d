package activities

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/simtest"
)

// stepRigTenant is the tenant stepRig runs: configs/sim/small.yaml's
// Small 1, fresh, with modern builds.
const stepRigTenant = "22222222-2222-4222-8222-000000000001"

// stepRig runs one fresh tenant's setup steps as the setup workflow
// would, through the real clients (Graph, Exchange Online,
// PowerShell-host relays) against the simulator, retrying a failed
// attempt as Temporal does. obs and d are what the last discover saw and
// planned, which a setup records before its first write.
type stepRig struct {
	t   *testing.T
	w   *sim.World
	be  *backend.Backend
	env *testsuite.TestActivityEnvironment
	tgt Target
	obs plan.Observed
	d   plan.Desired
}

// newStepRig builds the rig over small.yaml and discovers. entra, when not
// nil, is the Entra activity struct to register (a test's own Graph
// client); otherwise the backend's clients serve it.
func newStepRig(t *testing.T, entra func(be *backend.Backend, w *sim.World) *Entra) *stepRig {
	t.Helper()
	w := simtest.World(t, filepath.Join("..", "configs", "sim", "small.yaml"))
	be := simtest.Backend(t, w, backend.SimOptions{})
	e := &Entra{Clients: be, Now: w.Now}
	if entra != nil {
		e = entra(be, w)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&OnPrem{Hosts: be})
	env.RegisterActivity(&Online{Clients: be})
	env.RegisterActivity(e)
	r := &stepRig{t: t, w: w, be: be, env: env, tgt: Target{TenantID: stepRigTenant, Cloud: "global", Site: "site-1"}}
	r.discover()
	return r
}

// discover reads the three systems and plans, as a setup does before it
// writes anything.
func (r *stepRig) discover() {
	r.t.Helper()
	var on, ol, en plan.Observed
	r.exec(&on, (&OnPrem{}).DiscoverOnPrem, r.tgt)
	r.exec(&ol, (&Online{}).DiscoverOnline, r.tgt)
	r.exec(&en, (&Entra{}).DiscoverEntra, EntraDiscoverInput{Target: r.tgt, DedicatedAppName: plan.DedicatedAppPrefix + on.OrganizationGUID})
	now := r.w.Now()
	r.obs = MergeObserved(on, ol, en, now)
	out, err := PlanSetup(context.Background(), PlanInput{Tenant: plan.TenantFacts{ID: stepRigTenant, Cloud: "global", InitialDomain: "small1.onmicrosoft.com"},
		Observed: r.obs, Now: now})
	if err != nil {
		r.t.Fatalf("plan: %v", err)
	}
	r.d = out.Desired
}

// exec runs an activity that must succeed; into (when not nil) gets its result.
func (r *stepRig) exec(into any, fn, in any) {
	r.t.Helper()
	v, err := r.env.ExecuteActivity(fn, in)
	if err == nil && into != nil {
		err = v.Get(into)
	}
	if err != nil {
		r.t.Fatalf("%T: %v", in, err)
	}
}

// run executes an activity as Temporal would: a failed attempt that may be
// retried is run again (up to attempts times); a non-retryable failure
// ends the test.
func (r *stepRig) run(fn, in any, attempts int) StepResult {
	r.t.Helper()
	var last error
	for i := 0; i < attempts; i++ {
		v, err := r.env.ExecuteActivity(fn, in)
		if err == nil {
			var res StepResult
			if err := v.Get(&res); err != nil {
				r.t.Fatal(err)
			}
			return res
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			r.t.Fatalf("attempt %d: not retryable: %v", i+1, err)
		}
		last = err
	}
	r.t.Fatalf("still failing after %d attempts: %v", attempts, last)
	return StepResult{}
}

// tenant is a copy of the tenant as the simulator has it now.
func (r *stepRig) tenant() *sim.Tenant {
	var c *sim.Tenant
	r.w.View(stepRigTenant, func(tn *sim.Tenant) { c = cloneTenant(r.t, tn) })
	return c
}

// undo runs the records in reverse, as an abort's compensation does.
func (r *stepRig) undo(recs []UndoRecord) {
	r.t.Helper()
	for i := len(recs) - 1; i >= 0; i-- {
		u := recs[i]
		fn := map[System]any{SystemOnPrem: (&OnPrem{}).UndoOnPrem, SystemOnline: (&Online{}).UndoOnline, SystemEntra: (&Entra{}).UndoEntra}[u.System]
		if _, err := r.env.ExecuteActivity(fn, UndoInput{Target: r.tgt, Record: u}); err != nil {
			r.t.Fatalf("undo %s %s: %v", u.Kind, u.Name+u.ObjectID, err)
		}
	}
}
