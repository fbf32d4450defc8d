package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).renewCommand)
}

// dayDuration is a duration flag that also takes days ("60d", "1.5d"),
// the unit certificate lifetimes are talked about in.
type dayDuration struct{ d *time.Duration }

func (f dayDuration) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d != 0 && *f.d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(*f.d/(24*time.Hour))) + "d"
	}
	return f.d.String()
}

func (f dayDuration) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil || v < 0 {
			return fmt.Errorf("%q: want a number of days like 60d, or a Go duration like 36h", s)
		}
		*f.d = time.Duration(v * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a number of days like 60d, or a Go duration like 36h", s)
	}
	*f.d = v
	return nil
}

func (dayDuration) Type() string { return "duration" }

// renewOptionFlags are the renewal options every command that starts
// renewals shares.
type renewOptionFlags struct {
	mode string
	opts workflows.RenewalOptions
}

func (f *renewOptionFlags) add(cmd *cobra.Command) {
	f.opts.Window, f.opts.LeadTime, f.opts.EmergencyThreshold = workflows.DefaultRenewalWindow, workflows.DefaultRenewalLeadTime, workflows.DefaultEmergencyThreshold
	f.opts.VerifyDeadline = 30 * time.Minute
	fl := cmd.Flags()
	fl.StringVar(&f.mode, "mode", workflows.RenewalModeDetect, "where the keys live: detect (from the evoSTS auth server), dedicated-app or legacy-first-party")
	fl.Var(dayDuration{&f.opts.Window}, "window", "renew when the current certificate expires within this (e.g. 60d)")
	fl.Var(dayDuration{&f.opts.LeadTime}, "lead-time", "stage the new certificate this far ahead of its effective date (e.g. 30d)")
	fl.Var(dayDuration{&f.opts.EmergencyThreshold}, "emergency-threshold", "a certificate expired or expiring within this takes the emergency path (e.g. 1d)")
	fl.Var(dayDuration{&f.opts.VerifyDeadline}, "verify-deadline", "how long verification waits for the configuration to propagate")
	fl.StringVar(&f.opts.FailurePolicy, "on-failure", workflows.PolicyPause, "pause (wait for retry/skip/abort) or fail")
}

func (a *app) renewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Keep the Exchange auth certificate renewed: schedules, on-demand runs, expiry report",
		Long: `renew manages the auth certificate's life (docs/microsoft-behaviour.md) with one Temporal Schedule per
tenant (ID hybridflow/renewal/<tenant>). Each scheduled run of the Renewal workflow
reads the auth config; far from expiry it does nothing; within the window it creates
a certificate, stages it for the effective date, uploads its key next to the current
one, waits, publishes, verifies, clears the previous certificate and only then
removes the old key from Entra. An expired certificate takes the emergency path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.renewScheduleCommand(), a.renewListCommand(),
		a.renewStateCommand("pause", "Pause a tenant's renewal schedule"),
		a.renewStateCommand("unpause", "Resume a tenant's paused renewal schedule"),
		a.renewDeleteCommand(), a.renewNowCommand(), a.renewReportCommand())
	return cmd
}

// renewScheduleResult is one line of `renew schedule`.
type renewScheduleResult struct {
	TenantID   string `json:"tenant_id"`
	ScheduleID string `json:"schedule_id"`
	Result     string `json:"result"` // created | updated
}

func (a *app) renewScheduleCommand() *cobra.Command {
	var (
		file, tenant string
		every        time.Duration
		cron         string
		catchup      time.Duration
		jitter       time.Duration
		paused       bool
		dryRun       bool
		of           renewOptionFlags
	)
	cmd := &cobra.Command{
		Use:   "schedule -f INVENTORY [--every 24h | --cron EXPR]",
		Short: "Create or update one renewal schedule per tenant",
		Long: `schedule creates, or updates in place, the Temporal Schedule hybridflow/renewal/<tenant>
