package workflows_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// harness is a simulated world served on loopback, real Graph and Exchange
// Online clients against it, and the workflow test environment.
type harness struct {
	t     *testing.T
	world *sim.World
	be    *backend.Backend
	inv   *config.Inventory
}

func newHarness(t *testing.T, worldFile string) *harness {
	t.Helper()
	w, err := sim.Load(filepath.Join("..", "configs", "sim", worldFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return &harness{t: t, world: w, be: be, inv: w.Inventory()}
}

func (h *harness) env() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Setup)
	env.RegisterActivity(&activities.OnPrem{Hosts: h.be})
	env.RegisterActivity(&activities.Online{Clients: h.be})
	env.RegisterActivity(&activities.Entra{Clients: h.be})
	env.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: "PlanSetup"})
	env.SetTestTimeout(2 * time.Minute)
	return env
}

func (h *harness) input(i int, o workflows.SetupOptions) workflows.SetupInput {
	if o.Retry.InitialInterval == 0 {
		o.Retry = workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 3}
	}
	return workflows.InputFromTenant(h.inv.Tenants[i], o)
}

func (h *harness) run(env *testsuite.TestWorkflowEnvironment, in workflows.SetupInput) (workflows.SetupResult, error) {
	env.ExecuteWorkflow(workflows.Setup, in)
	if !env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var res workflows.SetupResult
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			h.t.Fatal(gerr)
		}
	}
	return res, err
}

func TestSetupHappyPathDedicated(t *testing.T) {
	h := newHarness(t, "small.yaml")
	res, err := h.run(h.env(), h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Steps {
		t.Logf("%-28s %-10s %-9s %s", s.Step, s.Status, s.Outcome, s.Detail)
	}
	if res.State != workflows.StateVerified || res.Mode != "dedicated-app" {
		t.Fatalf("state %s mode %s: %+v", res.State, res.Mode, res.Verification)
	}
	// A second run against the configured tenant writes nothing.
	before := h.world.Stats().ByTenant[h.inv.Tenants[0].ID]
	res2, err := h.run(h.env(), h.input(0, workflows.SetupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	after := h.world.Stats().ByTenant[h.inv.Tenants[0].ID]
	if res2.Writes != 0 || after.Writes != before.Writes {
		t.Fatalf("second run wrote: %d workflow writes, %d world writes", res2.Writes, after.Writes-before.Writes)
	}
}
