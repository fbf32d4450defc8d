package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/doctor"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

func (a *app) doctorCommand() *cobra.Command {
	var (
		inventory string
		freshness time.Duration
		wait      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor [-f INVENTORY]",
		Short: "Check Temporal, the namespace, search attributes and a worker on every task queue",
		Long: `doctor checks that Temporal answers, the namespace exists, hybridflow's search
attributes are registered, and a live worker polls every task queue the inventory
needs (hybridflow-cloud, and hybridflow-onprem-<site> / hybridflow-lync-<site> for
each site it names). Without -f only the cloud queue is checked. A failed check
says what is missing and what to do. Exit status 1 when not healthy.`,
		Example: "  hybridflow doctor -f configs/inventory.example.yaml\n  hybridflow doctor --wait 60s -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var inv *config.Inventory
			if inventory != "" {
				var err error
				if inv, err = config.LoadInventory(inventory); err != nil {
					return fmt.Errorf("inventory: %w", err)
				}
			}
			ctx := cmd.Context()
			c, cfg, err := a.client(ctx)
			var report doctor.Report
			if err != nil {
				if cfg == nil {
					return err
				}
				report = doctor.Report{Address: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace,
					Checks: []doctor.Check{{Name: "temporal reachable", Detail: err.Error(), Hint: "start the server (`make server`) or fix temporal.address"}}}
			} else {
				defer c.Close()
				opts := doctor.Options{
					Address: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace,
					Queues:           temporalx.QueuesForInventory(inv),
					SearchAttributes: workflows.SearchAttributes,
					PollerFreshness:  freshness,
				}
				deadline := time.Now().Add(wait)
				for {
					rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					report = doctor.Run(rctx, c, opts)
					cancel()
					if report.Healthy || time.Now().After(deadline) || ctx.Err() != nil {
						break
					}
					time.Sleep(time.Second)
				}
			}
			if a.output == "json" {
				if err := a.printJSON(report); err != nil {
					return err
				}
			} else {
				a.printReport(report)
			}
			if !report.Healthy {
				return silentExit{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&inventory, "file", "f", "", "inventory whose sites need workers")
	f.DurationVar(&freshness, "poller-freshness", doctor.DefaultPollerFreshness, "a worker last seen longer ago than this counts as gone")
	f.DurationVar(&wait, "wait", 0, "keep checking until healthy or this long has passed (for scripts that just started a worker)")
	return cmd
}

func (a *app) printReport(r doctor.Report) {
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		a.printf("%s  %-28s %s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Hint != "" {
			a.printf("      → %s\n", c.Hint)
		}
	}
	if r.Healthy {
		a.printf("healthy: Temporal %s, namespace %s\n", r.Address, r.Namespace)
	} else {
		a.printf("NOT healthy: Temporal %s, namespace %s\n", r.Address, r.Namespace)
	}
}
