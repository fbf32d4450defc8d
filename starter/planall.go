package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// tenantPlan is one tenant's dry-run result in inventory-wide output.
type tenantPlan struct {
	TenantID string `json:"tenant_id"`
	Name     string `json:"display_name"`
	Writes   int    `json:"steps_that_write"`
	// Blocked names the steps something in the tenant stops: a setup
	// would pause there for an operator.
	Blocked []string               `json:"steps_blocked,omitempty"`
	Mode    string                 `json:"mode,omitempty"`
	Error   string                 `json:"error,omitempty"`
	Result  *workflows.SetupResult `json:"result,omitempty"`
}

// planSuffix names a dry-run rollout apart from the real one of the same
// inventory, so that neither attaches to the other.
const planSuffix = "-plan"

// planAll dry-runs every tenant through a rollout (bounded concurrency,
// one plan workflow per tenant) and collects each tenant's plan.
func (a *app) planAll(ctx context.Context, c client.Client, file string, inv *config.Inventory, concurrency int) ([]tenantPlan, error) {
	name := rolloutName(file) + planSuffix
	in := workflows.RolloutInput{Name: name, Concurrency: concurrency, Setup: workflows.SetupOptions{DryRun: true}}
	if len(inv.Tenants) <= inlineLimit {
		in.Tenants = inv.Tenants
	} else {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		in.InventoryPath = abs
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RolloutWorkflowID(name), TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: time.Hour,
		StaticSummary:            workflows.RolloutSummary(name, len(inv.Tenants)),
	}, workflows.Rollout, in)
	if err != nil {
		return nil, fmt.Errorf("start dry run over %s: %w", file, err)
	}
	var p workflows.RolloutProgress
	if err := run.Get(ctx, &p); err != nil {
		return nil, fmt.Errorf("dry run over %s: %w", file, err)
	}
	out := make([]tenantPlan, 0, len(inv.Tenants))
	for _, t := range inv.Tenants {
		tp := tenantPlan{TenantID: t.ID, Name: t.DisplayName}
		var res workflows.SetupResult
		if err := c.GetWorkflow(ctx, workflows.PlanWorkflowID(t.ID), "").Get(ctx, &res); err != nil {
			tp.Error = err.Error()
		} else {
			tp.Mode, tp.Result = res.Mode, &res
			pc := countPlan(res.Plan)
			tp.Writes = pc.Writes
			for _, s := range pc.Blocked {
				tp.Blocked = append(tp.Blocked, string(s))
			}
		}
		out = append(out, tp)
	}
	return out, nil
}

func (a *app) printPlanSummary(plans []tenantPlan, inv *config.Inventory, detail bool) {
	for i, tp := range plans {
		if detail && tp.Result != nil {
			a.printPlan(inv.Tenants[i], *tp.Result)
			a.printf("\n")
		}
	}
	a.printf("%-38s %-22s %-19s %s\n", "TENANT", "NAME", "MODE", "PLAN")
	for _, tp := range plans {
		what := tp.counts().verdict("a setup")
		switch {
		case tp.Error != "":
			what = "ERROR: " + tp.Error
		case tp.counts().Converged():
			what = "converged"
		}
		a.printf("%-38s %-22s %-19s %s\n", tp.TenantID, tp.Name, tp.Mode, what)
	}
}

func (tp tenantPlan) counts() planCounts {
	c := planCounts{Writes: tp.Writes}
	for _, s := range tp.Blocked {
		c.Blocked = append(c.Blocked, plan.Step(s))
	}
	return c
}

// drifted: the tenant's plan would write, is blocked somewhere, or could
// not be made.
func (tp tenantPlan) drifted() bool { return tp.Error != "" || !tp.counts().Converged() }
