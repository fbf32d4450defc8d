package workflows_test

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// generatedWorld serves n generated tenants (all clouds, some legacy,
// half-configured, HCW names, foreign and expired keys) on loopback.
func generatedWorld(t *testing.T, n int) (*sim.World, *backend.Backend) {
	t.Helper()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: n, Sites: 3, Clouds: []string{"global", "gcc", "gcchigh", "dod", "china"},
		OldBuilds: 0.2, LegacyServers: 0.1, ForeignKeys: 0.3, ExpiredKeys: 0.3, HalfConfigured: 0.3, HCWNames: 0.2}, 7, now)
	if err != nil {
		t.Fatal(err)
	}
	w := &sim.World{FixedNow: now, Tenants: ts}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{DirectShell: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return w, be
}

func rolloutEnv(be *backend.Backend) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Rollout)
	env.RegisterWorkflow(workflows.Setup)
	env.RegisterWorkflow(workflows.TenantLock)
	env.RegisterActivity(&activities.OnPrem{Hosts: be})
	env.RegisterActivity(&activities.Online{Clients: be})
	env.RegisterActivity(&activities.Entra{Clients: be})
	env.RegisterActivity(&activities.Inventory{})
	env.RegisterActivityWithOptions(activities.PlanSetup, activity.RegisterOptions{Name: "PlanSetup"})
	env.SetTestTimeout(3 * time.Minute)
	return env
}

var fastRetry = workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 3}

// TestRolloutContinuesAsNewWithoutLosingTenants rolls out 12 tenants with
// concurrency 3 and a continue-as-new every 3 starts: 3 handovers (the
// fourth run's last start is the last tenant, so it ends the rollout),
// every tenant configured exactly once, counts adding up.
func TestRolloutContinuesAsNewWithoutLosingTenants(t *testing.T) {
	w, be := generatedWorld(t, 12)
	inv := w.Inventory()
	in := workflows.RolloutInput{Name: "test", Tenants: inv.Tenants, Concurrency: 3, ContinueAsNewEvery: 3,
		Setup: workflows.SetupOptions{Retry: fastRetry, VerifyInterval: time.Second}}
	runs := 0
	for {
		env := rolloutEnv(be)
		env.ExecuteWorkflow(workflows.Rollout, in)
		if !env.IsWorkflowCompleted() {
			t.Fatal("rollout did not complete")
		}
		err := env.GetWorkflowError()
		if cerr, ok := asContinueAsNew(err); ok {
			runs++
			if err := cerr.Get(&in); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var p workflows.RolloutProgress
		if err := env.GetWorkflowResult(&p); err != nil {
			t.Fatal(err)
		}
		if runs != 3 || p.ContinuedAsNew != runs {
			t.Fatalf("continued as new %d times (progress says %d), want 3: four runs of 3, the last ending the rollout", runs, p.ContinuedAsNew)
		}
		if p.Total != 12 || p.Done != 12 || p.Counts[workflows.StateVerified] != 12 || p.Pending != 0 {
			t.Fatalf("progress %+v", p)
		}
		t.Logf("runs=%d progress: total=%d done=%d counts=%v attention=%d", runs, p.Total, p.Done, p.Counts, len(p.Attention))
		break
	}
	// Every tenant was configured: a second discovery plans no writes.
	for _, ten := range inv.Tenants {
		if w.Stats().ByTenant[lower(ten.ID)].Writes == 0 {
			t.Errorf("tenant %s saw no writes", ten.ID)
		}
	}
}
