package workflows_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestVerifyEndsInTheRunOfItsLastTenant: three tenants, three a run: the
// first run starts the last tenant and ends the verify itself, with no
// second, empty run.
func TestVerifyEndsInTheRunOfItsLastTenant(t *testing.T) {
	h := newRenewHarness(t)
	env := h.newEnv(renewBase)
	env.RegisterWorkflow(workflows.VerifyInventory)
	env.RegisterActivity(&activities.Inventory{})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.ExecuteWorkflow(workflows.VerifyInventory, workflows.VerifyInput{Name: "three", Tenants: h.inv.Tenants, Concurrency: 3, ContinueAsNewEvery: 3})
	if !env.IsWorkflowCompleted() {
		t.Fatal("verify did not complete")
	}
	if _, ok := asContinueAsNew(env.GetWorkflowError()); ok {
		t.Fatal("the run that started the last of 3 tenants continued as new; want it to end the verify")
	}
	var rep workflows.VerifyReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total != 3 || len(rep.Tenants) != 3 || rep.Runs != 0 {
		t.Fatalf("report: total %d, %d verdicts, %d handovers; want 3, 3, 0", rep.Total, len(rep.Tenants), rep.Runs)
	}
}

// TestVerifyInventoryVerdicts: small.yaml with tenant 0 set up and the two
// others not, tenant 1 with a next auth certificate staged, tenant 2's
// current one taken out of the store (its plan cannot be made), verified
// two tenants per run so the workflow continues as new. The report says
// tenant 0 converged with its certificate's expiry (read by the plan),
// tenant 1 drifted with steps to write and both certificates' expiry and
// the staged one's effective date (read by the renewal report the staged
// certificate calls for), tenant 2 drifted with the plan's error and the
// report's (a failing tenant ends its check instead of pausing for an
// operator), and the run publishes HybridflowDrift = drifted.
func TestVerifyInventoryVerdicts(t *testing.T) {
	h := newRenewHarness(t)
	h.setUp(0, renewBase)
	h.world.Update(h.tenant(2).ID, func(st *sim.Tenant) { st.OnPrem.Certificates = nil })
	// Tenant 1: 40 days left on the current certificate, a next one
	// staged for in 10 days (its effective date only the renewal reads).
	cur := sim.NewCertificate(sim.AuthCertificateSubject, 801, renewBase.AddDate(-5, 0, 40), renewBase.AddDate(0, 0, 40))
	next := sim.NewCertificate(sim.AuthCertificateSubject, 802, renewBase, renewBase.AddDate(5, 0, 0))
	effective := renewBase.AddDate(0, 0, 10)
	h.world.Update(h.tenant(1).ID, func(st *sim.Tenant) {
		st.OnPrem.Certificates = []*sim.ExchangeCertificate{cur, next}
		st.OnPrem.AuthConfig = sim.AuthConfig{CurrentCertificateThumbprint: cur.Thumbprint, NextCertificateThumbprint: next.Thumbprint, NextCertificateEffectiveDate: &effective}
	})

	in := workflows.VerifyInput{Name: "small", Tenants: h.inv.Tenants, Concurrency: 2, ContinueAsNewEvery: 2,
		Retry: workflows.RetryOptions{InitialInterval: 10 * time.Millisecond, MaximumInterval: 50 * time.Millisecond, MaximumAttempts: 2}}
	var rep workflows.VerifyReport
	var drift []string
	runs := 0
	for {
		env := h.newEnv(renewBase)
		env.RegisterWorkflow(workflows.VerifyInventory)
		env.RegisterActivity(&activities.Inventory{})
		env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
			sa := args.Get(0).(temporal.SearchAttributes)
			if v, ok := sa.GetKeyword(workflows.SADrift); ok {
				drift = append(drift, v)
			}
		}).Return(nil)
		env.ExecuteWorkflow(workflows.VerifyInventory, in)
		if !env.IsWorkflowCompleted() {
			t.Fatal("verify did not complete")
		}
		err := env.GetWorkflowError()
		if can, ok := asContinueAsNew(err); ok {
			runs++
			in = workflows.VerifyInput{}
			if err := can.Get(&in); err != nil {
				t.Fatal(err)
			}
			if len(drift) != 0 {
				t.Fatalf("a run that continued as new published HybridflowDrift %v", drift)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := env.GetWorkflowResult(&rep); err != nil {
			t.Fatal(err)
		}
		break
	}
	if runs < 1 || rep.Runs != runs {
		t.Errorf("continued as new %d times, the report says %d; want at least 1", runs, rep.Runs)
	}
	if rep.Total != 3 || len(rep.Tenants) != 3 || rep.Drifted != 2 || rep.Errors != 1 {
		t.Fatalf("report: total %d, %d verdicts, %d drifted, %d errors; want 3, 3, 2, 1: %+v", rep.Total, len(rep.Tenants), rep.Drifted, rep.Errors, rep.Tenants)
	}
	if len(drift) != 1 || drift[0] != workflows.DriftDrifted {
		t.Errorf("HybridflowDrift upserts %v, want [%s]", drift, workflows.DriftDrifted)
	}
	by := map[string]workflows.TenantVerdict{}
	for _, v := range rep.Tenants {
		by[v.TenantID] = v
	}
	v0, v1, v2 := by[h.tenant(0).ID], by[h.tenant(1).ID], by[h.tenant(2).ID]
	if v0.Drifted || v0.Writes != 0 || v0.Error != "" || v0.CertNotAfter == nil || v0.CertNotAfter.Year() != 2029 || v0.Site != h.tenant(0).Site {
		t.Errorf("tenant 0 (set up) should be converged with its certificate's expiry: %+v", v0)
	}
	if !v1.Drifted || v1.Writes == 0 || v1.Error != "" {
		t.Errorf("tenant 1 (not set up) should have steps to write: %+v", v1)
	}
	if v1.CertNotAfter == nil || !v1.CertNotAfter.Equal(cur.NotAfter) || v1.NextCertNotAfter == nil || !v1.NextCertNotAfter.Equal(next.NotAfter) ||
		v1.NextCertEffect == nil || !v1.NextCertEffect.Equal(effective) || v1.CertError != "" {
		t.Errorf("tenant 1: current certificate until %v, next until %v effective %v; verdict %+v", cur.NotAfter, next.NotAfter, effective, v1)
	}
	if !v2.Drifted || v2.Error == "" || v2.CertNotAfter != nil || v2.CertError == "" {
		t.Errorf("tenant 2 (no auth certificate in the store) should carry the plan's and the report's errors: %+v", v2)
	}
	t.Logf("runs=%d tenant 1: %d writes; tenant 2: %s / %s", runs, v1.Writes, v2.Error, v2.CertError)
}