for every tenant of the inventory (or only -t). Each schedule starts the Renewal
workflow on hybridflow-cloud with workflow ID hybridflow/renewal/<tenant>-<time>; a run
still going (waiting for an effective date) makes the next ones skip (overlap SKIP),
and runs missed while the server was down are caught up within --catchup-window.
--dry-run says per tenant whether its schedule would be created or updated and
writes nothing.`,
		Example: "  hybridflow renew schedule -f configs/inventory.demo.yaml --every 24h\n  hybridflow renew schedule -f inv.yaml --cron '0 3 * * *' --window 60d --lead-time 30d",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("name the inventory with -f")
			}
			if cron != "" && cmd.Flags().Changed("every") {
				return errors.New("use --every or --cron, not both")
			}
			if every <= 0 && cron == "" {
				return errors.New("--every must be positive")
			}
			_, tenants, err := inventoryTenants(file, tenant)
			if err != nil {
				return err
			}
			spec := client.ScheduleSpec{Jitter: jitter}
			if cron != "" {
				spec.CronExpressions = []string{cron}
			} else {
				spec.Intervals = []client.ScheduleIntervalSpec{{Every: every}}
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var out []renewScheduleResult
			for _, t := range tenants {
				in := workflows.RenewalInputFromTenant(t, of.mode, of.opts)
				var res renewScheduleResult
				if dryRun {
					res, err = wouldScheduleRenewal(cmd.Context(), c, t)
				} else {
					res, err = ensureRenewalSchedule(cmd.Context(), c, t, spec, in, catchup, paused)
				}
				if err != nil {
					return fmt.Errorf("schedule for %s: %w", t.ID, err)
				}
				out = append(out, res)
				if a.output != "json" {
					a.printf("%-8s %s\n", res.Result, res.ScheduleID)
				}
			}
			if a.output == "json" {
				return a.printJSON(out)
			}
			if dryRun {
				a.printf("dry run: %d renewal schedule(s) would be written (%s); nothing was changed\n", len(out), describeSpec(&spec))
				return nil
			}
			a.printf("%d renewal schedule(s); list them with `hybridflow renew list`\n", len(out))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&dryRun, "dry-run", false, "say which schedules would be created or updated; write nothing")
	fl.StringVarP(&file, "file", "f", "", "tenant inventory (required)")
	fl.StringVarP(&tenant, "tenant", "t", "", "only this tenant of the inventory")
	fl.DurationVar(&every, "every", 24*time.Hour, "run every interval")
	fl.StringVar(&cron, "cron", "", "cron expression instead of --every (e.g. '0 3 * * *')")
	fl.DurationVar(&catchup, "catchup-window", time.Hour, "run an action missed while Temporal was unavailable if this recent")
	fl.DurationVar(&jitter, "jitter", 30*time.Minute, "spread each run randomly over this much, so thousands of tenants do not start at once")
	fl.BoolVar(&paused, "paused", false, "create new schedules paused")
	of.add(cmd)
	return cmd
}

// ensureRenewalSchedule creates the tenant's schedule, or updates it in
// place (spec, action, policies) when it exists; pause state is kept.
// wouldScheduleRenewal is ensureRenewalSchedule's dry run: it only reads
// whether the schedule exists.
func wouldScheduleRenewal(ctx context.Context, c client.Client, t config.Tenant) (renewScheduleResult, error) {
	res := renewScheduleResult{TenantID: t.ID, ScheduleID: workflows.RenewalScheduleID(t.ID), Result: "would-update"}
	_, d, err := describeRenewal(ctx, c, t.ID)
	if err != nil {
		return res, err
	}
	if d == nil {
		res.Result = "would-create"
	}
	return res, nil
}

func ensureRenewalSchedule(ctx context.Context, c client.Client, t config.Tenant, spec client.ScheduleSpec, in workflows.RenewalInput, catchup time.Duration, paused bool) (renewScheduleResult, error) {
	id := workflows.RenewalScheduleID(t.ID)
	res := renewScheduleResult{TenantID: t.ID, ScheduleID: id}
	action := &client.ScheduleWorkflowAction{
		ID: workflows.RenewalWorkflowID(t.ID), Workflow: workflows.Renewal, Args: []any{in}, TaskQueue: temporalx.CloudQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SATenant.ValueSet(t.ID), workflows.SACloud.ValueSet(t.Cloud)),
		StaticSummary:         workflows.TenantSummary(t),
	}
	note := "auth certificate renewal for " + t.DisplayName
	var err error
	res.Result, _, err = upsertSchedule(ctx, c, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: catchup,
		Paused: paused, Note: note, Memo: map[string]any{"tenant": t.ID},
	})
	return res, err
}

// renewScheduleEntry is one line of `renew list`.
type renewScheduleEntry struct {
	ScheduleID string     `json:"schedule_id"`
	TenantID   string     `json:"tenant_id"`
	Paused     bool       `json:"paused"`
	Spec       string     `json:"spec"`
	Note       string     `json:"note,omitempty"`
	NextRun    *time.Time `json:"next_run,omitempty"`
	LastRun    *time.Time `json:"last_run,omitempty"`
	LastID     string     `json:"last_workflow_id,omitempty"`
}

func describeSpec(s *client.ScheduleSpec) string {
	if s == nil {
		return "-"
	}
	var parts []string
	for _, i := range s.Intervals {
		parts = append(parts, "every "+i.Every.String())
	}
	for _, c := range s.CronExpressions {
		parts = append(parts, "cron "+c)
	}
	if len(s.Calendars) > 0 {
		parts = append(parts, fmt.Sprintf("%d calendar(s)", len(s.Calendars)))
	}
	if s.Jitter > 0 {
		parts = append(parts, "jitter "+s.Jitter.String())
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// listRenewalSchedules lists every renewal schedule, sorted by ID. The
// list comes from visibility, so a schedule created a moment ago may be
// missing for a second.
func listRenewalSchedules(ctx context.Context, c client.Client) ([]renewScheduleEntry, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return nil, err
	}
	var out []renewScheduleEntry
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(e.ID, workflows.RenewalScheduleIDPrefix) {
			continue
		}
		r := renewScheduleEntry{ScheduleID: e.ID, TenantID: strings.TrimPrefix(e.ID, workflows.RenewalScheduleIDPrefix), Paused: e.Paused, Spec: describeSpec(e.Spec), Note: e.Note}
		if len(e.NextActionTimes) > 0 {
			n := e.NextActionTimes[0].UTC()
			r.NextRun = &n
		}
		if k := len(e.RecentActions); k > 0 {
			l := e.RecentActions[k-1]
			at := l.ActualTime.UTC()
			r.LastRun = &at
			if l.StartWorkflowResult != nil {
				r.LastID = l.StartWorkflowResult.WorkflowID
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ScheduleID < out[j].ScheduleID })
	return out, nil
}

func (a *app) renewListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the renewal schedules",
		Args:  cobra.NoArgs,
		RunE: a.connected(func(cmd *cobra.Command, c client.Client) error {
			rows, err := listRenewalSchedules(cmd.Context(), c)
			if err != nil {
				return fmt.Errorf("list schedules: %w", err)
			}
			if a.output == "json" {
				if rows == nil {
					rows = []renewScheduleEntry{}
				}
				return a.printJSON(rows)
			}
			if len(rows) == 0 {
				a.printf("no renewal schedules (create them with `hybridflow renew schedule -f INVENTORY`)\n")
				return nil
			}
			a.printf("%-56s %-7s %-28s %-20s %s\n", "SCHEDULE", "STATE", "SPEC", "NEXT RUN", "LAST RUN")
			for _, r := range rows {
				state := "active"
				if r.Paused {
					state = "paused"
				}
				a.printf("%-56s %-7s %-28s %-20s %s\n", r.ScheduleID, state, r.Spec, timeOrDash(r.NextRun), timeOrDash(r.LastRun))
			}
			return nil
		}),
	}
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// renewHandle finds a tenant's schedule, saying how to create it when absent.
func renewHandle(ctx context.Context, c client.Client, tenant string) (client.ScheduleHandle, error) {
	if tenant == "" {
		return nil, errors.New("name the tenant with -t")
	}
	h, d, err := describeRenewal(ctx, c, tenant)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("no renewal schedule %s (create it with `hybridflow renew schedule -f INVENTORY -t %s`)", h.GetID(), tenant)
	}
	return h, nil
}

// describeRenewal reads a tenant's renewal schedule; d is nil when the
// tenant has none.
func describeRenewal(ctx context.Context, c client.Client, tenant string) (h client.ScheduleHandle, d *client.ScheduleDescription, err error) {
	id := workflows.RenewalScheduleID(tenant)
	h = c.ScheduleClient().GetHandle(ctx, id)
	d, err = h.Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return h, nil, nil
	}
	if err != nil {
		return h, nil, fmt.Errorf("schedule %s: %w", id, err)
	}
	return h, d, nil
}

func (a *app) renewStateCommand(verb, short string) *cobra.Command {
	var tenant, note string
	cmd := &cobra.Command{
		Use:   verb + " -t TENANT",
		Short: short,
		Long: short + `. Only the schedule's state changes (the other verb
