package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/steps"
	"github.com/hybridflow/hybridflow/workflows"
)

// The simulated worker below spawns PowerShell-host relay processes: this
// test binary re-run as a relay (sim.HostCommand).
func init() { sim.MaybeRunHost() }

const demoInventory = "../configs/inventory.demo.yaml"

// TestPlanDemoWorldWritesNothing runs the real `hybridflow plan -f
// inventory -t tenant` for every tenant of the demo inventory against the
// real dev server and a simulated worker on configs/sim/demo.yaml (real
// relays, real Graph and Exchange Online clients, registered by
// workerhost.ForBackend as hybridflow-worker does). Each tenant's output
// names the tenant and its mode, lists every documented step exactly once
// with a valid change and a reason, and ends with a summary that agrees
// with the number of writing steps; -o json returns the same plan as a
// "planned" result; `plan -f inventory` without -t prints the same plans
// for every tenant and a summary row per tenant that agrees with them. And
// planning writes nothing: the world's dump is byte-for-byte the same
// afterwards and no tenant received a write.
func TestPlanDemoWorldWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	world, err := sim.Load(filepath.Join("..", "configs", "sim", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	world.SetFaults(nil) // the demo's 3% Graph throttling only slows this down
	srv, _ := simWorker(t, ctx, world, false, "plan-test")

	inv, err := config.LoadInventory(demoInventory)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Tenants) != 20 {
		t.Fatalf("demo inventory has %d tenants, want 20", len(inv.Tenants))
	}
	before, err := world.Dump()
	if err != nil {
		t.Fatal(err)
	}
	addr := "--address=" + srv.FrontendHostPort()
	plan1 := func(tn config.Tenant, extra ...string) (int, string, string) {
		var out, errb bytes.Buffer
		args := append([]string{"plan", "-f", demoInventory, "-t", tn.ID, addr}, extra...)
		code := run(ctx, args, &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}

	// Four tenants at a time, like an operator's shell loop in parallel.
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		outputs = map[string]string{}
		sem     = make(chan struct{}, 4)
	)
	for _, tn := range inv.Tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			code, out, errOut := plan1(tn)
			mu.Lock()
			defer mu.Unlock()
			if code != 0 {
				t.Errorf("plan %s: exit %d\n%s%s", tn.ID, code, out, errOut)
			}
			outputs[tn.ID] = out
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	modes := map[string]int{}
	totalWrites := 0
	writesOf := map[string]int{}
	for _, tn := range inv.Tenants {
		mode, writes := checkPlanOutput(t, tn, outputs[tn.ID])
		modes[mode]++
		totalWrites += writes
		writesOf[tn.ID] = writes
	}
	t.Logf("tenant 1's plan:\n%s", outputs[inv.Tenants[0].ID])

	// Without -t: every tenant's plan (a dry-run rollout), then a summary
	// line per tenant that agrees with the plans above.
	var allOut, allErr bytes.Buffer
	if code := run(ctx, []string{"plan", "-f", demoInventory, addr}, &allOut, &allErr, func(string) string { return "" }); code != 0 {
		t.Fatalf("plan -f (every tenant): exit %d\n%s%s", code, allOut.String(), allErr.String())
	}
	blocks := strings.Split(strings.TrimRight(allOut.String(), "\n"), "\n\n")
	if len(blocks) != len(inv.Tenants)+1 {
		t.Fatalf("plan -f printed %d blocks, want %d plans and a summary:\n%s", len(blocks), len(inv.Tenants), allOut.String())
	}
	summary := strings.Split(blocks[len(blocks)-1], "\n")
	if len(summary) != len(inv.Tenants)+1 || !strings.HasPrefix(summary[0], "TENANT") {
		t.Fatalf("plan -f summary:\n%s", blocks[len(blocks)-1])
	}
	for i, tn := range inv.Tenants {
		if _, writes := checkPlanOutput(t, tn, blocks[i]); writes != writesOf[tn.ID] {
			t.Errorf("%s: %d writing steps in the inventory-wide plan, %d in its own", tn.ID, writes, writesOf[tn.ID])
		}
		want := "converged"
		switch {
		case writesOf[tn.ID] > 0:
			want = fmt.Sprintf("%d step(s) would write", writesOf[tn.ID])
		case strings.Contains(outputs[tn.ID], "blocked: "):
			want = "no step would write"
		}
		if row := summary[i+1]; !strings.HasPrefix(row, tn.ID) || !strings.HasSuffix(row, want) {
			t.Errorf("summary row %q, want tenant %s and %q", row, tn.ID, want)
		}
	}

	// -o json: the same plan as data, from a dry run that ended "planned".
	code, out, errOut := plan1(inv.Tenants[4], "-o", "json")
	if code != 0 {
		t.Fatalf("plan -o json: exit %d\n%s%s", code, out, errOut)
	}
	var res workflows.SetupResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("plan -o json is not a setup result: %v\n%s", err, out)
	}
	if res.State != workflows.StatePlanned || len(res.Plan) != len(steps.Registry) || res.Writes != 0 {
		t.Errorf("plan -o json: state %s, %d actions, %d writes; want planned, %d, 0", res.State, len(res.Plan), res.Writes, len(steps.Registry))
	}

	after, err := world.Dump()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("planning changed the world: dump differs (%d bytes before, %d after)\n%s", len(before), len(after), firstDiff(before, after))
	}
	for id, c := range world.Stats().ByTenant {
		if c.Writes != 0 || c.GraphWrites != 0 {
			t.Errorf("tenant %s received %d write(s) (%d on Graph) during plan", id, c.Writes, c.GraphWrites)
		}
	}
	t.Logf("planned %d tenants (%v) with %d writing step(s) in all, nothing written; %s", len(inv.Tenants), modes, totalWrites, time.Since(began).Round(time.Millisecond))
}