// TestVerifyNameFromWorkflowID: a manual run's ID and a scheduled one's
// (the schedule appends the scheduled time) name the same inventory.
func TestVerifyNameFromWorkflowID(t *testing.T) {
	for id, want := range map[string]string{
		"hybridflow/verify/inventory-demo":                      "inventory-demo",
		"hybridflow/verify/inventory-demo-2026-11-01T10:00:00Z": "inventory-demo",
		"hybridflow/verify/a-2026":                              "a-2026",
	} {
		if got, ok := workflows.VerifyNameFromWorkflowID(id); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", id, got, ok, want)
		}
	}
	for _, id := range []string{"hybridflow/verify/", "hybridflow/rollout/x", "hybridflow/plan/x"} {
		if got, ok := workflows.VerifyNameFromWorkflowID(id); ok {
			t.Errorf("%s: %q, want not a verify ID", id, got)
		}
	}
}

// TestReplayRecordedVerifyHistories replays testdata/histories/verify
// against the current VerifyInventory: a run started by a verify schedule
// on the dev server (three tenants, one set up), recorded by the starter's
// TestVerifyScheduleRecordsDrift with HYBRIDFLOW_RECORD_HISTORIES=1. A
// change to the commands it emits (children started in another order, an
// upsert moved) fails here and needs workflow.GetVersion.
func TestReplayRecordedVerifyHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "verify", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded verify history in testdata/histories/verify")
	}
	for _, f := range files {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflow(workflows.VerifyInventory)
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Fatalf("replaying %s against the current workflow code: %v", f, err)
		}
	}
}
