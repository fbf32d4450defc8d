package chaos

import (
	"fmt"
	"sort"
	"time"

	"github.com/hybridflow/hybridflow/internal/attempts"
)

// Execution, Recorder and Overlaps are the attempt recorder the chaos
// suite shares with the end-to-end tests.
type (
	Execution = attempts.Execution
	Recorder  = attempts.Recorder
)

// Overlaps reports one tenant's step run twice at once (attempts.Overlaps).
func Overlaps(execs []Execution) []string { return attempts.Overlaps(execs) }

// Run is one workflow execution as the server lists it.
type Run struct {
	WorkflowID, RunID string
	Start, Close      time.Time // Close zero: still open
}

// RunOverlaps reports two runs of one workflow ID that were open at the
// same time: one tenant set up twice at once. Temporal's ID uniqueness
// should make it impossible; the check is that nothing (a second ID
// scheme, a terminate-and-restart) bypasses it.
func RunOverlaps(runs []Run) []string {
	groups := map[string][]Run{}
	for _, r := range runs {
		groups[r.WorkflowID] = append(groups[r.WorkflowID], r)
	}
	var out []string
	for id, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].Start.Before(g[j].Start) })
		for i := 1; i < len(g); i++ {
			prev := g[i-1]
			if prev.Close.IsZero() || g[i].Start.Before(prev.Close) {
				out = append(out, fmt.Sprintf("%s: run %s started at %s while run %s (started %s) was open until %s",
					id, g[i].RunID, g[i].Start.Format(time.RFC3339Nano), prev.RunID, prev.Start.Format(time.RFC3339Nano), closeOf(prev)))
			}
		}
	}
	sort.Strings(out)
	return out
}

func closeOf(r Run) string {
	if r.Close.IsZero() {
		return "now (still open)"
	}
	return r.Close.Format(time.RFC3339Nano)
}

// WriterOverlaps reports activity attempts of two different workflows of
// one tenant (its setup and a renewal) that ran at the same time: each
// takes the tenant's write lock before its first step and keeps it while
// its steps run, so their attempts must never overlap. tenantOf names the
// tenant a workflow ID writes ("" leaves the workflow out). Local
// activities (decisions without I/O) are left out.
func WriterOverlaps(execs []Execution, tenantOf func(workflowID string) string) []string {
	groups := map[string][]Execution{}
	for _, x := range execs {
		if x.Local {
			continue
		}
		if t := tenantOf(x.WorkflowID); t != "" {
			groups[t] = append(groups[t], x)
		}
	}
	var out []string
	for t, g := range groups {
		sort.Slice(g, func(i, j int) bool { return g[i].Start.Before(g[j].Start) })
		for i := range g {
			for j := i + 1; j < len(g) && g[j].Start.Before(g[i].End); j++ {
				if g[j].WorkflowID == g[i].WorkflowID {
					continue
				}
				out = append(out, fmt.Sprintf("%s: %s of %s (%s–%s) ran while %s of %s (%s–%s) did",
					t, g[j].Type, g[j].WorkflowID, g[j].Start.Format("15:04:05.000"), g[j].End.Format("15:04:05.000"),
					g[i].Type, g[i].WorkflowID, g[i].Start.Format("15:04:05.000"), g[i].End.Format("15:04:05.000")))
			}
		}
	}
	sort.Strings(out)
	return out
}
