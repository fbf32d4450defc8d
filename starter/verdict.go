package main

import (
	"fmt"
	"strings"

	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

// planCounts is what a plan would do, counted the way every printer and
// summary reports it: steps that write, and steps that are blocked (the
// run pauses there for an operator, so such a plan is never converged even
// though the blocked step itself writes nothing).
type planCounts struct {
	Writes  int
	Blocked []plan.Step
}

func countPlan(actions []plan.Action) planCounts {
	var c planCounts
	c.Writes, c.Blocked = workflows.PlanCounts(actions)
	return c
}

// Converged: nothing to write and nothing in the way.
func (c planCounts) Converged() bool { return c.Writes == 0 && len(c.Blocked) == 0 }

// verdict is the plan's one-line summary; run names what would run it
// ("a setup", "a run").
func (c planCounts) verdict(run string) string {
	if c.Converged() {
		return "converged: " + run + " would write nothing"
	}
	writes := fmt.Sprintf("%d step(s) would write", c.Writes)
	if len(c.Blocked) == 0 {
		return writes
	}
	names := make([]string, len(c.Blocked))
	for i, s := range c.Blocked {
		names[i] = string(s)
	}
	if c.Writes == 0 {
		writes = "no step would write"
	}
	return fmt.Sprintf("blocked: %d step(s) need an operator (%s; %s would pause there); %s",
		len(c.Blocked), strings.Join(names, ", "), run, writes)
}
