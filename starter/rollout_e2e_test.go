package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// rolloutRig is a dev server, a generated world served on loopback and a
// worker registered exactly as hybridflow-worker registers it.
type rolloutRig struct {
	t     *testing.T
	ctx   context.Context
	srv   *testsuite.DevServer
	world *sim.World
	c     client.Client
	inv   string
	n     int
}

func newRolloutRig(t *testing.T, ctx context.Context, n int, direct bool, faults []sim.FaultRule) *rolloutRig {
	t.Helper()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: n, Sites: 4, Clouds: []string{"global", "gcc", "gcchigh", "dod", "china"},
		OldBuilds: 0.1, LegacyServers: 0.05, ForeignKeys: 0.3, ExpiredKeys: 0.2, HalfConfigured: 0.3, HCWNames: 0.2}, 11, now)
	if err != nil {
		t.Fatal(err)
	}
	// Old builds sit in GCC High and DoD only where the shared first-party
	// path is open; elsewhere the generator makes them mixed builds, so
	// every tenant can verify and the rollout's bookkeeping is measured.
	w := &sim.World{FixedNow: now, Seed: 11, Tenants: ts}
	w.SetFaults(faults)
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, tn := range w.Inventory().Tenants {
		fmt.Fprintf(&b, "  - id: %s\n    display_name: %s\n    cloud: %s\n    initial_domain: %s\n    site: %s\n", tn.ID, tn.DisplayName, tn.Cloud, tn.InitialDomain, tn.Site)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("generated-%d.yaml", n))
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, c := simWorker(t, ctx, w, direct, "rollout-e2e", workerhost.WithInventoryDir(filepath.Dir(path)))
	return &rolloutRig{t: t, ctx: ctx, srv: srv, world: w, c: c, inv: path, n: n}
}

func (r *rolloutRig) cli(args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := run(r.ctx, append(args, "--address="+r.srv.FrontendHostPort()), &out, &errb, func(string) string { return "" })
	return code, out.String() + errb.String()
}

// waitSettled polls the rollout until nothing more happens without an operator.
func (r *rolloutRig) waitSettled(name string) workflows.RolloutProgress {
	var quiet settleCheck
	for {
		p, err := queryRollout(r.ctx, r.c, name)
		if err == nil && quiet.done(p) {
			return p
		}
		select {
		case <-r.ctx.Done():
			r.t.Fatalf("rollout %s did not settle: %+v (%v)", name, p, err)
		case <-time.After(time.Second):
		}
	}
}

