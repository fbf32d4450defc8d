package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).migrateCommand)
}

// migratePlanID keeps a migration's dry run apart from `plan -t`, whose
// running plan (in the inventory's mode) it must not attach to.
func migratePlanID(tenant string) string { return workflows.PlanWorkflowID(tenant) + "/migrate" }

// migrateCommand moves a tenant to the dedicated Exchange hybrid
// application and removes its legacy key on demand. It is the setup
// workflow with the mode forced to dedicated-app: that run already
// removes the legacy key only after verification passed and puts it back
// if verification fails afterwards, so no new workflow code is needed.
func (a *app) migrateCommand() *cobra.Command {
	var (
		tf      tenantFlags
		opts    workflows.SetupOptions
		keepKey bool
		yes     bool
		dryRun  bool
		noWait  bool
	)
	cmd := &cobra.Command{
		Use:   "migrate -f INVENTORY -t TENANT [--dry-run] [--keep-legacy-key] [--yes]",
		Short: "Move a tenant to the dedicated hybrid application and remove its legacy key",
		Long: `migrate runs the tenant's setup (hybridflow/setup/<tenant>) in dedicated-app mode,
whatever the inventory's mode says: it creates or completes the dedicated Exchange
hybrid application, uploads the auth certificate there, verifies both directions,
then removes the on-premises auth certificates from the shared first-party service
principal (the legacy key) and verifies again; if that second verification fails the
key is put back. Keys of other applications are never touched.

Removing the legacy key is destructive: on a terminal migrate asks first, anywhere
else it needs --yes. --keep-legacy-key migrates without removing it (no question).
--dry-run prints the plan and writes nothing. Servers older than the dedicated-app
builds (FACTS §2) make the plan refuse with UnsupportedVersion.

The inventory keeps its mode: set mode: dedicated-app there too, or a later setup or
rollout in legacy mode would put the key back on the first-party service principal.
Exit status: 0 verified, 1 failed, 3 paused.`,
		Example: "  hybridflow migrate -f configs/inventory.demo.yaml -t 11111111-1111-4111-8111-000000000001 --dry-run\n" +
			"  hybridflow migrate -f inv.yaml -t 11111111-1111-4111-8111-000000000001 --yes",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := tf.load()
			if err != nil {
				return err
			}
			if t.Mode() == config.ModeLegacyFirstParty && a.output != "json" {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s has mode %s in %s; change it to dedicated-app after the migration\n", t.ID, t.ModeSetting, tf.inventory)
			}
			t.ModeSetting = string(config.ModeDedicatedApp)
			if keepKey {
				opts.SkipSteps = append(opts.SkipSteps, string(plan.StepRemoveLegacyKey))
			}
			ctx := cmd.Context()
			if dryRun {
				return a.planTenant(ctx, t, opts, migratePlanID(t.ID))
			}
			if !keepKey {
				q := fmt.Sprintf("Migrate %s to the dedicated application and remove its auth certificates from the shared first-party service principal once verification passes?", t.ID)
				if err := confirm(cmd, q, yes); err != nil {
					return err
				}
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.SetupWorkflowID(t.ID)
			// FAIL, not USE_EXISTING: attaching to a running setup in another
			// mode would not be the migration that was asked for.
			in := workflows.InputFromTenant(t, opts)
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: id, TaskQueue: temporalx.CloudQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				TypedSearchAttributes:    workflows.SetupStartAttributes(in),
			}, workflows.Setup, in)
			if err != nil {
				return fmt.Errorf("start migration of %s (a setup of the tenant may be running; finish it first): %w", t.ID, err)
			}
			if noWait {
				a.printf("migrate %s run %s\n", id, run.GetRunID())
				return nil
			}
			return a.follow(ctx, c, id, run)
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&keepKey, "keep-legacy-key", false, "migrate but leave the legacy key on the first-party service principal")
	f.BoolVar(&yes, "yes", false, "confirm the legacy key's removal without being asked")
	f.BoolVar(&dryRun, "dry-run", false, "print the migration's plan; write nothing")
	f.StringVar(&opts.FailurePolicy, "on-failure", workflows.PolicyPause, "pause (wait for retry/skip/abort), compensate (undo this run) or fail")
	f.DurationVar(&opts.VerifyDeadline, "verify-deadline", 30*time.Minute, "how long verification waits for the configuration to propagate")
	f.BoolVar(&noWait, "no-wait", false, "start and return at once")
	return cmd
}
