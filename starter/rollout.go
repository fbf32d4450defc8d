package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func init() {
	extraCommands = append(extraCommands, (*app).rolloutCommand, (*app).statusCommand)
}

// inlineLimit: inventories up to this size travel inside the workflow
// input; larger ones by file reference, read page by page by the worker.
const inlineLimit = 100

var nameRE = regexp.MustCompile(`[^a-z0-9-]+`)

// rolloutName derives a stable rollout name from the inventory file, so
// that starting the same rollout again attaches to the running one.
func rolloutName(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	return strings.Trim(nameRE.ReplaceAllString(strings.ToLower(base), "-"), "-")
}

func (a *app) rolloutCommand() *cobra.Command {
	var (
		file  string
		name  string
		watch bool
		in    workflows.RolloutInput
	)
	cmd := &cobra.Command{
		Use:   "rollout -f INVENTORY [--concurrency N] [--watch]",
		Short: "Set up every tenant of an inventory, with bounded concurrency",
		Long: `rollout starts (or attaches to) the rollout workflow hybridflow/rollout/<name>,
which runs one setup per tenant under its deterministic ID, never more than
--concurrency at once, and never two setups of one tenant at a time. A tenant
whose setup fails pauses for an operator (retry, skip, abort) while the rest
go on. --watch follows progress until the rollout ends.`,
		Example: "  hybridflow rollout -f configs/inventory.demo.yaml --concurrency 5 --watch",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := loadInventory(file)
			if err != nil {
				return err
			}
			if name == "" {
				name = rolloutName(file)
			}
			if in.Setup.DryRun && !strings.HasSuffix(name, planSuffix) {
				// A dry run under the real rollout's ID would attach to a
				// running rollout (and a later real one to the dry run).
				name += planSuffix
			}
			in.Name = name
			if len(inv.Tenants) <= inlineLimit {
				in.Tenants = inv.Tenants
			} else if in.InventoryPath, err = filepath.Abs(file); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.RolloutWorkflowID(name)
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: id, TaskQueue: temporalx.CloudQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				StaticSummary:            workflows.RolloutSummary(name, len(inv.Tenants)),
			}, workflows.Rollout, in)
			if err != nil {
				return fmt.Errorf("start rollout %s: %w", id, err)
			}
			if a.output != "json" {
				a.printf("rollout %s (%d tenants, concurrency %d) run %s\n", id, len(inv.Tenants), max(in.Concurrency, 1), run.GetRunID())
			}
			if !watch {
				if a.output == "json" {
					return a.printJSON(map[string]string{"workflow_id": id, "run_id": run.GetRunID()})
				}
				a.printf("follow it with: hybridflow status %s --watch\n", name)
				return nil
			}
			return a.watchRollout(ctx, c, name)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "tenant inventory (required)")
	f.StringVar(&name, "name", "", "rollout name (default: from the inventory file name)")
	f.IntVar(&in.Concurrency, "concurrency", workflows.DefaultConcurrency, "setups running at once")
	f.BoolVar(&watch, "watch", false, "follow progress until the rollout ends")
	f.StringVar(&in.Setup.FailurePolicy, "on-failure", workflows.PolicyPause, "pause, compensate or fail (per tenant)")
	f.BoolVar(&in.Setup.DryRun, "dry-run", false, "plan every tenant, write nothing (runs as rollout <name>-plan)")
	f.DurationVar(&in.Setup.VerifyDeadline, "verify-deadline", 30*time.Minute, "how long verification waits for propagation, per tenant")
	return cmd
}

func (a *app) statusCommand() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status [ROLLOUT]",
		Short: "Show a rollout's progress: bar, counts per state, rate, ETA and paused tenants",
		Long: `status queries a rollout (default: the only one running) and prints its progress.
On a terminal --watch redraws a progress bar; otherwise it prints one line per
change, for logs and scripts.`,
		Example: "  hybridflow status inventory-demo --watch",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := a.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			name := ""
			if len(args) == 1 {
				name = args[0]
			} else if name, err = onlyRollout(ctx, c); err != nil {
				return err
			}
			if watch {
				return a.watchRollout(ctx, c, name)
			}
			p, err := queryRollout(ctx, c, name)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(p)
			}
			a.printProgress(p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow until the rollout ends")
	return cmd
}

// onlyRollout finds the single running rollout, or says how to choose.
func onlyRollout(ctx context.Context, c client.Client) (string, error) {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'Rollout' AND ExecutionStatus = 'Running'"})
	if err != nil {
		return "", fmt.Errorf("list rollouts: %w", err)
	}
	var names []string
	for _, e := range resp.GetExecutions() {
		names = append(names, strings.TrimPrefix(e.GetExecution().GetWorkflowId(), workflows.RolloutWorkflowID("")))
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", errors.New("no rollout is running; name one: hybridflow status <name>")
	}
	sort.Strings(names)
	return "", fmt.Errorf("several rollouts are running (%s); name one", strings.Join(names, ", "))
}

