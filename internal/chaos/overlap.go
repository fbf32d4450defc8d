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