// checkPlanOutput checks one tenant's text plan (printPlan's format) and
// returns its mode and how many steps would write.
func checkPlanOutput(t *testing.T, tn config.Tenant, out string) (string, int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	head := fmt.Sprintf("%s (%s, %s) — mode ", tn.DisplayName, tn.ID, tn.Cloud)
	if len(lines) == 0 || !strings.HasPrefix(lines[0], head) {
		t.Errorf("%s: first line %q, want it to start with %q", tn.ID, lines[0], head)
		return "", 0
	}
	mode := strings.TrimPrefix(lines[0], head)
	if mode != string(plan.ModeDedicatedApp) && mode != string(plan.ModeLegacyFirstParty) {
		t.Errorf("%s: mode %q", tn.ID, mode)
	}
	valid := map[string]bool{}
	for _, c := range []plan.Change{plan.ChangeNone, plan.ChangeCreate, plan.ChangeUpdate, plan.ChangeSkip, plan.ChangeCheck, plan.ChangeBlocked} {
		valid[string(c)] = true
	}
	found := map[string]int{}
	writes := 0
	var blocked []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		for _, s := range steps.Registry {
			if f[0] != string(s.Name) {
				continue
			}
			found[f[0]]++
			if len(f) < 3 || !valid[f[1]] {
				t.Errorf("%s: step line %q: want <step> <change> <reason>", tn.ID, l)
				continue
			}
			if plan.Change(f[1]).Writes() {
				writes++
			}
			if plan.Change(f[1]) == plan.ChangeBlocked {
				blocked = append(blocked, f[0])
			}
		}
	}
	for _, s := range steps.Registry {
		if found[string(s.Name)] != 1 {
			t.Errorf("%s: step %s listed %d times, want once:\n%s", tn.ID, s.Name, found[string(s.Name)], out)
		}
	}
	last := lines[len(lines)-1]
	switch {
	case len(blocked) > 0 && !strings.Contains(last, fmt.Sprintf("blocked: %d step(s) need an operator (%s;", len(blocked), strings.Join(blocked, ", "))):
		t.Errorf("%s: steps %v are blocked, but the summary says %q", tn.ID, blocked, last)
	case writes == 0 && len(blocked) == 0 && !strings.Contains(last, "converged: a setup would write nothing"):
		t.Errorf("%s: no step writes, but the summary says %q", tn.ID, last)
	case writes == 0 && len(blocked) > 0 && (strings.Contains(last, "converged") || !strings.HasSuffix(last, "no step would write")):
		t.Errorf("%s: no step writes and %v are blocked, but the summary says %q", tn.ID, blocked, last)
	case writes > 0 && !strings.Contains(last, fmt.Sprintf("%d step(s) would write", writes)):
		t.Errorf("%s: %d steps write, but the summary says %q", tn.ID, writes, last)
	}
	return mode, writes
}

// firstDiff shows where two dumps start to differ.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("one dump is a prefix of the other (%d vs %d lines)", len(al), len(bl))
}
