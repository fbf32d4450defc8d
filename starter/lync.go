package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).lyncCommand)
}

// lyncFollowEvery is how often `hybridflow lync` polls the state query.
var lyncFollowEvery = time.Second

// lyncFlags pick the Lync site (and optionally one tenant at it).
type lyncFlags struct {
	inventory string
	site      string
	tenant    string
	// inv is the inventory input loaded, for summary.
	inv *config.Inventory
}

func (f *lyncFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.inventory, "file", "f", "", "tenant inventory (required)")
	cmd.Flags().StringVarP(&f.site, "site", "s", "", "Lync site (a lync_site of the inventory; required unless -t names a tenant)")
	cmd.Flags().StringVarP(&f.tenant, "tenant", "t", "", "take the cloud and target from this tenant at the site (when the site's tenants disagree)")
}

// input resolves the flags to a workflow input: the tenants at the site
// must agree on the ProxyFqdn, unless -t names the one that decides.
func (f *lyncFlags) input(o workflows.LyncOptions) (workflows.LyncInput, error) {
	if f.inventory == "" || (f.site == "" && f.tenant == "") {
		return workflows.LyncInput{}, errors.New("name the inventory with -f and the Lync site with -s (or a tenant with -t)")
	}
	inv, err := config.LoadInventory(f.inventory)
	if err != nil {
		return workflows.LyncInput{}, err
	}
	f.inv = inv
	if f.tenant == "" {
		return lyncInputForSite(inv, f.site, o)
	}
	t, ok := inv.LookupByID(f.tenant)
	if !ok {
		return workflows.LyncInput{}, fmt.Errorf("tenant %s is not in %s", f.tenant, f.inventory)
	}
	if t.LyncSite == "" {
		return workflows.LyncInput{}, fmt.Errorf("tenant %s has no lync_site in %s", t.ID, f.inventory)
	}
	if f.site != "" && !strings.EqualFold(f.site, t.LyncSite) {
		return workflows.LyncInput{}, fmt.Errorf("tenant %s is at Lync site %s, not %s", t.ID, t.LyncSite, f.site)
	}
	return lyncInputFromTenant(t, o), nil
}

func (a *app) lyncCommand() *cobra.Command {
	var (
		lf     lyncFlags
		opts   workflows.LyncOptions
		noWait bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "lync -f INVENTORY -s SITE",
		Short: "Integrate a Lync Server / Skype for Business site with Exchange Online and follow it",
		Long: `lync configures the Lync deployment of a site for Exchange Online (IM and presence
in Outlook on the web): AllowFederatedUsers on the access edge configuration, the
"Exchange Online" hosting provider with the documented settings and the cloud's
ProxyFqdn (exap.um.outlook.com; exap.um.partner.outlook.cn for 21Vianet; inventory
overrides.lync_proxy_fqdn wins), then waits for Central Management store replication,
confirms from the site's internal server that the Edge Server's replica has applied
a snapshot made after the provider was written (replication status: UpToDate and
LastUpdateCreation) and reports whether an external access policy enables
communications with remote users.

It starts the workflow hybridflow/lync/<site>, or attaches to it when it is running,
and prints progress until it ends or pauses for an operator; then it says how to
continue (hybridflow lync retry|skip|abort -s SITE; abort undoes this run's changes,
asks on a terminal and needs --yes elsewhere). --dry-run prints the plan (as lync
plan) and writes nothing. The cloud comes from the inventory's tenants at that site.
Exit status: 0 done, 1 failed, 3 paused.`,
		Example: "  hybridflow lync -f configs/inventory.example.yaml -s site-a\n" +
			"  hybridflow lync plan -f configs/inventory.example.yaml -s site-b -o json\n" +
			"  hybridflow lync -f configs/inventory.demo.yaml -t 11111111-1111-4111-8111-000000000010   (Demo 10: 21Vianet, with Lync)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := lf.input(opts)
			if err != nil {
				return err
			}
			if dryRun {
				return a.planLync(cmd.Context(), in, lf.summary(in))
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.LyncWorkflowID(in.Site)
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID: id, TaskQueue: temporalx.CloudQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				StaticSummary:            lf.summary(in),
			}, workflows.LyncIntegration, in)
			if err != nil {
				return fmt.Errorf("start Lync integration of site %s: %w", in.Site, err)
			}
			if noWait {
				if a.output == "json" {
					return a.printJSON(map[string]string{"workflow_id": id, "run_id": run.GetRunID()})
				}
				a.printf("lync %s run %s\n", id, run.GetRunID())
				return nil
			}
			return a.followLync(cmd.Context(), c, in.Site, run)
		},
	}
	lf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.FailurePolicy, "on-failure", workflows.PolicyPause, "pause (wait for retry/skip/abort), compensate (undo this run) or fail")
	f.StringSliceVar(&opts.SkipSteps, "skip-step", nil, "Lync step to leave out (repeatable): "+lyncStepNames())
	f.DurationVar(&opts.ReplicationTimeout, "replication-timeout", activities.DefaultLyncReplicationTimeout, "how long to wait for Central Management store replication")
	f.DurationVar(&opts.ReplicationPollInterval, "replication-poll", activities.DefaultLyncReplicationPoll, "time between replication status reads")
	f.BoolVar(&noWait, "no-wait", false, "start (or attach) and return at once")
	f.BoolVar(&dryRun, "dry-run", false, "print what a run would change (as lync plan); write nothing")
	cmd.AddCommand(a.lyncPlanCommand(),
		a.lyncOperatorCommand(workflows.UpdateRetry, "Run the paused step of a site's Lync integration again"),
		a.lyncOperatorCommand(workflows.UpdateSkip, "Skip the paused step of a site's Lync integration and go on"),
		a.lyncOperatorCommand(workflows.UpdateAbort, "Stop a paused Lync integration and undo this run's changes (asks first; --yes without a terminal)"))
	return cmd
}

