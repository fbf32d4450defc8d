package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestPlanPrinterBlocked: a plan with a blocked step and nothing to write
// is not converged. The tenant's plan, the inventory summary row and
// verify's drift count say so, naming the blocked step.
func TestPlanPrinterBlocked(t *testing.T) {
	blocked := workflows.SetupResult{Mode: string(plan.ModeDedicatedApp), Plan: []plan.Action{
		{Step: plan.StepAuthServers, Change: plan.ChangeNone, Reason: "both exist"},
		{Step: plan.StepSettingOverride, Change: plan.ChangeBlocked, Reason: "setting override 'x' does not enable the dedicated application"},
		{Step: plan.StepVerify, Change: plan.ChangeCheck, Reason: "Test-OAuthConnectivity"},
	}}
	tn := config.Tenant{ID: "t1", DisplayName: "Tenant one", Cloud: "global"}
	var out bytes.Buffer
	a := &app{stdout: &out}
	a.printPlan(tn, blocked)
	last := lastLine(out.String())
	if strings.Contains(last, "converged") || !strings.Contains(last, "blocked: 1 step(s) need an operator (setting-override; a setup would pause there); no step would write") {
		t.Errorf("plan summary line %q", last)
	}

	withWrites := blocked
	withWrites.Plan = append([]plan.Action{{Step: plan.StepPartnerApp, Change: plan.ChangeUpdate, Reason: "enable"}}, blocked.Plan...)
	out.Reset()
	a.printPlan(tn, withWrites)
	if last := lastLine(out.String()); !strings.Contains(last, "blocked: 1 step(s)") || !strings.HasSuffix(last, "; 1 step(s) would write") {
		t.Errorf("plan summary line %q", last)
	}

	plans := []tenantPlan{
		{TenantID: "t1", Name: "blocked", Blocked: []string{string(plan.StepSettingOverride)}},
		{TenantID: "t2", Name: "converged"},
		{TenantID: "t3", Name: "writes", Writes: 2},
	}
	out.Reset()
	a.printPlanSummary(plans, &config.Inventory{}, false)
	rows := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(rows) != 4 || !strings.HasSuffix(rows[1], "blocked: 1 step(s) need an operator (setting-override; a setup would pause there); no step would write") ||
		!strings.HasSuffix(rows[2], "converged") || !strings.HasSuffix(rows[3], "2 step(s) would write") {
		t.Errorf("summary:\n%s", out.String())
	}
	if !plans[0].drifted() || plans[1].drifted() || !plans[2].drifted() {
		t.Errorf("drifted: blocked %v, converged %v, writes %v", plans[0].drifted(), plans[1].drifted(), plans[2].drifted())
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
