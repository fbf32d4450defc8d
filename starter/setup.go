package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// tenantFlags are shared by the per-tenant commands.
type tenantFlags struct {
	inventory string
	tenant    string
}

func (f *tenantFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.inventory, "file", "f", "", "tenant inventory (required)")
	cmd.Flags().StringVarP(&f.tenant, "tenant", "t", "", "tenant ID (GUID) from the inventory (required)")
}

func (f *tenantFlags) load() (config.Tenant, error) {
	if f.inventory == "" || f.tenant == "" {
		return config.Tenant{}, errors.New("name the inventory with -f and the tenant with -t")
	}
	inv, err := config.LoadInventory(f.inventory)
	if err != nil {
		return config.Tenant{}, err
	}
	t, ok := inv.LookupByID(f.tenant)
	if !ok {
		return config.Tenant{}, fmt.Errorf("tenant %s is not in %s (hybridflow validate -f %s lists the tenants it reads)", f.tenant, f.inventory, f.inventory)
	}
	return t, nil
}

func (a *app) planCommand() *cobra.Command {
	var (
		tf          tenantFlags
		concurrency int
	)
	cmd := &cobra.Command{
		Use:   "plan -f INVENTORY [-t TENANT]",
		Short: "Show what a setup would change, per tenant, writing nothing",
		Long: `plan runs the setup workflow in dry-run mode: it discovers the tenant's on-prem
Exchange, Exchange Online and Entra state, derives the desired configuration and
prints, per documented step, whether it would create, update or leave things as
they are, and why. Nothing is written. Without -t every tenant of the inventory
is planned (a dry-run rollout) and a per-tenant summary follows the plans.`,
		Example: "  hybridflow plan -f configs/inventory.demo.yaml\n  hybridflow plan -f configs/inventory.demo.yaml -t 11111111-1111-4111-8111-000000000001",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if tf.tenant == "" {
				inv, err := loadInventory(tf.inventory)
				if err != nil {
					return err
				}
				c, _, err := a.client(ctx)
				if err != nil {
					return err
				}
				defer c.Close()
				plans, err := a.planAll(ctx, c, tf.inventory, inv, concurrency)
				if err != nil {
					return err
				}
				if a.output == "json" {
					return a.printJSON(plans)
				}
				a.printPlanSummary(plans, inv, true)
				return nil
			}
			t, err := tf.load()
			if err != nil {
				return err
			}
			return a.planTenant(ctx, t, workflows.SetupOptions{}, workflows.PlanWorkflowID(t.ID))
		},
	}
	tf.add(cmd)
	cmd.Flags().IntVar(&concurrency, "concurrency", workflows.DefaultConcurrency, "without -t: tenants planned at once")
	return cmd
}

// planTenant runs one tenant's setup in dry-run mode under id (a plan ID,
// never the setup's own, so a running setup is not attached to) and
// prints what a run with opts would change. Nothing is written.
func (a *app) planTenant(ctx context.Context, t config.Tenant, opts workflows.SetupOptions, id string) error {
	c, _, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := planDryRun(ctx, c, t, opts, id)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	a.printPlan(t, res)
	return nil
}

// planDryRun runs one tenant's setup with opts in dry-run mode under id and
// returns its plan, with the steps opts skips shown as skipped.
func planDryRun(ctx context.Context, c client.Client, t config.Tenant, opts workflows.SetupOptions, id string) (workflows.SetupResult, error) {
	opts.DryRun = true
	in := workflows.InputFromTenant(t, opts)
	var res workflows.SetupResult
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: 10 * time.Minute,
		TypedSearchAttributes:    workflows.SetupStartAttributes(in),
		StaticSummary:            workflows.TenantSummary(t),
	}, workflows.Setup, in)
	if err != nil {
		return res, fmt.Errorf("start plan for %s: %w", t.ID, err)
	}
	if err := run.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("plan for %s: %w", t.ID, err)
	}
	// The dry run stops before steps are run, so --skip-step is shown here.
	for i, act := range res.Plan {
		if slices.Contains(opts.SkipSteps, string(act.Step)) {
			res.Plan[i].Change, res.Plan[i].Reason, res.Plan[i].Details = plan.ChangeSkip, "skipped by request (--skip-step)", nil
		}
	}
	return res, nil
}

