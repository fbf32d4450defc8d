package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).migrateCommand)
}

// migratePlanID keeps a migration's dry run apart from `plan -t`, whose
// running plan (in the inventory's mode) it must not attach to; a dry run
// of the reset has its own, so that it never attaches to a dry run of the
// ordinary clean-up and shows the wrong keys.
func migratePlanID(tenant string, reset bool) string {
	id := workflows.PlanWorkflowID(tenant) + "/migrate"
	if reset {
		id += "-reset"
	}
	return id
}

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
		Use:   "migrate -f INVENTORY -t TENANT [--dry-run] [--keep-legacy-key | --reset-first-party-keys] [--yes]",
		Short: "Move a tenant to the dedicated hybrid application and remove its legacy key",
		Long: `migrate runs the tenant's setup (hybridflow/setup/<tenant>) in dedicated-app mode,
whatever the inventory's mode says: it creates or completes the dedicated Exchange
hybrid application, uploads the auth certificate there, verifies both directions,
then removes the on-premises auth certificates from the shared first-party service
principal (the legacy key: every key whose certificate is an Exchange auth
certificate) and verifies again; if that second verification fails the keys are
put back. Keys of other applications are never touched.

Removing the legacy key is destructive: on a terminal migrate asks first, anywhere
else it needs --yes. --keep-legacy-key migrates without removing it (no question).
--dry-run prints the plan and writes nothing. Servers older than the builds that
support the dedicated application make the plan refuse with UnsupportedVersion.

--reset-first-party-keys is Microsoft's reset instead (ConfigureExchangeHybridApplication.ps1
-ResetFirstPartyServicePrincipalKeyCredentials): the clean-up removes EVERY key on the
Exchange Online first-party service principal, whoever uploaded it, other applications'
keys included. The removed keys are kept and put back if the second verification fails
(or the run is aborted). Use it only when no key there must stay: when keys left by tools
or organisations that no longer exist should go too, or to end the first-party trust
completely once every Exchange organisation in the tenant (every forest of a
multi-forest hybrid) uses the dedicated application. Servers still on builds without
dedicated-application support lose the first-party path they rely on. --dry-run shows
every key the reset would remove; without --yes migrate reads the plan and names those
keys in its question, and it is refused where nobody can be asked. It cannot be
combined with --keep-legacy-key.

The inventory keeps its mode: set mode: dedicated-app there too, or a later setup or
rollout in legacy mode would put the key back on the first-party service principal.
Exit status: 0 verified, 1 failed, 3 paused.`,
		Example: "  hybridflow migrate -f configs/inventory.demo.yaml -t 11111111-1111-4111-8111-000000000001 --dry-run\n" +
			"  hybridflow migrate -f inv.yaml -t 11111111-1111-4111-8111-000000000001 --yes\n" +
			"  hybridflow migrate -f inv.yaml -t 11111111-1111-4111-8111-000000000001 --reset-first-party-keys --dry-run",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reset := opts.ResetFirstPartyKeys
			if reset && keepKey {
				return errors.New("--reset-first-party-keys and --keep-legacy-key cannot be combined: the reset removes every key of the Exchange Online first-party service principal, --keep-legacy-key removes none; choose one")
			}
			t, err := tf.load()
			if err != nil {
				return err
			}
			if t.Mode() == config.ModeLegacyFirstParty && a.output != "json" {
				eprintf(cmd.ErrOrStderr(), "note: %s has mode %s in %s; change it to dedicated-app after the migration\n", t.ID, t.ModeSetting, tf.inventory)
			}
			t.ModeSetting = string(config.ModeDedicatedApp)
			if keepKey {
				opts.SkipSteps = append(opts.SkipSteps, string(plan.StepRemoveLegacyKey))
			}
			ctx := cmd.Context()
			if dryRun {
				return a.planTenant(ctx, t, opts, migratePlanID(t.ID, reset))
			}
			var c client.Client
			switch {
			case reset && !yes:
				if !stdinIsTerminal(cmd.InOrStdin()) {
					// Refused before anything is read: nobody can be asked.
					return confirm(cmd, resetQuestion(t.ID, nil), false)
				}
				if c, _, err = a.client(ctx); err != nil {
					return err
				}
				defer c.Close()
				res, err := planDryRun(ctx, c, t, opts, migratePlanID(t.ID, true))
				if err != nil {
					return err
				}
				if err := confirm(cmd, resetQuestion(t.ID, &res), false); err != nil {
					return err
				}
			case !reset && !keepKey:
				q := fmt.Sprintf("Migrate %s to the dedicated application and remove its auth certificates from the shared first-party service principal once verification passes?", t.ID)
				if err := confirm(cmd, q, yes); err != nil {
					return err
				}
			}
			if c == nil {
				if c, _, err = a.client(ctx); err != nil {
					return err
				}
				defer c.Close()
			}
			// FAIL, not USE_EXISTING: attaching to a running setup in another
			// mode would not be the migration that was asked for.
			id, run, err := startSetup(ctx, c, t, opts, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
			if err != nil {
				return fmt.Errorf("start migration of %s (a setup of the tenant may be running; finish it first): %w", t.ID, err)
			}
			return a.followOrPrint(ctx, c, "migrate", id, run, noWait)
		},
	}
	tf.add(cmd)
	f := cmd.Flags()
	f.BoolVar(&keepKey, "keep-legacy-key", false, "migrate but leave the legacy key on the first-party service principal")
	f.BoolVar(&opts.ResetFirstPartyKeys, "reset-first-party-keys", false, "Microsoft's reset: remove EVERY key of the Exchange Online first-party service principal, other applications' included, instead of only the Exchange auth certificates (asks, naming the keys)")
	f.BoolVar(&yes, "yes", false, "confirm the legacy key's removal (or the reset) without being asked")
	f.BoolVar(&dryRun, "dry-run", false, "print the migration's plan; write nothing")
	f.StringVar(&opts.FailurePolicy, "on-failure", workflows.PolicyPause, "pause (wait for retry/skip/abort), compensate (undo this run) or fail")
	f.DurationVar(&opts.VerifyDeadline, "verify-deadline", 30*time.Minute, "how long verification waits for the configuration to propagate")
	f.BoolVar(&noWait, "no-wait", false, "start and return at once")
	return cmd
}