func lyncStepNames() string {
	var s []string
	for _, st := range activities.LyncSteps {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

func (a *app) lyncPlanCommand() *cobra.Command {
	var lf lyncFlags
	cmd := &cobra.Command{
		Use:   "plan -f INVENTORY -s SITE",
		Short: "Show what a Lync integration would change at a site, writing nothing",
		Long: `lync plan runs the Lync workflow in dry-run mode: it reads the access edge
configuration, the hosting providers (Central Management store), replication
status and external access policies, and
prints per step whether a run would create, update or leave things as they are,
and why. Nothing is written.`,
		Example: "  hybridflow lync plan -f configs/inventory.example.yaml -s site-a\n  hybridflow lync plan -f configs/inventory.example.yaml -s site-b -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := lf.input(workflows.LyncOptions{DryRun: true})
			if err != nil {
				return err
			}
			return a.planLync(cmd.Context(), in, lf.summary(in))
		},
	}
	lf.add(cmd)
	return cmd
}

// summary is the Web UI's one-line summary of a Lync run of in: the
// tenant that decides it, with its domain and cloud, and the Lync site.
func (f *lyncFlags) summary(in workflows.LyncInput) string {
	t := config.Tenant{ID: in.Target.TenantID, Cloud: in.Cloud}
	if f.inv != nil {
		if found, ok := f.inv.LookupByID(in.Target.TenantID); ok {
			t = found
		}
	}
	return workflows.LyncSummary(t, in.Site)
}

// planLync runs the Lync workflow in dry-run mode under the site's plan ID
// and prints what a run would change. Nothing is written.
func (a *app) planLync(ctx context.Context, in workflows.LyncInput, summary string) error {
	in.Options.DryRun = true
	c, _, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.LyncPlanWorkflowID(in.Site), TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowExecutionTimeout: 10 * time.Minute,
		StaticSummary:            summary,
	}, workflows.LyncIntegration, in)
	if err != nil {
		return fmt.Errorf("start Lync plan for site %s: %w", in.Site, err)
	}
	var res workflows.LyncResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("Lync plan for site %s: %w", in.Site, err)
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	a.printLyncPlan(res)
	return nil
}