reverses it) and no tenant is touched, so there is no --dry-run.`,
		Args: cobra.NoArgs,
		RunE: a.connected(func(cmd *cobra.Command, c client.Client) error {
			h, err := renewHandle(cmd.Context(), c, tenant)
			if err != nil {
				return err
			}
			if note == "" {
				note = verb + "d with hybridflow renew " + verb
			}
			if verb == "pause" {
				err = h.Pause(cmd.Context(), client.SchedulePauseOptions{Note: note})
			} else {
				err = h.Unpause(cmd.Context(), client.ScheduleUnpauseOptions{Note: note})
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", verb, h.GetID(), err)
			}
			if a.output == "json" {
				return a.printJSON(map[string]string{"schedule_id": h.GetID(), "action": verb})
			}
			a.printf("%sd %s\n", verb, h.GetID())
			return nil
		}),
	}
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant ID")
	cmd.Flags().StringVar(&note, "note", "", "note recorded on the schedule")
	return cmd
}

func (a *app) renewDeleteCommand() *cobra.Command {
	var (
		tenant string
		yes    bool
	)
	cmd := &cobra.Command{
		Use:   "delete -t TENANT [--yes]",
		Short: "Delete a tenant's renewal schedule (a running renewal goes on)",
		Long: `delete removes the tenant's renewal schedule, so its auth certificate is no longer
