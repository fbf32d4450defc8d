package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// verifyScheduleFlags are verify's schedule flags.
type verifyScheduleFlags struct {
	spec    string
	delete  bool
	yes     bool
	paused  bool
	catchup time.Duration
	jitter  time.Duration
}

func (f *verifyScheduleFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.spec, "schedule", "", "run periodically as the Temporal Schedule hybridflow/verify/<name>: an interval (6h) or a cron expression ('0 * * * *')")
	fl.BoolVar(&f.delete, "schedule-delete", false, "delete the inventory's verify schedule (asks first; --yes without a terminal)")
	fl.BoolVar(&f.yes, "yes", false, "with --schedule-delete: confirm without being asked")
	fl.BoolVar(&f.paused, "paused", false, "with --schedule: create the schedule paused")
	fl.DurationVar(&f.catchup, "catchup-window", time.Hour, "with --schedule: run a check missed while Temporal was unavailable if this recent")
	fl.DurationVar(&f.jitter, "jitter", 0, "with --schedule: start each run at a random moment within this much after its time")
}

// check refuses flag combinations that mean nothing, before any call.
func (f *verifyScheduleFlags) check(cmd *cobra.Command) error {
	if f.spec == "" {
		for _, n := range []string{"paused", "catchup-window", "jitter"} {
			if cmd.Flags().Changed(n) {
				return fmt.Errorf("--%s only applies with --schedule", n)
			}
		}
	}
	if cmd.Flags().Changed("yes") && !f.delete {
		return errors.New("--yes only applies with --schedule-delete")
	}
	if f.catchup < 0 || f.jitter < 0 {
		return errors.New("--catchup-window and --jitter must not be negative")
	}
	if cmd.Flags().Changed("schedule") {
		if _, err := parseVerifySpec(f.spec, f.jitter); err != nil {
			return err
		}
	}
	return nil
}

// parseVerifySpec reads --schedule: a Go duration is an interval, anything
// else a cron expression (five fields, or a @-shorthand such as @hourly),
// which the server checks further when the schedule is written.
func parseVerifySpec(s string, jitter time.Duration) (client.ScheduleSpec, error) {
	spec := client.ScheduleSpec{Jitter: jitter}
	s = strings.TrimSpace(s)
	if s == "" {
		return spec, errors.New("--schedule: give an interval (6h) or a cron expression ('0 * * * *')")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < time.Second {
			return spec, fmt.Errorf("--schedule %q: the interval must be at least 1s", s)
		}
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: d}}
		return spec, nil
	}
	if n := len(strings.Fields(s)); !strings.HasPrefix(s, "@") && (n < 5 || n > 7) {
		return spec, fmt.Errorf("--schedule %q is neither an interval (6h, 30m) nor a cron expression of five fields ('0 * * * *')", s)
	}
	spec.CronExpressions = []string{s}
	return spec, nil
}

// verifyScheduleResult is what --schedule prints (or -o json).
type verifyScheduleResult struct {
	ScheduleID string `json:"schedule_id"`
	Result     string `json:"result"` // created | updated
	Spec       string `json:"spec"`
	Tenants    int    `json:"tenants"`
	Inventory  string `json:"inventory,omitempty"` // by path: the worker reads it at each run
}

// verifySchedule creates the inventory's verify schedule, or updates its
// spec, action and policies in place (its pause state is kept).
func (a *app) verifySchedule(ctx context.Context, c client.Client, f verifyFlags, in workflows.VerifyInput) error {
	spec, err := parseVerifySpec(f.sched.spec, f.sched.jitter)
	if err != nil {
		return err
	}
	id := workflows.VerifyScheduleID(in.Name)
	action := &client.ScheduleWorkflowAction{
		ID: workflows.VerifyWorkflowID(in.Name), Workflow: workflows.VerifyInventory, Args: []any{in},
		TaskQueue: temporalx.CloudQueue, WorkflowExecutionTimeout: 6 * time.Hour,
	}
	res := verifyScheduleResult{ScheduleID: id, Spec: describeSpec(&spec), Tenants: len(in.Tenants), Inventory: in.InventoryPath}
	var updating bool
	res.Result, updating, err = upsertSchedule(ctx, c, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: f.sched.catchup,
		Paused: f.sched.paused, Note: "drift check of inventory " + in.Name,
	})
	switch {
	case err != nil && updating:
		return fmt.Errorf("update schedule %s: %w", id, err)
	case err != nil:
		return fmt.Errorf("--schedule: create schedule %s: %w", id, err)
	}
	if in.InventoryPath != "" {
		res.Tenants = 0
	}
	if a.output == "json" {
		return a.printJSON(res)
	}
	a.printf("%s %s (%s)\n", res.Result, id, res.Spec)
	if in.InventoryPath != "" {
		a.printf("each run reads %s on the cloud worker: keep the file there\n", in.InventoryPath)
	} else {
		a.printf("each run checks the %d tenant(s) of the inventory as it is now; run this again after changing it\n", len(in.Tenants))
	}
	a.printf("runs: Web UI query WorkflowType = \"VerifyInventory\"; drifted ones: HybridflowDrift = %q\n", workflows.DriftDrifted)
	return nil
}

// verifyScheduleDelete removes the inventory's verify schedule; a run
// already going finishes.
func (a *app) verifyScheduleDelete(cmd *cobra.Command, f verifyFlags) error {
	if f.sched.spec != "" {
		return errors.New("use --schedule or --schedule-delete, not both")
	}
	name, err := f.verifyName()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	c, _, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.VerifyScheduleID(name)
	h := c.ScheduleClient().GetHandle(ctx, id)
	if _, err := h.Describe(ctx); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return fmt.Errorf("no verify schedule %s (create it with `hybridflow verify -f INVENTORY --schedule 6h`)", id)
		}
		return fmt.Errorf("schedule %s: %w", id, err)
	}
	if err := confirm(cmd, fmt.Sprintf("Delete verify schedule %s? Drift and certificate expiry of its tenants will no longer be checked.", id), f.sched.yes); err != nil {
		return err
	}
	if err := h.Delete(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if a.output == "json" {
		return a.printJSON(map[string]string{"schedule_id": id, "action": "delete"})
	}
	a.printf("deleted %s\n", id)
	return nil
}