// runsPerWorkflowID counts executions per workflow ID of a type.
func (r *rolloutRig) runsPerWorkflowID(workflowType string) map[string]int {
	out := map[string]int{}
	var token []byte
	for {
		resp, err := r.c.ListWorkflow(r.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = '" + workflowType + "'", PageSize: 1000, NextPageToken: token})
		if err != nil {
			r.t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			out[e.GetExecution().GetWorkflowId()]++
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

// TestRollout300TenantsWithFaults: 300 generated tenants, concurrency 25,
// 5% of Graph calls answered 429, one cmdlet failing for 10 tenants. The
// rollout ends with every tenant verified or paused; a bulk retry finishes
// the paused ones; the world shows every tenant converged and nothing lost.
func TestRollout300TenantsWithFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: 300 tenants on the dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// The failing tenants are chosen after generation, so build the rig
	// with the throttle only and add the cmdlet fault once IDs are known.
	rig := newRolloutRig(t, ctx, 300, false, nil)
	var broken []string
	for i, tn := range rig.world.Inventory().Tenants {
		if i%30 == 7 {
			broken = append(broken, tn.ID)
		}
	}
	rig.world.SetFaults([]sim.FaultRule{
		{Protocol: sim.ProtoGraph, Kind: sim.FaultThrottle, Rate: 0.05, RetryAfter: time.Second},
		{Protocol: sim.ProtoShell, Operation: "Get-AuthConfig", Tenants: broken, Kind: sim.FaultFail, FailFirstN: 1,
			ErrorType: "System.UnauthorizedAccessException", Message: "Access is denied (injected)"},
	})
	before := rig.world.Clone()
	began := time.Now()
	if code, out := rig.cli("rollout", "-f", rig.inv, "--concurrency", "25", "--name", "r300"); code != 0 {
		t.Fatalf("rollout: %d %s", code, out)
	}
	p := rig.waitSettled("r300")
	t.Logf("settled after %s: %+v", time.Since(began).Round(time.Second), p.Counts)
	paused := 0
	for _, a := range p.Attention {
		if a.State == workflows.StatePaused {
			paused++
		}
	}
	if p.Done+paused != 300 || paused != len(broken) || p.Counts[workflows.StateVerified] != 300-len(broken) {
		t.Fatalf("want %d verified and %d paused, got %+v (attention %d)", 300-len(broken), len(broken), p.Counts, len(p.Attention))
	}
	if fired := rig.world.FaultsFired(); fired[sim.FaultThrottle] == 0 {
		t.Fatalf("no 429 was injected: %v", fired)
	}
	if code, out := rig.cli("retry", "--all-paused", "--error-type", "MissingPermission"); code != 0 || strings.Count(out, "retry sent to") != len(broken) {
		t.Fatalf("bulk retry: exit %d\n%s", code, out)
	}
	p = rig.waitSettled("r300")
	if !p.Finished || p.Counts[workflows.StateVerified] != 300 || len(p.Attention) != 0 {
		t.Fatalf("after the bulk retry: %+v", p)
	}
	t.Logf("300 tenants verified in %s; faults fired %v", time.Since(began).Round(time.Second), rig.world.FaultsFired())
	after := rig.world.Clone()
	if lost := e2e.NothingLost(before, after); len(lost) > 0 {
		t.Fatalf("%d object(s) lost, first: %s", len(lost), strings.Join(lost[:min(5, len(lost))], "\n"))
	}
	// Converged: a dry-run over the same inventory plans no writes.
	if code, out := rig.cli("verify", "-f", rig.inv, "--concurrency", "25"); code != 0 || !strings.Contains(out, "0 of 300 tenant(s) drifted") {
		t.Fatalf("verify after the rollout: exit %d\n%s", code, lastLines(out, 5))
	}
}

// TestRollout1000TenantsContinuesAsNew plans 1,000 tenants (dry run: the
// bookkeeping, not the writes, is under test) with a continue-as-new every
// 200 starts while a second start of the same rollout attaches to it.
// Twenty tenants pause in discovery for an operator; the rollout hands them
// over at each continue-as-new instead of waiting, and a bulk retry at the
// end finishes them. Counted: at least four handovers, every tenant planned
// exactly once, and exactly one pause, one resume and one end signal per
// paused tenant.
func TestRollout1000TenantsContinuesAsNew(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: 1,000 tenants on the dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rig := newRolloutRig(t, ctx, 1000, true, nil)
	var paused []string
	for i, tn := range rig.world.Inventory().Tenants {
		if i%50 == 13 {
			paused = append(paused, tn.ID)
		}
	}
	rig.world.SetFaults([]sim.FaultRule{{Protocol: sim.ProtoShell, Operation: "Get-AuthConfig", Tenants: paused, Kind: sim.FaultFail, FailFirstN: 1,
		ErrorType: "System.UnauthorizedAccessException", Message: "Access is denied (injected)"}})
	in := workflows.RolloutInput{Name: "r1000", InventoryPath: rig.inv, Concurrency: 50, ContinueAsNewEvery: 200, Setup: workflows.SetupOptions{DryRun: true}}
	opts := client.StartWorkflowOptions{ID: workflows.RolloutWorkflowID("r1000"), TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}
	run1, err := rig.c.ExecuteWorkflow(ctx, opts, workflows.Rollout, in)
	if err != nil {
		t.Fatal(err)
	}
	// Started twice: the second start attaches to the running rollout.
	run2, err := rig.c.ExecuteWorkflow(ctx, opts, workflows.Rollout, in)
	if err != nil {
		t.Fatal(err)
	}
	if run1.GetRunID() != run2.GetRunID() {
		t.Fatalf("second start made a second rollout: %s vs %s", run1.GetRunID(), run2.GetRunID())
	}
	p := rig.waitSettled("r1000")
	if p.Finished || p.Done != 1000-len(paused) || len(p.Attention) != len(paused) || p.ContinuedAsNew < 4 {
		t.Fatalf("settled with %d done, %d needing attention, %d handovers; want %d, %d, ≥4: %+v", p.Done, len(p.Attention), p.ContinuedAsNew, 1000-len(paused), len(paused), p.Counts)
	}
	if code, out := rig.cli("retry", "--all-paused", "--error-type", "MissingPermission"); code != 0 || strings.Count(out, "retry sent to") != len(paused) {
		t.Fatalf("bulk retry: exit %d\n%s", code, lastLines(out, 5))
	}
	// A fresh value: decoding into the settled progress would keep fields
	// the final JSON omits (an empty attention list).
	p = workflows.RolloutProgress{}
	if err := rig.c.GetWorkflow(ctx, opts.ID, "").Get(ctx, &p); err != nil {
		t.Fatal(err)
	}
	t.Logf("1000 tenants planned: %+v, continued as new %d times, %d signals", p.Counts, p.ContinuedAsNew, p.Signals)
	if p.ContinuedAsNew < 4 || p.Total != 1000 || p.Done != 1000 || p.Counts[workflows.StatePlanned] != 1000 || len(p.Attention) != 0 {
		t.Fatalf("progress %+v", p)
	}
	if want := 3 * len(paused); p.Signals != want {
		t.Errorf("the rollout received %d tenant signals, want %d (pause, resume and end per paused tenant)", p.Signals, want)
	}
	runs := rig.runsPerWorkflowID("Setup")
	if len(runs) != 1000 {
		t.Fatalf("%d tenants have a plan run, want 1000", len(runs))
	}
	for id, n := range runs {
		if n != 1 {
			t.Errorf("%s ran %d times", id, n)
		}
	}
	rollouts := rig.runsPerWorkflowID("Rollout")
	if rollouts[opts.ID] != p.ContinuedAsNew+1 {
		t.Errorf("rollout runs %d, want %d", rollouts[opts.ID], p.ContinuedAsNew+1)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