renewed automatically (a renewal already running goes on). On a terminal it asks
first; anywhere else it needs --yes. There is no --dry-run: renew list shows the
schedule it would delete.`,
		Args: cobra.NoArgs,
		RunE: a.connected(func(cmd *cobra.Command, c client.Client) error {
			h, err := renewHandle(cmd.Context(), c, tenant)
			if err != nil {
				return err
			}
			if err := confirm(cmd, fmt.Sprintf("Delete renewal schedule %s? The certificate will no longer be renewed automatically.", h.GetID()), yes); err != nil {
				return err
			}
			if err := h.Delete(cmd.Context()); err != nil {
				return fmt.Errorf("delete %s: %w", h.GetID(), err)
			}
			if a.output == "json" {
				return a.printJSON(map[string]string{"schedule_id": h.GetID(), "action": "delete"})
			}
			a.printf("deleted %s\n", h.GetID())
			return nil
		}),
	}
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant ID")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the deletion without being asked")
	return cmd
}

func (a *app) renewNowCommand() *cobra.Command {
	var (
		tenant, file string
		dryRun       bool
	)
	cmd := &cobra.Command{
		Use:   "now -t TENANT [--dry-run -f INVENTORY]",
		Short: "Trigger a tenant's renewal schedule now",
		Long: `now triggers the tenant's schedule at once. The schedule's overlap policy applies: while
