package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// The prologues and steps the commands share: connecting to Temporal,
// reading the inventory -f names and the tenants -t picks from it,
// starting a setup, and creating or updating a schedule.

// connected is a command's RunE that dials Temporal first and closes the
// connection when run returns.
func (a *app) connected(run func(cmd *cobra.Command, c client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		c, _, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		return run(cmd, c)
	}
}

// loadInventory reads the inventory -f names; without one it says so.
func loadInventory(file string) (*config.Inventory, error) {
	if file == "" {
		return nil, errors.New("name the inventory with -f")
	}
	return config.LoadInventory(file)
}

// inventoryTenants reads the inventory file and returns its tenants, or
// only the one tenant names when it is not empty.
func inventoryTenants(file, tenant string) (*config.Inventory, []config.Tenant, error) {
	inv, err := config.LoadInventory(file)
	if err != nil {
		return nil, nil, err
	}
	if tenant == "" {
		return inv, inv.Tenants, nil
	}
	t, ok := inv.LookupByID(tenant)
	if !ok {
		return nil, nil, fmt.Errorf("tenant %s is not in %s", tenant, file)
	}
	return inv, []config.Tenant{t}, nil
}

// startSetup starts a tenant's setup with opts under its deterministic ID,
// with the search attributes and summary every setup is started with.
// conflict says what a setup of the tenant already running means:
// USE_EXISTING attaches to it, FAIL refuses.
func startSetup(ctx context.Context, c client.Client, t config.Tenant, opts workflows.SetupOptions, conflict enumspb.WorkflowIdConflictPolicy) (string, client.WorkflowRun, error) {
	id := workflows.SetupWorkflowID(t.ID)
	in := workflows.InputFromTenant(t, opts)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: conflict,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    workflows.SetupStartAttributes(in),
		StaticSummary:            workflows.TenantSummary(t),
	}, workflows.Setup, in)
	return id, run, err
}

// followOrPrint follows a started setup (a.follow), or with noWait prints
// "<verb> <id> run <run ID>" and returns.
func (a *app) followOrPrint(ctx context.Context, c client.Client, verb, id string, run client.WorkflowRun, noWait bool) error {
	if noWait {
		a.printf("%s %s run %s\n", verb, id, run.GetRunID())
		return nil
	}
	return a.follow(ctx, c, id, run)
}

// upsertSchedule creates the schedule o describes or, when one exists
// under its ID, updates its spec, action, overlap policy and catch-up
// window in place (its pause state and note are kept). result is created
// or updated; updating says whether err came from the update.
func upsertSchedule(ctx context.Context, c client.Client, o client.ScheduleOptions) (result string, updating bool, err error) {
	_, err = c.ScheduleClient().Create(ctx, o)
	if err == nil {
		return "created", false, nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return "", false, err
	}
	err = c.ScheduleClient().GetHandle(ctx, o.ID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := u.Description.Schedule
			sp := o.Spec
			s.Spec = &sp
			s.Action = o.Action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap, s.Policy.CatchupWindow = o.Overlap, o.CatchupWindow
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return "", true, err
	}
	return "updated", true, nil
}
