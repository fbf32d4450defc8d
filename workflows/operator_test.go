package workflows

import (
	"strings"
	"testing"
)

// TestOperatorDecisionDeliveredTwice: an Update delivered a second time
// under the ID of a decision already applied is accepted and answered as
// the first was, without a second decision; any other Update is judged as
// before. (The test environment deduplicates Update IDs itself, so this
// drives the validator and handler bodies directly.)
func TestOperatorDecisionDeliveredTwice(t *testing.T) {
	o := &operator{paused: &Pause{Step: "discover"}}
	if err := o.validate(UpdateRetry, "u1"); err != nil {
		t.Fatalf("first delivery rejected: %v", err)
	}
	if step := o.apply(UpdateRetry, "u1"); step != "discover" || o.decision != UpdateRetry {
		t.Fatalf("first delivery: step %q, decision %q", step, o.decision)
	}
	// The run takes the decision and goes on (onFailure).
	o.decision, o.paused = "", nil

	if err := o.validate(UpdateRetry, "u1"); err != nil {
		t.Fatalf("the same Update again was rejected: %v", err)
	}
	if step := o.apply(UpdateRetry, "u1"); step != "discover" || o.decision != "" {
		t.Fatalf("the same Update again: step %q, decision %q (want the first answer and no new decision)", step, o.decision)
	}
	for _, id := range []string{"u2", ""} {
		if err := o.validate(UpdateRetry, id); err == nil || !strings.Contains(err.Error(), "not paused") {
			t.Errorf("a new Update %q while running: %v, want rejected as not paused", id, err)
		}
	}

	// Only the last maxApplied decisions are remembered.
	for i := range maxApplied + 1 {
		o.paused = &Pause{Step: "step"}
		o.apply(UpdateRetry, "d"+string(rune('a'+i)))
		o.decision, o.paused = "", nil
	}
	if len(o.applied) != maxApplied {
		t.Fatalf("%d decisions remembered, want %d", len(o.applied), maxApplied)
	}
	if err := o.validate(UpdateRetry, "u1"); err == nil {
		t.Error("a decision older than the last ones is still remembered")
	}
}