func (a *app) printPlan(t config.Tenant, res workflows.SetupResult) {
	a.printf("%s (%s, %s) — mode %s\n", t.DisplayName, t.ID, t.Cloud, res.Mode)
	if res.ModeReason != "" {
		a.printf("  %s\n", res.ModeReason)
	}
	for _, act := range res.Plan {
		a.printf("  %-27s %-7s %s\n", act.Step, act.Change, act.Reason)
		for _, d := range act.Details {
			a.printf("  %-27s %-7s   %s\n", "", "", d)
		}
	}
	for _, w := range res.Warnings {
		a.printf("  warning: %s\n", w)
	}
	a.printf("  %s\n", countPlan(res.Plan).verdict("a setup"))
}

func (a *app) setupCommand() *cobra.Command {
	var (
		tf     tenantFlags
		opts   workflows.SetupOptions
		noWait bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "setup -f INVENTORY -t TENANT [--dry-run]",
		Short: "Configure one tenant (or attach to its running setup) and follow it",
		Long: `setup starts the tenant's setup workflow with the deterministic ID
hybridflow/setup/<tenant>, or attaches to it when it is already running: a tenant
never has two setups at once. It prints progress until the workflow ends or
pauses for an operator; then it says how to continue (retry, skip, abort).
In dedicated-app mode a verified setup then removes the on-premises auth
certificates from the shared first-party service principal (the legacy key)
and verifies again, putting the key back if that fails; --skip-step
remove-legacy-key keeps it. --dry-run prints the plan with these options
(the same as hybridflow plan -t) and writes nothing.
Exit status: 0 verified, 1 failed, 3 paused.`,
		Example: "  hybridflow setup -f configs/inventory.demo.yaml -t 11111111-1111-4111-8111-000000000001",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := tf.load()
			if err != nil {
				return err
			}
			if dryRun {
				return a.planTenant(cmd.Context(), t, opts, workflows.PlanWorkflowID(t.ID))
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id, run, err := startSetup(cmd.Context(), c, t, opts, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
			if err != nil {
				return fmt.Errorf("start setup for %s: %w", t.ID, err)
			}
			return a.followOrPrint(cmd.Context(), c, "setup", id, run, noWait)
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.FailurePolicy, "on-failure", workflows.PolicyPause, "pause (wait for retry/skip/abort), compensate (undo this run) or fail")
	f.StringSliceVar(&opts.SkipSteps, "skip-step", nil, "plan step to leave out (repeatable)")
	f.DurationVar(&opts.VerifyDeadline, "verify-deadline", 30*time.Minute, "how long verification waits for the configuration to propagate")
	f.BoolVar(&noWait, "no-wait", false, "start (or attach) and return at once")
	f.BoolVar(&dryRun, "dry-run", false, "discover and print the plan only; write nothing")
	return cmd
}

// follow polls the state query until the workflow completes or pauses.
func (a *app) follow(ctx context.Context, c client.Client, id string, run client.WorkflowRun) error {
	return followRun(a, ctx, id, run, following[workflows.SetupState]{
		kind: "setup", every: time.Second,
		query: func(ctx context.Context) (workflows.SetupState, error) { return querySetup(ctx, c, id) },
		status: func(st workflows.SetupState) (string, string, *workflows.Pause) {
			return st.State, st.CurrentStep, st.Paused
		},
		print: a.printSteps,
		next: func(st workflows.SetupState) string {
			return fmt.Sprintf("  hybridflow retry -t %[1]s\n  hybridflow skip  -t %[1]s\n  hybridflow abort -t %[1]s   (undoes this run's changes)\n", st.TenantID)
		},
	})
}

func querySetup(ctx context.Context, c client.Client, id string) (workflows.SetupState, error) {
	var st workflows.SetupState
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func (a *app) printSteps(st workflows.SetupState) {
	a.printf("%s (%s) — %s, mode %s, %d write(s)\n", st.TenantID, st.Cloud, st.State, st.Mode, st.Writes)
	for _, s := range st.Steps {
		detail := s.Detail
		if s.LastError != "" && s.Status != workflows.StatusDone {
			detail = s.LastError
		}
		a.printf("  %-27s %-11s %-9s %s\n", s.Step, s.Status, s.Outcome, detail)
	}
	for dir, v := range st.Verification {
		a.printf("  verify %-20s %s\n", dir, v)
	}
	for _, c := range st.Compensation {
		a.printf("  undone: %s\n", c)
	}
}

// operatorCommand sends retry, skip or abort to one paused setup, or to
// every paused setup matching the filters.
func (a *app) operatorCommand(name, short string) *cobra.Command {
	var (
		tenant    string
		reason    string
		yes       bool
		allPaused bool
		step      string
		errorType string
	)
	cmd := &cobra.Command{
		Use:   name + " (-t TENANT | --all-paused [--step S] [--error-type T])",
		Short: short,
		Long:  operatorLong(name),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tenant == "") == !allPaused {
				return errors.New("name one tenant with -t, or act on every paused setup with --all-paused")
			}
			abort := name == workflows.UpdateAbort
			if abort && !allPaused {
				if err := confirm(cmd, fmt.Sprintf("Abort the setup of %s and undo this run's changes to the tenant?", tenant), yes); err != nil {
					return err
				}
			}
			if abort && allPaused && !yes && !stdinIsTerminal(cmd.InOrStdin()) {
				// Refuse before listing anything: nobody can be asked.
				return confirm(cmd, "Abort every matching paused setup and undo their changes?", yes)
			}
			ctx := cmd.Context()
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			targets := []tenantRow{{TenantID: tenant, WorkflowID: workflows.SetupWorkflowID(tenant)}}
			if allPaused {
				if targets, err = bulkTargets(ctx, c, step, errorType); err != nil {
					return err
				}
				if len(targets) == 0 {
					return fmt.Errorf("%s: %w (filters: step %q, error type %q)", name, errNoneMatched, step, errorType)
				}
				if abort {
					if err := confirm(cmd, abortQuestion(targets), yes); err != nil {
						return err
					}
				}
			}
			type result struct {
				Tenant string `json:"tenant_id"`
				Step   string `json:"step,omitempty"`
				Error  string `json:"error,omitempty"`
			}
			var results []result
			failed := 0
			for _, tr := range targets {
				t := tr.TenantID
				st, err := sendOperator(ctx, c, name, tr.WorkflowID, reason)
				r := result{Tenant: t, Step: st}
				if err != nil {
					r.Error, failed = err.Error(), failed+1
				}
				results = append(results, r)
				if a.output != "json" {
					if err != nil {
						a.printf("%s %s: FAILED: %v\n", name, t, err)
					} else {
						a.printf("%s sent to %s (step %s)\n", name, t, st)
					}
				}
			}
			if a.output == "json" {
				if err := a.printJSON(results); err != nil {
					return err
				}
			}
			if failed > 0 {
				return silentExit{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&tenant, "tenant", "t", "", "tenant ID whose paused setup to act on")
	f.BoolVar(&allPaused, "all-paused", false, "act on every paused setup (narrow with --step / --error-type)")
	f.StringVar(&step, "step", "", "with --all-paused: only setups paused at this step")
	f.StringVar(&errorType, "error-type", "", "with --all-paused: only setups whose failure has this type (e.g. Throttled)")
	f.StringVar(&reason, "reason", "", "note recorded in the workflow history")
	if name == workflows.UpdateAbort {
		f.BoolVar(&yes, "yes", false, "confirm the abort without being asked (it undoes this run's changes)")
	}
	return cmd
}

// operatorLong explains each operator update, including why none of them
// has --dry-run: they change no tenant by themselves, except abort, whose
// effect `hybridflow setup`'s step list already shows.
func operatorLong(name string) string {
	common := `
With -t it acts on one tenant's setup (hybridflow/setup/<tenant>); with
--all-paused on every paused setup, narrowed by --step and --error-type.
The decision is named after the pause it answers, so running the command
again (after a timeout, say) is the same decision, answered as the first
was; a later pause of the same step takes a new one.`
	switch name {
	case workflows.UpdateRetry:
		return `retry runs the step a setup paused at again (after the cause was fixed).
There is no --dry-run: retry only sends an update to a paused run, which then
repeats its planned, idempotent step; see the step with hybridflow list or the
state query first.` + common
	case workflows.UpdateSkip:
		return `skip leaves out the step a setup paused at and goes on with the next one.
There is no --dry-run: skip only sends an update to a paused run.` + common
	}
	return `abort stops a paused setup and undoes this run's own changes in reverse order
(its undo records: only what this run created or replaced; nothing the product
did not create is removed). This is destructive: on a terminal it asks for
confirmation (listing the tenants for --all-paused); anywhere else it needs
--yes. There is no --dry-run: the steps this run changed, and so what abort
would undo, are shown by the state query (Web UI) or by hybridflow setup on
the tenant, which attaches and prints them.` + common
}

// abortQuestion names the setups a bulk abort would undo.
func abortQuestion(targets []tenantRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Abort %d paused setup(s) and undo their changes?", len(targets))
	for i, t := range targets {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(targets)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s (paused at %s)", t.TenantID, t.Step)
	}
	return b.String()
}
