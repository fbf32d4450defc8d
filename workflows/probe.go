// Package workflows holds hybridflow's deterministic workflow code: no
// clock, randomness, map iteration, goroutines or I/O — only the workflow
// APIs. Activities are scheduled by name (package contract), so workflow
// code links none of their implementations.
package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/hybridflow/hybridflow/contract"
)

// ProbeInput names the task queues to probe.
type ProbeInput struct {
	Queues []string `json:"queues"`
}

// ProbeOutcome is one queue's answer.
type ProbeOutcome struct {
	Queue  string                `json:"queue"`
	Result *contract.ProbeResult `json:"result,omitempty"`
	Error  string                `json:"error,omitempty"`
}

// Probe runs the Health probe on every queue concurrently, each bounded by
// a short schedule-to-start timeout so a queue nobody serves is reported
// instead of waited on forever.
func Probe(ctx workflow.Context, in ProbeInput) ([]ProbeOutcome, error) {
	futures := make([]workflow.Future, len(in.Queues))
	for i, q := range in.Queues {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              q,
			ScheduleToStartTimeout: 20 * time.Second,
			StartToCloseTimeout:    time.Minute,
			RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 2},
		})
		futures[i] = workflow.ExecuteActivity(actx, contract.ActProbe)
	}
	out := make([]ProbeOutcome, len(in.Queues))
	for i, f := range futures {
		out[i].Queue = in.Queues[i]
		var r contract.ProbeResult
		if err := f.Get(ctx, &r); err != nil {
			out[i].Error = fmt.Sprintf("%v", err)
			continue
		}
		out[i].Result = &r
	}
	return out, nil
}
