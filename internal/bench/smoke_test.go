package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// The PowerShell-host relay processes are the test binary re-run.
func init() { sim.MaybeRunHost() }

// smokeProfile keeps the error rates but shrinks latencies: the smoke test
// checks the harness, not the numbers.
func smokeProfile() Profile {
	p := DefaultProfile()
	p.OnPrem, p.Graph, p.EXO = Latency{Mean: 4 * time.Millisecond}, Latency{Mean: 2 * time.Millisecond}, Latency{Mean: 3 * time.Millisecond}
	p.ThrottleRate, p.ServerErrorRate = 0.05, 0.02 // make retries happen in six tenants
	p.RetryAfter = 20 * time.Millisecond
	return p
}

// freshThenConverged opens a session on w and rolls it out twice at
// concurrency c with DefaultSetup: fresh ("<name>-fresh"), then converged
// ("<name>-converged"), reading every k-th setup's history as
// historyFresh and historyConverged say (0: none).
func freshThenConverged(t *testing.T, ctx context.Context, d *Durable, w *sim.World, c int, name string, historyFresh, historyConverged int) (fresh, conv RunResult) {
	t.Helper()
	sess, err := d.Open(ctx, w, false)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if fresh, err = sess.Rollout(ctx, name+"-fresh", c, DefaultSetup(), historyFresh); err != nil {
		t.Fatal(err)
	}
	if conv, err = sess.Rollout(ctx, name+"-converged", c, DefaultSetup(), historyConverged); err != nil {
		t.Fatal(err)
	}
	return fresh, conv
}

// TestHarnessSmoke runs all three runners on six fresh tenants (both
// modes) with concurrency 3, through the real dev server and relay
// processes, and checks what the issue relies on: every tenant verified
// in every runner, counters moved, a converged re-run writes nothing, and
// the baselines call the same activities in the same order as the
// workflow does (so the comparison stays honest).
func TestHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n, c, seed = 6, 3, 9
	p := smokeProfile()
	opts := DefaultSetup()
	d, err := StartDurable(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	w, err := NewWorld(n, seed, p)
	if err != nil {
		t.Fatal(err)
	}
	legacy := legacyTenants(w)
	modes := map[bool]int{}
	for _, l := range legacy {
		modes[l]++
	}
	if modes[true] == 0 || modes[false] == 0 {
		t.Fatalf("the smoke world must hold both modes, got legacy=%d dedicated=%d", modes[true], modes[false])
	}
	ids := tenantIDs(w)
	dur, conv := freshThenConverged(t, ctx, d, w, c, "smoke", 1, 1)

	wf, err := NewWorld(n, seed, p)
	if err != nil {
		t.Fatal(err)
	}
	floor, err := RunBaseline(ctx, wf, c, opts, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := NewWorld(n, seed, p)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := RunBaseline(ctx, ws, 1, opts, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if seq.Runner != RunSequential || floor.Runner != RunConcurrent {
		t.Fatalf("runner names %q / %q", seq.Runner, floor.Runner)
	}

	for _, r := range []RunResult{dur, conv, floor, seq} {
		if r.Verified() != n {
			for _, tr := range r.Tenants {
				t.Logf("%s %s: %s %s", r.Runner, tr.TenantID, tr.State, tr.Err)
			}
			t.Fatalf("%s: %d of %d tenants verified", r.Runner, r.Verified(), n)
		}
	}
	// The waits read from a history account for the setup's time: every
	// part was seen, and together (parallel calls overlap) they cover at
	// least the time from the first workflow task to the last.
	for _, tr := range dur.Tenants {
		w := tr.Waits
		sum := w.WorkflowTaskQueue + w.WorkflowTask + w.ActivityQueue + w.Activity
		if w.WorkflowTask <= 0 || w.Activity <= 0 || w.ActivityQueue < 0 || w.WorkflowTaskQueue < 0 || sum < tr.Duration*8/10 {
			t.Errorf("tenant %s: waits %+v (sum %s) for a %s setup", tr.TenantID, w, sum, tr.Duration)
		}
	}
	fresh := CostsOf(dur.Stats, ids, legacy)
	if fresh.GraphRequests <= 0 || fresh.ShellRoundTrips <= 0 || fresh.EXOCalls <= 0 || fresh.Writes <= 0 {
		t.Fatalf("fresh run counters did not move: %+v", fresh)
	}
	if got := CostsOf(conv.Stats, ids, legacy); got.Writes != 0 || got.GraphWrites != 0 {
		t.Fatalf("the converged re-run wrote: %+v", got)
	}
	for _, tr := range conv.Tenants {
		if tr.Events == 0 || tr.Events >= 150 {
			t.Errorf("converged setup of %s: %d history events", tr.TenantID, tr.Events)
		}
	}
	// Same activities, tenant by tenant, fresh and converged (the
	// converged ones are compared with themselves across runners by the
	// fresh one: the script is the same code). Steps that run at the same
	// time may schedule in either order, so each tenant's calls compare
	// as a multiset.
	byID := func(r RunResult) map[string][]string {
		m := map[string][]string{}
		for _, tr := range r.Tenants {
			m[tr.TenantID] = slices.Sorted(slices.Values(tr.Calls))
		}
		return m
	}
	dc, fc, sc := byID(dur), byID(floor), byID(seq)
	for _, id := range ids {
		if len(dc[id]) == 0 {
			t.Fatalf("no activities read from the history of %s", id)
		}
		if !slices.Equal(dc[id], fc[id]) || !slices.Equal(dc[id], sc[id]) {
			t.Errorf("tenant %s (legacy=%v): activities differ\n durable:    %v\n concurrent: %v\n sequential: %v", id, legacy[id], dc[id], fc[id], sc[id])
		}
	}
}

// TestRunWritesReport runs the whole harness at toy size and checks the
// files it writes.
func TestRunWritesReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := Config{Tenants: 4, Concurrency: 2, Sweep: []int{1, 2}, SeqTenants: 2, Seed: 3, Profile: smokeProfile(), Setup: DefaultSetup(), Direct: true}
	rep, err := Run(ctx, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	var back Report
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Durable.Verified != 4 || back.Concurrent.Verified != 4 || back.Sequential.Verified != 2 || back.ConvergedCosts.Writes != 0 {
		t.Fatalf("report: %+v", back)
	}
	if len(back.Sweep) != 4 || back.RatioDurableFloor <= 0 || back.EventsPerSetup.Sampled == 0 {
		t.Fatalf("report sweep / ratio / events: %+v", back)
	}
	for _, f := range []string{"latest.md", "throughput.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	_ = workflows.StateVerified
}