func (a *app) printLyncPlan(res workflows.LyncResult) {
	fqdn := ""
	if res.Desired != nil {
		fqdn = res.Desired.ProxyFqdn
	}
	a.printf("Lync site %s (%s, tenant %s): hosting provider %q → %s\n", res.Site, res.Cloud, res.TenantID, activities.LyncProviderIdentity, fqdn)
	for _, act := range res.Plan {
		a.printf("  %-22s %-7s %s\n", act.Step, act.Change, act.Reason)
		for _, d := range act.Details {
			a.printf("  %-22s %-7s   %s\n", "", "", d)
		}
	}
	for _, w := range res.Warnings {
		a.printf("  warning: %s\n", w)
	}
	a.printf("  %s\n", countPlan(res.Plan).verdict("a run"))
}

// followLync polls the state query until the workflow completes or pauses.
func (a *app) followLync(ctx context.Context, c client.Client, site string, run client.WorkflowRun) error {
	id := workflows.LyncWorkflowID(site)
	return followRun(a, ctx, id, run, following[workflows.LyncState]{
		kind: "lync", every: lyncFollowEvery,
		query: func(ctx context.Context) (workflows.LyncState, error) { return queryLync(ctx, c, id) },
		status: func(st workflows.LyncState) (string, string, *workflows.Pause) {
			return st.State, st.CurrentStep, st.Paused
		},
		print: a.printLyncSteps,
		next: func(workflows.LyncState) string {
			return fmt.Sprintf("  hybridflow lync retry -s %[1]s\n  hybridflow lync skip  -s %[1]s\n  hybridflow lync abort -s %[1]s --yes   (undoes this run's changes)\n", site)
		},
	})
}

func queryLync(ctx context.Context, c client.Client, id string) (workflows.LyncState, error) {
	var st workflows.LyncState
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func (a *app) printLyncSteps(st workflows.LyncState) {
	fqdn := ""
	if st.Desired != nil {
		fqdn = " → " + st.Desired.ProxyFqdn
	}
	a.printf("Lync site %s (%s%s) — %s, %d write(s)\n", st.Site, st.Cloud, fqdn, st.State, st.Writes)
	for _, s := range st.Steps {
		detail := s.Detail
		if s.LastError != "" && s.Status != workflows.StatusDone {
			detail = s.LastError
		}
		a.printf("  %-22s %-11s %-9s %s\n", s.Step, s.Status, s.Outcome, detail)
	}
	for _, w := range st.Warnings {
		a.printf("  warning: %s\n", w)
	}
	for _, c := range st.Compensation {
		a.printf("  undone: %s\n", c)
	}
}

// lyncOperatorCommand sends retry, skip or abort to a paused Lync integration.
func (a *app) lyncOperatorCommand(name, short string) *cobra.Command {
	var (
		site   string
		reason string
		yes    bool
	)
	cmd := &cobra.Command{
		Use:   name + " -s SITE",
		Short: short,
		Long: short + `.
It sends the update to the paused workflow hybridflow/lync/<site>; it has no
--dry-run because it writes nothing itself: retry repeats the planned step, skip
leaves it out, and abort undoes this run's own changes in reverse order (on a
terminal it asks first; anywhere else it needs --yes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if site == "" {
				return errors.New("name the Lync site with -s")
			}
			if name == workflows.UpdateAbort {
				if err := confirm(cmd, fmt.Sprintf("Abort the Lync integration of site %s and undo this run's changes to the Lync deployment?", site), yes); err != nil {
					return err
				}
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.LyncWorkflowID(site)
			step, err := sendOperator(cmd.Context(), c, name, id, reason)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(map[string]string{"workflow_id": id, "action": name, "step": step})
			}
			a.printf("%s sent to %s (step %s)\n", name, id, step)
			return nil
		},
	}
	cmd.Flags().StringVarP(&site, "site", "s", "", "Lync site whose paused integration to act on")
	cmd.Flags().StringVar(&reason, "reason", "", "note recorded in the workflow history")
	if name == workflows.UpdateAbort {
		cmd.Flags().BoolVar(&yes, "yes", false, "confirm the abort without being asked (it undoes this run's changes)")
	}
	return cmd
}