// resetQuestion asks for the reset of the first-party service principal's
// keys. With the plan of a dry run it names how many keys go and which;
// without one (nobody can be asked, so the question only explains the
// refusal) it says all of them.
func resetQuestion(tenant string, res *workflows.SetupResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Migrate %s to the dedicated application and, once verification passes, remove EVERY key on the Exchange Online first-party service principal, other applications' keys included (Microsoft's reset)?", tenant)
	if res == nil {
		b.WriteString(" All of its keys would go, whichever they are (--dry-run lists them)")
		return b.String()
	}
	var act plan.Action
	for _, x := range res.Plan {
		if x.Step == plan.StepRemoveLegacyKey {
			act = x
		}
	}
	var keys []string
	for _, d := range act.Details {
		if k, ok := strings.CutPrefix(d, "drop "); ok {
			keys = append(keys, k)
		}
	}
	switch {
	case act.Change.Writes() && len(keys) > 0:
		fmt.Fprintf(&b, "\nIt holds %d key(s) now; all of them would go:", len(keys))
		for _, k := range keys {
			b.WriteString("\n  " + k)
		}
		fmt.Fprintf(&b, "\nRemove all %d key(s)?", len(keys))
	case act.Change == plan.ChangeNone:
		b.WriteString("\nIt holds no key now, so nothing would be removed. Migrate?")
	default:
		fmt.Fprintf(&b, "\nThe plan for %s says %s: %s\nGo on?", plan.StepRemoveLegacyKey, orText(string(act.Change), "nothing"), act.Reason)
	}
	return b.String()
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
