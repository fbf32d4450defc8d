package workflows_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/histories"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestSetupConcurrentFailuresPauseOneAtATime: two steps that run at the
// same time (the auth servers and the on-prem connector) both fail. The
// run pauses for one, keeps the other's failure waiting, starts no
// further step while either waits, shows the second pause only after the
// operator answered the first, and an abort then undoes what both wrote.
func TestSetupConcurrentFailuresPauseOneAtATime(t *testing.T) {
	h := newHarness(t, "small.yaml")
	id := h.inv.Tenants[0].ID
	before := h.config(id)
	deny := func(cmdlet string) sim.FaultRule {
		return sim.FaultRule{Protocol: sim.ProtoShell, Operation: cmdlet, Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1}
	}
	h.world.SetFaults([]sim.FaultRule{deny("New-AuthServer"), deny("New-IntraOrganizationConnector")})
	env := h.env()
	pair := map[string]plan.Step{string(plan.StepAuthServers): plan.StepIOCOnPrem, string(plan.StepIOCOnPrem): plan.StepAuthServers}
	var first string
	notStarted := func(st workflows.SetupState) {
		for _, s := range []plan.Step{plan.StepSettingOverride, plan.StepVerify, plan.StepOnPremAuthServerApp} {
			if x := setupStep(st, s); x.Attempts != 0 {
				t.Errorf("step %s started (%s, %d attempts) while a step waited for an operator", s, x.Status, x.Attempts)
			}
		}
	}
	env.RegisterDelayedCallback(func() {
		st := state(t, env)
		if st.Paused == nil || pair[st.Paused.Step] == "" || st.Paused.ErrorType != activities.ErrMissingPermission {
			t.Errorf("after 1h: paused %+v; want a pause at %s or %s (MissingPermission)", st.Paused, plan.StepAuthServers, plan.StepIOCOnPrem)
			logSetup(t, st)
			env.CancelWorkflow()
			return
		}
		first = st.Paused.Step
		if other := setupStep(st, pair[first]); other.Status != workflows.StatusFailed {
			t.Errorf("the other failed step %s is %s while %s is paused, want failed (waiting for its turn)", pair[first], other.Status, first)
		}
		notStarted(st)
		sendUpdate(env, workflows.UpdateRetry) // fails again: the fault stays
	}, time.Hour)
	env.RegisterDelayedCallback(func() {
		st := state(t, env)
		if first == "" || st.Paused == nil || st.Paused.Step != string(pair[first]) {
			t.Errorf("after the first retry: paused %+v; want %s", st.Paused, pair[first])
			logSetup(t, st)
		}
		notStarted(st)
		sendUpdate(env, workflows.UpdateAbort)
	}, 2*time.Hour)
	st := runAborted(t, h, env, h.input(0, workflows.SetupOptions{}))
	notStarted(st)
	if first != "" {
		if s := setupStep(st, plan.Step(first)); s.Attempts != 2 {
			t.Errorf("step %s: %d attempts, want 2 (the retry)", first, s.Attempts)
		}
	}
	if x := setupStep(st, plan.StepPartnerApp); x.Status != workflows.StatusCompensated {
		t.Errorf("step %s is %s after the abort, want compensated", plan.StepPartnerApp, x.Status)
	}
	sameConfig(t, "two pauses then abort", before, h.config(id))
}

// TestSetupStartsNoStepWhilePaused: the auth servers fail at once and
// pause the run while the dedicated application is still being created;
// once it exists, the key upload (which waits only for it) must still not
// start until the operator has answered.
func TestSetupStartsNoStepWhilePaused(t *testing.T) {
	h := newHarness(t, "small.yaml")
	h.world.SetFaults([]sim.FaultRule{
		{Protocol: sim.ProtoShell, Operation: "New-AuthServer", Kind: sim.FaultFail, ErrorType: exchange.TypeAccessDenied, Rate: 1},
		{Protocol: sim.ProtoGraph, Operation: "POST applications", Kind: sim.FaultLatency, Latency: 300 * time.Millisecond, Rate: 1},
	})
	env := h.env()
	whilePaused(t, env, plan.StepAuthServers, activities.ErrMissingPermission, func(st workflows.SetupState) {
		if s := setupStep(st, plan.StepDedicatedApp); s.Status != workflows.StatusDone {
			t.Errorf("dedicated-app is %s at the pause, want done (it runs beside the auth servers)", s.Status)
		}
		for _, s := range []plan.Step{plan.StepKeys, plan.StepSPNs} {
			if x := setupStep(st, s); x.Attempts != 0 {
				t.Errorf("step %s started (%s) while auth-servers waited for an operator", s, x.Status)
			}
		}
		sendUpdate(env, workflows.UpdateAbort)
	})
	runAborted(t, h, env, h.input(0, workflows.SetupOptions{}))
}

// TestRecordedSetupsStartIndependentStepsTogether reads the recorded
// histories of the current Setup shape: wherever the auth servers, the
// partner application, the on-prem connector and the availability
// address space are written, their first activities are scheduled by one
// workflow task (they wait for nothing but the plan). The v3- recordings,
// one step after another, fail it.
func TestRecordedSetupsStartIndependentStepsTogether(t *testing.T) {
	checkStartedTogether(t, "", true)
	checkStartedTogether(t, "v3-", false)
}

func checkStartedTogether(t *testing.T, prefix string, want bool) {
	t.Helper()
	files, err := histories.Load(filepath.Join("testdata", "histories"))
	if err != nil {
		t.Fatal(err)
	}
	roots := []string{"EnsureAuthServers", "EnablePartnerApplication", "EnsureOnPremConnector", "EnsureAvailabilityAddressSpace"}
	together := 0
	for _, f := range files {
		base := filepath.Base(f.Path)
		if f.Type != "Setup" || !strings.HasPrefix(base, prefix+"setup-") {
			continue
		}
		batchOf := map[string]int{} // activity type → the workflow task that first scheduled it
		batch := 0
		for _, ev := range f.History.GetEvents() {
			if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
				batch++
			}
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
				if _, seen := batchOf[a.GetActivityType().GetName()]; !seen {
					batchOf[a.GetActivityType().GetName()] = batch
				}
			}
		}
		var present []string
		for _, r := range roots {
			if _, ok := batchOf[r]; ok {
				present = append(present, r)
			}
		}
		same := true
		for _, r := range present[min(1, len(present)):] {
			same = same && batchOf[r] == batchOf[present[0]]
		}
		if len(present) >= 2 && same {
			together++
		}
		if want && !same {
			t.Errorf("%s: %v scheduled by workflow tasks %v, want one", base, present, batchOf)
		}
	}
	if want && together == 0 {
		t.Errorf("no recorded %ssetup history writes two of %v", prefix, roots)
	}
	if !want && together > 0 {
		t.Errorf("%d recorded %ssetup histories start %v together; that shape runs them one after another", together, prefix, roots)
	}
}
