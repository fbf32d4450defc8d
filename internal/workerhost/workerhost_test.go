package workerhost

import (
	"testing"
	"time"
)

func TestWorkerOptionsDefaultPollers(t *testing.T) {
	cases := []struct {
		name            string
		in              Options
		wantWF, wantAct int
	}{
		{"defaults", Options{}, DefaultWorkflowTaskPollers, DefaultActivityTaskPollers},
		{"set", Options{WorkflowTaskPollers: 3, ActivityTaskPollers: 5}, 3, 5},
		{"one set", Options{ActivityTaskPollers: 1}, DefaultWorkflowTaskPollers, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.StopTimeout, c.in.Identity, c.in.MaxConcurrentActivities = time.Second, "id", 7
			got := c.in.workerOptions()
			if got.MaxConcurrentWorkflowTaskPollers != c.wantWF || got.MaxConcurrentActivityTaskPollers != c.wantAct {
				t.Errorf("pollers = %d workflow, %d activity; want %d, %d",
					got.MaxConcurrentWorkflowTaskPollers, got.MaxConcurrentActivityTaskPollers, c.wantWF, c.wantAct)
			}
			if got.WorkerStopTimeout != time.Second || got.Identity != "id" || got.MaxConcurrentActivityExecutionSize != 7 {
				t.Errorf("other options not passed through: %+v", got)
			}
		})
	}
}
