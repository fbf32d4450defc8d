package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).listCommand, (*app).resumeCommand)
}

// tenantRow is one setup as visibility (search attributes) shows it.
type tenantRow struct {
	TenantID   string `json:"tenant_id"`
	Cloud      string `json:"cloud"`
	State      string `json:"state"`
	Step       string `json:"step"`
	Status     string `json:"status"`
	WorkflowID string `json:"workflow_id"`
}

// listSetups reads setups from visibility. Search attributes are what the
// Web UI filters on too, e.g. HybridflowState = "paused".
func listSetups(ctx context.Context, c client.Client, query string) ([]tenantRow, error) {
	q := "WorkflowType = 'Setup'"
	if query != "" {
		q += " AND (" + query + ")"
	}
	var rows []tenantRow
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token, PageSize: 500})
		if err != nil {
			return nil, fmt.Errorf("list setups (%s): %w", q, err)
		}
		for _, e := range resp.GetExecutions() {
			r := tenantRow{WorkflowID: e.GetExecution().GetWorkflowId(), Status: strings.ToLower(strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))}
			for k, p := range e.GetSearchAttributes().GetIndexedFields() {
				var v string
				_ = converterFromPayload(p, &v)
				switch k {
				case workflows.SATenant.GetName():
					r.TenantID = v
				case workflows.SACloud.GetName():
					r.Cloud = v
				case workflows.SAState.GetName():
					r.State = v
				case workflows.SAStep.GetName():
					r.Step = v
				}
			}
			rows = append(rows, r)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].TenantID < rows[j].TenantID })
	return rows, nil
}

func (a *app) listCommand() *cobra.Command {
	var state, step string
	cmd := &cobra.Command{
		Use:   "list [--state S] [--step S]",
		Short: "List tenants' setups and their state, from the search attributes",
		Long: `list shows the latest setup of every tenant with its state (running, paused,
verified, aborted, failed), step and cloud, read from Temporal's visibility
store — the same search attributes the Web UI filters on.

STEP is the step at the setup's last change of state: where it paused, failed
or finished. A running setup publishes its step only then (every upsert costs
a history event and a visibility write), so for a running tenant STEP is where
it started or was last resumed; its live step is in the workflow's 'state'
query (Web UI), and 'hybridflow setup -f INVENTORY -t TENANT' attaches to it
and follows its steps. Setups started by workers older than this release publish every
step.`,
		Example: "  hybridflow list --state paused",
		Args:    cobra.NoArgs,
		RunE: a.connected(func(cmd *cobra.Command, c client.Client) error {
			rows, err := listSetups(cmd.Context(), c, filterQuery(state, step))
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(rows)
			}
			a.printf("%-38s %-8s %-10s %-28s %s\n", "TENANT", "CLOUD", "STATE", "STEP", "WORKFLOW")
			for _, r := range rows {
				a.printf("%-38s %-8s %-10s %-28s %s\n", r.TenantID, r.Cloud, r.State, r.Step, r.Status)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&state, "state", "", "only setups in this state (e.g. paused)")
	cmd.Flags().StringVar(&step, "step", "", "only setups whose state last changed at this step (e.g. paused at it)")
	return cmd
}

func filterQuery(state, step string) string {
	var parts []string
	if state != "" {
		parts = append(parts, fmt.Sprintf("%s = '%s'", workflows.SAState.GetName(), escapeQuery(state)))
	}
	if step != "" {
		parts = append(parts, fmt.Sprintf("%s = '%s'", workflows.SAStep.GetName(), escapeQuery(step)))
	}
	return strings.Join(parts, " AND ")
}

// escapeQuery keeps operator input a string literal in the list query.
func escapeQuery(s string) string { return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) }

// bulkTargets finds paused setups matching the filters; the error type is
// not a search attribute, so it is checked through each workflow's query.
func bulkTargets(ctx context.Context, c client.Client, step, errorType string) ([]tenantRow, error) {
	q := filterQuery(workflows.StatePaused, step) + " AND ExecutionStatus = 'Running'"
	rows, err := listSetups(ctx, c, q)
	if err != nil {
		return nil, err
	}
	var out []tenantRow
	for _, r := range rows {
		if errorType != "" {
			st, err := querySetup(ctx, c, r.WorkflowID)
			if err != nil || st.Paused == nil || !strings.EqualFold(st.Paused.ErrorType, errorType) {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// sendOperator sends one operator update to one setup, Lync or dry-run
// plan workflow and returns the step it applied to. The Update is named
// after the pause it answers (decisionID): running the same command again,
// after a timeout or a lost connection, sends the same Update, which the
// workflow answers with its first answer instead of rejecting it as "not
// paused" when the first one was applied.
func sendOperator(ctx context.Context, c client.Client, name, id, reason string) (string, error) {
	var st struct {
		Paused    *workflows.Pause `json:"paused"`
		LastPause *workflows.Pause `json:"last_pause"`
	}
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: read the pause it answers: %w", name, id, err)
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateID: decisionID(name, st.Paused, st.LastPause),
		UpdateName: name, Args: []any{workflows.OperatorAction{Reason: reason}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, id, err)
	}
	var step string
	if err := h.Get(ctx, &step); err != nil {
		return "", fmt.Errorf("%s %s: %w", name, id, err)
	}
	return step, nil
}

// decisionID is the Update ID of decision name on the workflow's pause, or
// on its last pause when none is open (the decision may already have been
// applied); "" (a fresh ID) when it never paused. A step paused twice has
// two pause times, so a decision on the second pause is a new Update.
func decisionID(name string, paused, last *workflows.Pause) string {
	p := paused
	if p == nil {
		p = last
	}
	if p == nil {
		return ""
	}
	return name + "/" + p.Step + "/" + p.Since.UTC().Format(time.RFC3339Nano)
}

func (a *app) resumeCommand() *cobra.Command {
	var (
		tf     tenantFlags
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "resume -f INVENTORY -t TENANT [--dry-run]",
		Short: "Start a failed, aborted or terminated tenant's setup again from scratch",
		Long: `resume starts a new setup run for a tenant whose last run ended without success.
Every step is idempotent, so the new run skips what is already configured and
does the rest. A running setup is left alone (use retry/skip/abort on it).
--dry-run prints what the new run would change and writes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := tf.load()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if dryRun {
				return a.planTenant(ctx, t, workflows.SetupOptions{}, workflows.PlanWorkflowID(t.ID))
			}
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.SetupWorkflowID(t.ID)
			if d, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil &&
				d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				return fmt.Errorf("the setup of %s is still running; act on it with retry, skip or abort", t.ID)
			}
			in := workflows.InputFromTenant(t, workflows.SetupOptions{})
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: temporalx.CloudQueue,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				TypedSearchAttributes:    workflows.SetupStartAttributes(in),
				StaticSummary:            workflows.TenantSummary(t),
			}, workflows.Setup, in)
			if err != nil {
				return fmt.Errorf("resume %s: %w", t.ID, err)
			}
			return a.follow(ctx, c, id, run)
		},
	}
	tf.add(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what a new run would change; write nothing")
	return cmd
}

var errNoneMatched = errors.New("no paused setup matches")

func converterFromPayload(p *commonpb.Payload, v any) error {
	return converter.GetDefaultDataConverter().FromPayload(p, v)
}
