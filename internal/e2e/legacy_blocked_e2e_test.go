package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestE2ELegacyPathBlockedPausesAtPlanTime: a worldwide tenant whose
// Mailbox servers all predate the April 2025 hotfix cannot use the
// dedicated Exchange hybrid application, and Exchange Online has blocked
// the shared first-party path in the worldwide cloud since 31 October 2025
// (shared/reference/hybrid-facts.md (b) "Minimum builds" and "after 31 Oct
// 2025"). The setup, started as the CLI starts it with the product's
// 30-minute verification deadline, must pause at plan time (step
// discover) with error type LegacyPathBlocked, naming the servers, the
// builds they need and the cloud, within a minute of its start, having
// written nothing; the pause is listed by HybridflowState and filtered by
// error type as `hybridflow retry --all-paused --error-type` does; the
// operator's abort ends it with nothing to undo.
func TestE2ELegacyPathBlockedPausesAtPlanTime(t *testing.T) {
	w := generated(t, sim.GenerateSpec{Tenants: 1, Prefix: "blocked", OldBuilds: 1}, 4420, func(ts []*sim.Tenant) {
		for i := range ts[0].OnPrem.Servers {
			ts[0].OnPrem.Servers[i].Version = sim.GenOldBuild
		}
	})
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := e.snapshot()
	tn := before.Tenants[0]
	if tn.Cloud != "global" {
		t.Fatalf("world changed: tenant in %s", tn.Cloud)
	}

	began := time.Now()
	run := e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{VerifyDeadline: 30 * time.Minute})
	st := e.waitPaused(ctx, run)
	elapsed := time.Since(began)
	t.Logf("paused after %s at %s: %s (%s)", elapsed.Round(time.Millisecond), st.Paused.Step, st.Paused.Error, st.Paused.ErrorType)
	if elapsed >= time.Minute {
		t.Errorf("paused after %s, want under a minute", elapsed.Round(time.Millisecond))
	}
	if st.Paused.Step != "discover" || st.Paused.ErrorType != activities.ErrLegacyPathBlocked || st.State != workflows.StatePaused {
		t.Fatalf("paused %+v in state %s; want step discover, error type %s", *st.Paused, st.State, activities.ErrLegacyPathBlocked)
	}
	for _, m := range []string{"EX01 runs " + sim.GenOldBuild, "EX02 runs " + sim.GenOldBuild, "15.2.1544.25", "Worldwide", "31 October 2025"} {
		if !strings.Contains(st.Paused.Error, m) {
			t.Errorf("the pause %q should mention %q", st.Paused.Error, m)
		}
	}
	if st.Mode != "" || len(st.Plan) != 0 {
		t.Errorf("a plan was made: mode %q, %d actions", st.Mode, len(st.Plan))
	}
	for _, s := range st.Steps {
		if s.Step != "discover" && s.Status != workflows.StatusPending {
			t.Errorf("step %s is %s; nothing after planning may run", s.Step, s.Status)
		}
	}
	// How an operator finds it: the search attribute, then the error type
	// `retry --all-paused --error-type LegacyPathBlocked` filters on.
	e.waitListed(ctx, fmt.Sprintf("%s = %q AND %s = %q", workflows.SAState.GetName(), workflows.StatePaused, workflows.SATenant.GetName(), tn.ID), run.GetID())

	checkNothingLost(t, before, e.snapshot())
	checkAdditions(t, before, e.snapshot(), nil)

	e.update(ctx, run, workflows.UpdateAbort)
	_, err := e.result(ctx, run)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != workflows.ErrAborted {
		t.Errorf("after abort: %v, want %s", err, workflows.ErrAborted)
	}
	checkAdditions(t, before, e.snapshot(), nil)
	e.recordHistory(ctx, run, "setup-legacy-blocked")
}