a renewal of the tenant is still running (waiting for an effective date), nothing new
starts. Follow it in the Web UI: HybridflowTenant = "<tenant>".

--dry-run (with -f INVENTORY) triggers nothing: a read-only Renewal run reads the
tenant's auth certificates and keys, as renew report does, and says what a renewal
would do now (nothing, renew, finish a staged certificate, or the emergency path),
judged with the tenant's schedule's window and emergency threshold (as set by
renew schedule --window / --emergency-threshold), or the defaults (60d, 1d) when
the tenant has no schedule.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dryRun {
				return a.renewNowDryRun(cmd.Context(), file, tenant)
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			h, err := renewHandle(cmd.Context(), c, tenant)
			if err != nil {
				return err
			}
			if err := h.Trigger(cmd.Context(), client.ScheduleTriggerOptions{}); err != nil {
				return fmt.Errorf("trigger %s: %w", h.GetID(), err)
			}
			if a.output == "json" {
				return a.printJSON(map[string]string{"schedule_id": h.GetID(), "action": "trigger", "workflow_id_prefix": workflows.RenewalWorkflowID(tenant) + "-"})
			}
			a.printf("triggered %s; the run's workflow ID starts with %s-\n", h.GetID(), workflows.RenewalWorkflowID(tenant))
			return nil
		},
	}
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant ID")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "trigger nothing: read the certificates and say what a renewal would do (needs -f)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "with --dry-run: the tenant inventory")
	return cmd
}

// renewWould says what a renewal run decides for a report status.
var renewWould = map[string]string{
	"expired":     "a renewal now would take the emergency path (the current certificate has expired)",
	"emergency":   "a renewal now would take the emergency path (the current certificate is missing or expires within the emergency threshold)",
	"due":         "a renewal now would create, stage and upload a new certificate",
	"staged":      "a renewal now would go on with the staged certificate (publish it on its effective date)",
	"key-missing": "a renewal now would renew nothing; the current certificate's key is not in Entra (run setup)",
	"ok":          "a renewal now would do nothing: the current certificate is outside the renewal window",
}

func (a *app) renewNowDryRun(ctx context.Context, file, tenant string) error {
	if file == "" || tenant == "" {
		return errors.New("--dry-run reads the tenant from the inventory: name it with -f and the tenant with -t")
	}
	_, ts, err := inventoryTenants(file, tenant)
	if err != nil {
		return err
	}
	t := ts[0]
	c, cfg, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	dc, err := temporalx.DataConverter(cfg.Temporal, a.getenv)
	if err != nil {
		return err
	}
	sched, scheduled, err := scheduledRenewalOptions(ctx, c, dc, t.ID)
	if err != nil {
		return err
	}
	o := withRenewDefaults(sched)
	judged := fmt.Sprintf("judged with the schedule's window %s and emergency threshold %s", days(o.Window), days(o.EmergencyThreshold))
	if !scheduled {
		judged = fmt.Sprintf("judged with the default window %s and emergency threshold %s (the tenant has no schedule)", days(o.Window), days(o.EmergencyThreshold))
	}
	rows := renewalReport(ctx, c, []config.Tenant{t}, workflows.RenewalModeDetect, o, 1, 5*time.Minute)
	r := rows[0]
	would := renewWould[r.Status]
	if a.output == "json" {
		return a.printJSON(map[string]any{"dry_run": true, "report": r, "would": would, "window": o.Window.String(),
			"emergency_threshold": o.EmergencyThreshold.String(), "scheduled": scheduled})
	}
	a.printReportRows(rows)
	if r.Status == "error" {
		return silentExit{code: 1}
	}
	a.printf("dry run: %s; %s; nothing was triggered\n", would, judged)
	return nil
}