func queryRollout(ctx context.Context, c client.Client, name string) (workflows.RolloutProgress, error) {
	var p workflows.RolloutProgress
	id := workflows.RolloutWorkflowID(name)
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	if err != nil {
		return p, fmt.Errorf("query %s: %w", id, err)
	}
	return p, v.Get(&p)
}

// isTerminal reports whether w is a character device (a person watching).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// watchRollout follows a rollout until it finishes: a redrawn bar on a
// terminal, one line per change otherwise; the summary at the end.
func (a *app) watchRollout(ctx context.Context, c client.Client, name string) error {
	tty := isTerminal(a.stdout) && a.output != "json"
	last := ""
	id := workflows.RolloutWorkflowID(name)
	var quiet settleCheck
	for {
		p, err := queryRollout(ctx, c, name)
		if err != nil {
			// Between runs (continue-as-new) or after completion the query
			// may miss; completion is read from the result below.
			var res workflows.RolloutProgress
			if gerr := c.GetWorkflow(ctx, id, "").Get(ctx, &res); gerr == nil {
				p = res
			} else if ctx.Err() != nil {
				return ctx.Err()
			} else {
				time.Sleep(time.Second)
				continue
			}
		}
		if a.output != "json" {
			line := progressLine(p)
			if tty {
				a.printf("\r\033[K%s", line)
				if len(p.Attention) > 0 && line != last {
					a.printf("\n")
					a.printAttention(p)
				}
			} else if line != last {
				a.printf("%s\n", line)
			}
			last = line
		}
		if quiet.done(p) {
			if tty {
				a.printf("\n")
			}
			if a.output == "json" {
				return a.printJSON(p)
			}
			a.printSummary(p)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// settleCheck follows a rollout poll by poll: done once it finished, or
// once it was settled at two consecutive polls. One poll is not enough:
// right after an operator's retry the setup has resumed, but its signal
// may not have reached the rollout yet, which still counts it paused.
type settleCheck struct{ was bool }

func (c *settleCheck) done(p workflows.RolloutProgress) bool {
	now := settled(p)
	done := p.Finished || (now && c.was)
	c.was = now
	return done
}

// settled: every tenant has finished or waits for an operator, so nothing
// more happens until someone acts; watching longer shows nothing new.
func settled(p workflows.RolloutProgress) bool {
	paused := 0
	for _, t := range p.Attention {
		if t.State == workflows.StatePaused {
			paused++
		}
	}
	return p.Total > 0 && p.Pending == 0 && p.Running > 0 && p.Running == paused
}

func progressBar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	n := done * width / total
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func countsText(p workflows.RolloutProgress) string {
	keys := make([]string, 0, len(p.Counts))
	for k := range p.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{fmt.Sprintf("running %d", p.Running), fmt.Sprintf("pending %d", p.Pending)}
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, p.Counts[k]))
	}
	paused := 0
	for _, t := range p.Attention {
		if t.State == workflows.StatePaused {
			paused++
		}
	}
	if paused > 0 {
		parts = append(parts, fmt.Sprintf("paused %d", paused))
	}
	return strings.Join(parts, ", ")
}

func progressLine(p workflows.RolloutProgress) string {
	pct := 0
	if p.Total > 0 {
		pct = p.Done * 100 / p.Total
	}
	s := fmt.Sprintf("%s %s %d/%d (%d%%) %s | %.1f/min", p.Name, progressBar(p.Done, p.Total, 30), p.Done, p.Total, pct, countsText(p), p.PerMinute)
	if p.ETA > 0 && !p.Finished {
		s += " | ETA " + p.ETA.Round(time.Second).String()
	}
	if p.Paused {
		s += " | ROLLOUT PAUSED"
	}
	return s
}

func (a *app) printAttention(p workflows.RolloutProgress) {
	for _, t := range p.Attention {
		a.printf("  %-8s %s at %s: %s (%s)\n", t.State, t.TenantID, t.Step, t.Error, t.ErrorType)
	}
}

func (a *app) printProgress(p workflows.RolloutProgress) {
	a.printf("%s\n", progressLine(p))
	a.printAttention(p)
}

// printSummary is the table at the end of a rollout.
func (a *app) printSummary(p workflows.RolloutProgress) {
	a.printf("\nRollout %s: %d tenants in %s (%.1f/min), %d continue-as-new\n", p.Name, p.Total, p.Elapsed.Round(time.Second), p.PerMinute, p.ContinuedAsNew)
	a.printf("  %-10s %6s\n", "STATE", "TENANTS")
	keys := make([]string, 0, len(p.Counts))
	for k := range p.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.printf("  %-10s %6d\n", k, p.Counts[k])
	}
	if len(p.Attention) > 0 {
		a.printf("\nNeeds attention:\n")
		a.printAttention(p)
		a.printf("\nRetry paused tenants with: hybridflow retry --all-paused   (or -t TENANT)\n")
	}
}
