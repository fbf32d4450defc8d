package workerhost

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/temporalx"
)

// noopActivity gives a role something to register, as the real roles do.
func noopActivity(context.Context) error { return nil }

// TestOnlyTheCloudQueueIsPolledForWorkflowTasks: workflows are registered
// only on the cloud role, so an on-prem worker that polled for workflow
// tasks would keep idle polls open per site; the dev server shows who polls.
func TestOnlyTheCloudQueueIsPolledForWorkflowTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	onprem := config.Role{Kind: config.RoleOnPrem, Site: "site-a"}
	roles := []config.Role{{Kind: config.RoleCloud}, onprem}
	reg := func(role config.Role, r worker.Registry) error {
		if role.Kind == config.RoleCloud {
			RegisterWorkflows(r)
		}
		r.RegisterActivity(noopActivity)
		return nil
	}
	h, err := Start(srv.Client(), roles, reg, zap.NewNop(), Options{Identity: "pollers-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()

	pollers := func(role config.Role, tt enumspb.TaskQueueType) int {
		resp, err := srv.Client().DescribeTaskQueue(ctx, temporalx.QueueForRole(role), tt)
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetPollers())
	}
	deadline := time.Now().Add(30 * time.Second)
	for pollers(roles[0], enumspb.TASK_QUEUE_TYPE_WORKFLOW) == 0 || pollers(onprem, enumspb.TASK_QUEUE_TYPE_ACTIVITY) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the workers did not poll within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := pollers(onprem, enumspb.TASK_QUEUE_TYPE_WORKFLOW); n != 0 {
		t.Errorf("%d worker(s) poll the on-prem queue for workflow tasks; want none", n)
	}
}
