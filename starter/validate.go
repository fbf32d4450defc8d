package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hybridflow/hybridflow/internal/config"
)

type validateResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Tenants  int              `json:"tenants"`
	Problems []config.Problem `json:"problems"`
}

func (a *app) validateCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f INVENTORY [-f INVENTORY...]",
		Short: "Check tenant inventories offline and report every problem with file, line and field",
		Long: `validate reads each inventory strictly (unknown fields are errors) and checks every
value before anything is written anywhere: tenant GUIDs, clouds, DNS names and the
cloud's domain suffixes, https URLs, site names usable in task-queue names,
duplicate tenants. It reports all problems in one run and exits 1 if there are any.
It needs no server.`,
		Example: "  hybridflow validate -f configs/inventory.example.yaml\n  hybridflow validate -f a.yaml -f b.yaml -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return fmt.Errorf("name at least one inventory with -f")
			}
			var results []validateResult
			bad := false
			for _, f := range files {
				res := validateResult{File: f, Problems: []config.Problem{}}
				inv, err := config.LoadInventory(f)
				var ps config.Problems
				switch {
				case err == nil:
					res.Valid, res.Tenants = true, len(inv.Tenants)
				case errors.As(err, &ps):
					res.Problems = ps
				default:
					res.Problems = []config.Problem{{File: f, Message: err.Error()}}
				}
				bad = bad || !res.Valid
				results = append(results, res)
			}
			if a.output == "json" {
				if err := a.printJSON(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					if r.Valid {
						a.printf("%s: ok (%d tenants)\n", r.File, r.Tenants)
						continue
					}
					for _, p := range r.Problems {
						a.printf("%s\n", p.Error())
					}
					a.printf("%s: %d problem(s)\n", r.File, len(r.Problems))
				}
			}
			if bad {
				return silentExit{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "file", "f", nil, "inventory file (repeatable)")
	return cmd
}
