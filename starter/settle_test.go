package main

import (
	"testing"

	"github.com/hybridflow/hybridflow/workflows"
)

// TestSettleCheck: a watch ends when the rollout finished, or when it was
// settled (everything running waits for an operator) at two polls in a
// row; a single settled poll, as right after a retry whose signal has not
// reached the rollout, does not end it.
func TestSettleCheck(t *testing.T) {
	paused := workflows.RolloutProgress{Total: 20, Running: 1, Attention: []workflows.TenantOutcome{{TenantID: "t6", State: workflows.StatePaused}}}
	running := workflows.RolloutProgress{Total: 20, Running: 1}
	finished := workflows.RolloutProgress{Total: 20, Finished: true}
	cases := []struct {
		name  string
		polls []workflows.RolloutProgress
		want  []bool
	}{
		{"settled twice", []workflows.RolloutProgress{paused, paused}, []bool{false, true}},
		{"settled once, then running", []workflows.RolloutProgress{paused, running, paused, running}, []bool{false, false, false, false}},
		{"finished", []workflows.RolloutProgress{running, finished}, []bool{false, true}},
	}
	for _, c := range cases {
		var q settleCheck
		for i, p := range c.polls {
			if got := q.done(p); got != c.want[i] {
				t.Errorf("%s: poll %d done %v, want %v", c.name, i, got, c.want[i])
			}
		}
	}
}
