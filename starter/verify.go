package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).verifyCommand)
}

// verifyFlags are verify's flags; the schedule ones live in
// verifyschedule.go.
type verifyFlags struct {
	file, name  string
	concurrency int
	sched       verifyScheduleFlags
}

func (a *app) verifyCommand() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify -f INVENTORY [--schedule EVERY|CRON | --schedule-delete]",
		Short: "Read-only drift check: exit 1 if any tenant's plan would write or is blocked",
		Long: `verify runs the VerifyInventory workflow (ID hybridflow/verify/<name>, the name derived
from the inventory file or given with --name): every tenant is discovered and planned
without writing, as plan does, and its auth certificate's expiry kept (from the plan,
or, where a next certificate is staged or the plan failed, from a read-only renewal as
renew report runs). A tenant drifted when any step would write or is blocked (something in the
tenant stops the step, so a setup would pause there for an operator) or when it could
not be checked. Exit status 1 on drift, a blocked step or an error, 0 when every
tenant is converged.

--schedule makes the check periodic instead: it creates, or updates in place, the
Temporal Schedule hybridflow/verify/<name> (an interval such as 6h, or a cron
expression such as '0 * * * *'); a run still going makes the next one skip. Each
run's report is what the workers' metrics show per tenant (hybridflow_tenant_drift,
the auth certificate's expiry), and the run's HybridflowDrift search attribute says
"drifted" or "converged". --schedule-delete removes the schedule (asks first).`,
		Example: "  hybridflow verify -f configs/inventory.demo.yaml -o json\n  hybridflow verify -f configs/inventory.demo.yaml --schedule 6h\n  hybridflow verify -f configs/inventory.demo.yaml --schedule-delete --yes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.sched.delete {
				return a.verifyScheduleDelete(cmd, f)
			}
			if f.file == "" {
				return errors.New("name the inventory with -f")
			}
			if err := f.sched.check(cmd); err != nil {
				return err
			}
			inv, err := config.LoadInventory(f.file)
			if err != nil {
				return err
			}
			in, err := f.input(inv)
			if err != nil {
				return err
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if f.sched.spec != "" {
				return a.verifySchedule(cmd.Context(), c, f, in)
			}
			return a.verifyOnce(cmd.Context(), c, inv, in)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "tenant inventory (required, except with --schedule-delete --name)")
	fl.StringVar(&f.name, "name", "", "verify name (default: derived from the inventory file name)")
	fl.IntVar(&f.concurrency, "concurrency", workflows.DefaultConcurrency, "tenants checked at once")
	f.sched.add(cmd)
	return cmd
}

// verifyName is the name of the inventory's verify runs and schedule.
func (f verifyFlags) verifyName() (string, error) {
	name := f.name
	if name == "" {
		if f.file == "" {
			return "", errors.New("name the inventory with -f, or the verify with --name")
		}
		name = rolloutName(f.file)
	}
	if name == "" || nameRE.MatchString(name) {
		return "", fmt.Errorf("--name %q: use lower-case letters, digits and '-'", name)
	}
	return name, nil
}

// input is the workflow input: small inventories inline, larger ones by
// absolute path (the cloud worker must see the same file).
func (f verifyFlags) input(inv *config.Inventory) (workflows.VerifyInput, error) {
	name, err := f.verifyName()
	if err != nil {
		return workflows.VerifyInput{}, err
	}
	if f.concurrency < 1 {
		return workflows.VerifyInput{}, fmt.Errorf("--concurrency must be at least 1, not %d", f.concurrency)
	}
	in := workflows.VerifyInput{Name: name, Concurrency: f.concurrency}
	if len(inv.Tenants) <= inlineLimit {
		in.Tenants = inv.Tenants
		return in, nil
	}
	abs, err := filepath.Abs(f.file)
	if err != nil {
		return in, err
	}
	in.InventoryPath = abs
	return in, nil
}

// verifyOnce runs (or attaches to) one verify of the inventory and prints
// its report.
func (a *app) verifyOnce(ctx context.Context, c client.Client, inv *config.Inventory, in workflows.VerifyInput) error {
	id := workflows.VerifyWorkflowID(in.Name)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: 6 * time.Hour,
	}, workflows.VerifyInventory, in)
	if err != nil {
		return fmt.Errorf("start verify %s: %w", id, err)
	}
	var rep workflows.VerifyReport
	if err := run.Get(ctx, &rep); err != nil {
		return fmt.Errorf("verify %s: %w", id, err)
	}
	plans := plansFromReport(inv, rep)
	drift, blocked := 0, 0
	for _, tp := range plans {
		if tp.drifted() {
			drift++
		}
		if len(tp.Blocked) > 0 {
			blocked++
		}
	}
	if a.output == "json" {
		if err := a.printJSON(map[string]any{"workflow_id": id, "run_id": run.GetRunID(), "drifted": drift, "blocked": blocked, "tenants": plans}); err != nil {
			return err
		}
	} else {
		a.printPlanSummary(plans, inv, false)
		a.printf("%d of %d tenant(s) drifted", drift, len(plans))
		if blocked > 0 {
			a.printf(", %d of them blocked: a setup would pause for an operator", blocked)
		}
		a.printf("\n")
	}
	if drift > 0 {
		return silentExit{code: 1}
	}
	return nil
}

// plansFromReport lists the report's verdicts in inventory order with the
// inventory's display names. A tenant of the inventory the report lacks
// (the file changed while the run read it by path) is an error line.
func plansFromReport(inv *config.Inventory, rep workflows.VerifyReport) []tenantPlan {
	byID := make(map[string]workflows.TenantVerdict, len(rep.Tenants))
	for _, v := range rep.Tenants {
		byID[v.TenantID] = v
	}
	out := make([]tenantPlan, 0, len(inv.Tenants))
	for _, t := range inv.Tenants {
		tp := tenantPlan{TenantID: t.ID, Name: t.DisplayName}
		v, ok := byID[t.ID]
		if !ok {
			tp.Error = "not in the verify report " + rep.Name + " (the inventory changed while it ran?)"
			out = append(out, tp)
			continue
		}
		tp.Mode, tp.Writes, tp.Blocked, tp.Error = v.Mode, v.Writes, v.Blocked, v.Error
		out = append(out, tp)
	}
	return out
}