// scheduledRenewalOptions reads the options the tenant's renewal schedule
// starts its runs with; scheduled is false when there is no schedule.
func scheduledRenewalOptions(ctx context.Context, c client.Client, dc converter.DataConverter, tenant string) (o workflows.RenewalOptions, scheduled bool, err error) {
	h, d, err := describeRenewal(ctx, c, tenant)
	if err != nil || d == nil {
		return o, false, err
	}
	id := h.GetID()
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok || len(act.Args) != 1 {
		return o, true, fmt.Errorf("schedule %s does not start one Renewal workflow with one input (recreate it with renew schedule)", id)
	}
	p, ok := act.Args[0].(*commonpb.Payload)
	if !ok {
		return o, true, fmt.Errorf("schedule %s: workflow input of type %T", id, act.Args[0])
	}
	var in workflows.RenewalInput
	if err := dc.FromPayload(p, &in); err != nil {
		return o, true, fmt.Errorf("schedule %s: decode its Renewal input: %w", id, err)
	}
	return in.Options, true, nil
}

// days prints a duration as the renew flags take it ("45d").
func days(d time.Duration) string { return dayDuration{&d}.String() }

// renewReportRow is one tenant in `renew report`; --output json prints the
// same rows in the same order.
type renewReportRow struct {
	TenantID    string                        `json:"tenant_id"`
	DisplayName string                        `json:"display_name,omitempty"`
	Cloud       string                        `json:"cloud"`
	Site        string                        `json:"site"`
	Mode        string                        `json:"mode,omitempty"`
	DaysLeft    *int                          `json:"days_left"` // current certificate; null when unknown
	Status      string                        `json:"status"`    // expired | emergency | due | staged | ok | key-missing | error
	Current     *workflows.RenewalCertificate `json:"current,omitempty"`
	Next        *workflows.RenewalCertificate `json:"next,omitempty"`
	EntraObject string                        `json:"entra_object,omitempty"`
	Error       string                        `json:"error,omitempty"`
}

func reportStatus(st workflows.RenewalState, o workflows.RenewalOptions) string {
	c := st.Current
	switch {
	case c == nil || !c.InStore:
		return "emergency"
	case c.NotAfter.Before(st.AsOf):
		return "expired"
	case !c.NotAfter.After(st.AsOf.Add(o.EmergencyThreshold)):
		return "emergency"
	case st.Next != nil:
		return "staged"
	case !c.NotAfter.After(st.AsOf.Add(o.Window)):
		return "due"
	case !c.InEntra:
		return "key-missing"
	}
	return "ok"
}

// sortReport: ascending days left, unknown last, then by tenant.
func sortReport(rows []renewReportRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].DaysLeft, rows[j].DaysLeft
		switch {
		case a == nil && b == nil:
		case a == nil:
			return false
		case b == nil:
			return true
		case *a != *b:
			return *a < *b
		}
		return rows[i].TenantID < rows[j].TenantID
	})
}

