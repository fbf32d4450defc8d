package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/hybridflow/hybridflow/internal/histories"
	"github.com/hybridflow/hybridflow/internal/metrics/fleet"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestVerifyScheduleRecordsDrift: on the real dev server, small.yaml's
// first tenant is set up and the two others are not. `verify --schedule`
// creates the Temporal Schedule hybridflow/verify/<name>; a run it starts
// completes with HybridflowDrift = drifted, and the cloud worker's fleet
// gauges, read from Temporal, say tenant 1 drifted (steps to write) and
// tenant 0 converged with its auth certificate's expiry; the cloud and
// site queues have live pollers. `verify --schedule-delete --yes` removes
// the schedule.
func TestVerifyScheduleRecordsDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	world, err := sim.Load(filepath.Join("..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tenants := world.Inventory().Tenants
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, tn := range tenants {
		fmt.Fprintf(&b, "  - id: %s\n    display_name: %s\n    cloud: %s\n    initial_domain: %s\n    site: %s\n", tn.ID, tn.DisplayName, tn.Cloud, tn.InitialDomain, tn.Site)
	}
	inv := filepath.Join(t.TempDir(), "watched.yaml")
	if err := os.WriteFile(inv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, c := simWorker(t, ctx, world, true, "verify-schedule")
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append(args, "--address="+srv.FrontendHostPort()), &out, &errb, func(string) string { return "" })
		return code, out.String() + errb.String()
	}
	if code, out := cli("setup", "-f", inv, "-t", tenants[0].ID); code != 0 {
		t.Fatalf("setup of tenant 0: exit %d\n%s", code, out)
	}
	if code, out := cli("verify", "-f", inv, "--schedule", "3s"); code != 0 || !strings.Contains(out, "created hybridflow/verify/watched (every 3s)") {
		t.Fatalf("verify --schedule: exit %d\n%s", code, out)
	}
	// The same command again updates the schedule in place.
	if code, out := cli("verify", "-f", inv, "--schedule", "2s"); code != 0 || !strings.Contains(out, "updated hybridflow/verify/watched (every 2s)") {
		t.Fatalf("verify --schedule again: exit %d\n%s", code, out)
	}

	// A run the schedule started (its ID carries the scheduled time) completes.
	var runID, wfID, drift string
	for runID == "" {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowType = 'VerifyInventory' AND ExecutionStatus = 'Completed' AND TemporalScheduledById = 'hybridflow/verify/watched'"})
		if err == nil && len(resp.GetExecutions()) > 0 {
			e := resp.GetExecutions()[0]
			wfID, runID = e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			if p := e.GetSearchAttributes().GetIndexedFields()[workflows.SADrift.GetName()]; p != nil {
				_ = converter.GetDefaultDataConverter().FromPayload(p, &drift)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no scheduled verify run completed: %v", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if name, ok := workflows.VerifyNameFromWorkflowID(wfID); !ok || name != "watched" || wfID == workflows.VerifyWorkflowID("watched") {
		t.Errorf("scheduled run %s: name %q %v", wfID, name, ok)
	}
	if drift != workflows.DriftDrifted {
		t.Errorf("scheduled run %s: HybridflowDrift %q, want %q", wfID, drift, workflows.DriftDrifted)
	}
	recordVerifyHistory(t, ctx, c, wfID, runID)

	// What the cloud worker's /metrics shows, read from Temporal.
	reg := prometheus.NewPedanticRegistry()
	col, err := fleet.Register(reg, fleet.Options{Source: fleet.FromClient(c, "default")})
	if err != nil {
		t.Fatal(err)
	}
	s := col.Snapshot()
	by := map[string]fleet.TenantFacts{}
	for _, f := range s.Tenants {
		by[f.TenantID] = f
	}
	t0, t1 := by[tenants[0].ID], by[tenants[1].ID]
	if t1.TenantID == "" || !t1.Drifted || t1.Reason != fleet.ReasonWrites || t1.Inventory != "watched" {
		t.Errorf("tenant 1 (not set up) should be reported drifted with steps to write: %+v", t1)
	}
	if t0.TenantID == "" || t0.Drifted || t0.Reason != fleet.ReasonConverged || t0.CertNotAfter == nil {
		t.Errorf("tenant 0 (set up) should be reported converged with its certificate's expiry: %+v", t0)
	}
	// And as Prometheus scrapes it: one series per tenant.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]string{}
	for _, mf := range mfs {
		if mf.GetName() != fleet.NameTenantDrift {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			series[l["tenant"]] = fmt.Sprintf("%s %s %v", l["inventory"], l["reason"], m.GetGauge().GetValue())
		}
	}
	if len(series) != len(tenants) || series[tenants[0].ID] != "watched converged 0" || series[tenants[1].ID] != "watched writes 1" {
		t.Errorf("%s series: %v", fleet.NameTenantDrift, series)
	}
	for _, q := range s.Queues {
		if q.Pollers == 0 {
			t.Errorf("task queue %s (%s) reported without pollers while the worker polls it", q.Queue, q.Type)
		}
	}
	if len(s.Queues) < 3 {
		t.Errorf("queues %+v: want the cloud queue's two and the sites'", s.Queues)
	}

	if code, out := cli("verify", "-f", inv, "--schedule-delete"); code == 0 || !strings.Contains(out, "--yes") {
		t.Errorf("--schedule-delete without a terminal or --yes: exit %d\n%s", code, out)
	}
	if code, out := cli("verify", "--name", "watched", "--schedule-delete", "--yes"); code != 0 || !strings.Contains(out, "deleted hybridflow/verify/watched") {
		t.Fatalf("verify --schedule-delete --yes: exit %d\n%s", code, out)
	}
	_, err = c.ScheduleClient().GetHandle(ctx, "hybridflow/verify/watched").Describe(ctx)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("the schedule is still there after --schedule-delete: %v", err)
	}
}

// recordVerifyHistory writes the scheduled run's history to
// workflows/testdata/histories/verify when HYBRIDFLOW_RECORD_HISTORIES is
// set (make histories), for the replay test there.
func recordVerifyHistory(t *testing.T, ctx context.Context, c client.Client, id, runID string) {
	t.Helper()
	path, err := histories.Record(ctx, c, id, runID, "verify/verify-scheduled")
	if err != nil {
		t.Fatalf("record the history of %s: %v", id, err)
	}
	if path != "" {
		t.Logf("recorded %s", path)
	}
}