func (a *app) renewReportCommand() *cobra.Command {
	var (
		file        string
		concurrency int
		timeout     time.Duration
		of          renewOptionFlags
	)
	cmd := &cobra.Command{
		Use:   "report -f INVENTORY",
		Short: "Upcoming auth-certificate expiry of every tenant, soonest first",
		Long: `report reads every tenant's auth config and certificates (and whether their keys are in
Entra) through a read-only Renewal run per tenant on the workers (ID
hybridflow/renewal-report/<tenant>): the CLI never talks to Exchange itself. Tenants
are listed by days left on the current certificate, soonest first; --output json
gives the same rows.`,
		Example: "  hybridflow renew report -f configs/inventory.demo.yaml\n  hybridflow renew report -f inv.yaml -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := loadInventory(file)
			if err != nil {
				return err
			}
			c, _, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			rows := renewalReport(cmd.Context(), c, inv.Tenants, of.mode, of.opts, max(concurrency, 1), timeout)
			if a.output == "json" {
				return a.printJSON(rows)
			}
			a.printReportRows(rows)
			for _, r := range rows {
				if r.Status == "error" {
					return silentExit{code: 1}
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "tenant inventory (required)")
	fl.IntVar(&concurrency, "concurrency", 8, "tenants read at once")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "give up on a tenant after this long")
	of.add(cmd)
	return cmd
}

// renewalReport runs a read-only Renewal per tenant, at most concurrency
// at once, and returns the rows sorted.
func renewalReport(ctx context.Context, c client.Client, tenants []config.Tenant, mode string, o workflows.RenewalOptions, concurrency int, timeout time.Duration) []renewReportRow {
	o.ReportOnly = true
	rows := make([]renewReportRow, len(tenants))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, t := range tenants {
		rows[i] = renewReportRow{TenantID: t.ID, DisplayName: t.DisplayName, Cloud: t.Cloud, Site: t.Site}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			run, err := c.ExecuteWorkflow(tctx, client.StartWorkflowOptions{
				ID: workflows.RenewalReportWorkflowID(t.ID), TaskQueue: temporalx.CloudQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				WorkflowExecutionTimeout: timeout,
				StaticSummary:            workflows.TenantSummary(t),
			}, workflows.Renewal, workflows.RenewalInputFromTenant(t, mode, o))
			var st workflows.RenewalState
			if err == nil {
				err = run.Get(tctx, &st)
			}
			r := &rows[i]
			if err != nil {
				r.Status, r.Error = "error", err.Error()
				return
			}
			d := st.DaysLeft
			r.Mode, r.DaysLeft, r.Current, r.Next, r.EntraObject = st.Mode, &d, st.Current, st.Next, st.EntraObject
			if st.Current == nil {
				r.DaysLeft = nil
			}
			r.Status = reportStatus(st, withRenewDefaults(o))
		}()
	}
	wg.Wait()
	sortReport(rows)
	return rows
}

func withRenewDefaults(o workflows.RenewalOptions) workflows.RenewalOptions {
	if o.Window <= 0 {
		o.Window = workflows.DefaultRenewalWindow
	}
	if o.EmergencyThreshold <= 0 {
		o.EmergencyThreshold = workflows.DefaultEmergencyThreshold
	}
	return o
}

func shortThumb(tp string) string {
	if len(tp) > 8 {
		return tp[:8] + "…"
	}
	return tp
}

func (a *app) printReportRows(rows []renewReportRow) {
	a.printf("%5s  %-36s  %-14s  %-18s  %-11s  %-34s  %s\n", "DAYS", "TENANT", "NAME", "MODE", "STATUS", "CURRENT", "NEXT")
	for _, r := range rows {
		days := "?"
		if r.DaysLeft != nil {
			days = strconv.Itoa(*r.DaysLeft)
		}
		cur, next := "-", "-"
		if c := r.Current; c != nil {
			cur = fmt.Sprintf("%s until %s", shortThumb(c.Thumbprint), c.NotAfter.UTC().Format(time.DateOnly))
			if !c.InEntra {
				cur += " (no key)"
			}
		}
		if n := r.Next; n != nil {
			next = fmt.Sprintf("%s until %s (%dd)", shortThumb(n.Thumbprint), n.NotAfter.UTC().Format(time.DateOnly), n.DaysLeft)
			if n.Effective != nil {
				next += " effective " + n.Effective.UTC().Format(time.DateOnly)
			}
		}
		if r.Error != "" {
			cur = r.Error
		}
		a.printf("%5s  %-36s  %-14s  %-18s  %-11s  %-34s  %s\n", days, r.TenantID, trunc(r.DisplayName, 14), r.Mode, r.Status, cur, next)
	}
}

func trunc(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
