package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestE2EHarnessRunsTheProductionPath: the worker these tests run is the
// one an operator deploys, and the world outlives it.
//   - Every incarnation's backend is backend.NewReal's (kind "real").
//   - Each site's PowerShell host is a process of the built stand-in
//     (hybridflow-pwsh, started from the site's shell.command; checked
//     through /proc on Linux), and it reached the simulator's remote
//     PowerShell gateway at /PowerShell/<site>, which attributed the
//     session to the one tenant there.
//   - A setup of each tenant verifies, and the simulator saw it arrive the
//     production way: tokens from the token endpoint (the credential read
//     from the simulator's file), Graph and Exchange Online over HTTPS,
//     and every PowerShell call through a gateway session of the tenant's
//     own site (the in-process relay's sessions name no site).
//   - The worker is SIGKILLed: the world keeps every change, a new
//     incarnation opens new gateway sessions, and setting a tenant up
//     again writes nothing, because the world it converged is still there.
func TestE2EHarnessRunsTheProductionPath(t *testing.T) {
	w := generated(t, sim.GenerateSpec{Tenants: 2, Sites: 2, Prefix: "prod"}, 4430, nil)
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := e.snapshot()

	sites := map[string]string{} // site → tenant
	for _, tn := range before.Tenants {
		sites[tn.Site] = tn.ID
	}
	if len(sites) != 2 {
		t.Fatalf("world not as designed: sites %v", sites)
	}
	upgrades := func() map[string]int {
		n := map[string]int{}
		recs, _, _ := e.sim.Requests().Since(0)
		for _, r := range recs {
			if r.Protocol == sim.ProtoShell && r.Method == "POST" && r.Status == 101 && r.OK {
				if r.Path != "/"+simserver.ExchangeEndpoint+"/"+r.Site || !strings.EqualFold(sites[r.Site], r.Tenant) {
					t.Errorf("gateway session %s for tenant %s (site %s): not the tenant at that site", r.Path, r.Tenant, r.Site)
				}
				n[r.Site]++
			}
		}
		return n
	}

	// The worker's start probe started a stand-in for each site.
	if got := upgrades(); len(got) != len(sites) {
		t.Errorf("gateway sessions by site %v; want one for each of %d sites", got, len(sites))
	}
	if runtime.GOOS == "linux" {
		if pids := standInChildren(t, pwshPath(t)); len(pids) < len(sites) {
			t.Errorf("%d live hybridflow-pwsh process(es) %v started by this worker; want at least %d (one per site)", len(pids), pids, len(sites))
		}
	} else {
		t.Logf("host processes not inspected on %s", runtime.GOOS)
	}

	for _, tn := range before.Tenants {
		res, err := e.resultUnlessPaused(ctx, e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{}))
		if err != nil || res.State != workflows.StateVerified {
			t.Fatalf("%s: state %s, error %v", tn.ID, res.State, err)
		}
	}

	// How the calls arrived.
	type seen struct{ token, graph, exo, shell int }
	by := map[string]*seen{}
	for _, tn := range before.Tenants {
		by[strings.ToLower(tn.ID)] = &seen{}
	}
	recs, _, _ := e.sim.Requests().Since(0)
	for _, r := range recs {
		s := by[strings.ToLower(r.Tenant)]
		switch {
		case r.Protocol == sim.ProtoShell && r.Method != "POST":
			if s == nil || r.Site == "" || !strings.EqualFold(sites[r.Site], r.Tenant) {
				t.Errorf("PowerShell call %s for tenant %q at site %q: not through a gateway session of the tenant's site", r.Cmdlet, r.Tenant, r.Site)
				continue
			}
			s.shell++
		case s == nil:
		case r.Protocol == sim.ProtoToken && r.OK:
			s.token++
		case r.Protocol == sim.ProtoGraph:
			s.graph++
		case r.Protocol == sim.ProtoEXO:
			s.exo++
		}
	}
	for id, s := range by {
		if s.token == 0 || s.graph == 0 || s.exo == 0 || s.shell == 0 {
			t.Errorf("tenant %s: %d token, %d Graph, %d Exchange Online, %d PowerShell request(s); want each", id, s.token, s.graph, s.exo, s.shell)
		}
	}

	// SIGKILL; the world lives on.
	converged, err := e.snapshot().Dump()
	if err != nil {
		t.Fatal(err)
	}
	sessions := upgrades()
	e.killWorker()
	if now, _ := e.snapshot().Dump(); string(now) != string(converged) {
		t.Errorf("the world changed when the worker was killed")
	}
	e.startWorker()
	for site, n := range upgrades() {
		if n <= sessions[site] {
			t.Errorf("site %s: %d gateway session(s) after the restart, %d before; the new worker opened none", site, n, sessions[site])
		}
	}
	a := before.Tenants[0]
	c0 := *e.world.Stats().ByTenant[strings.ToLower(a.ID)]
	again, err := e.result(ctx, e.start(ctx, e.tenant(a.ID), workflows.SetupOptions{}))
	c1 := *e.world.Stats().ByTenant[strings.ToLower(a.ID)]
	if err != nil || again.State != workflows.StateVerified || again.Writes != 0 || c1.Writes != c0.Writes {
		t.Errorf("setup of %s after the kill: state %s, error %v, %d workflow write(s), %d world write(s); want verified and none", a.ID, again.State, err, again.Writes, c1.Writes-c0.Writes)
	}
	e.mu.Lock()
	kinds := e.kinds
	e.mu.Unlock()
	for i, k := range kinds {
		if k != "real" {
			t.Errorf("worker %d's backend is %q, want real", i+1, k)
		}
	}
	if len(kinds) != 2 {
		t.Errorf("%d worker incarnation(s), want 2", len(kinds))
	}
	for id, s := range by {
		t.Logf("tenant %s: %d token, %d Graph, %d Exchange Online, %d PowerShell request(s)", id, s.token, s.graph, s.exo, s.shell)
	}
	t.Logf("worker backends %v; gateway sessions by site %v", kinds, upgrades())
}

// standInChildren lists this process's children running exe (Linux).
func standInChildren(t *testing.T, exe string) []int {
	t.Helper()
	want, err := filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if got, err := os.Readlink(filepath.Join("/proc", d.Name(), "exe")); err == nil && got == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestE2EHostCrashesThroughTheStandIn: the site's PowerShell host dies
// mid-call twice, the way the stand-in dies when the simulator drops its
// gateway session (exit status 3): on the first New-AuthServer before the
// cmdlet ran (host_crash), and on the first New-IntraOrganizationConnector
// after it ran (apply_then_drop: the connector exists, the reply is lost).
// The shell client starts a new host for the step's retry, and the setup
// verifies without an operator with exactly the expected additions: the
// retried connector step finds the connector the lost reply created
// instead of creating a second one.
func TestE2EHostCrashesThroughTheStandIn(t *testing.T) {
	w := generated(t, sim.GenerateSpec{Tenants: 1, Prefix: "crash"}, 4431, nil)
	w.SetFaults([]sim.FaultRule{
		{Protocol: sim.ProtoShell, Cmdlet: "New-AuthServer", Kind: sim.FaultHostCrash, FailFirstN: 1},
		{Protocol: sim.ProtoShell, Cmdlet: "New-IntraOrganizationConnector", Kind: sim.FaultApplyThenDrop, FailFirstN: 1},
	})
	e := newEnv(t, w)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := e.snapshot()
	tn := before.Tenants[0]
	res, err := e.resultUnlessPaused(ctx, e.start(ctx, e.tenant(tn.ID), workflows.SetupOptions{}))
	logSteps(t, res)
	if err != nil || res.State != workflows.StateVerified {
		t.Fatalf("state %s, error %v", res.State, err)
	}
	after := e.snapshot()
	checkNothingLost(t, before, after)
	checkAdditions(t, before, after, wantDedicated(t, tn, ""))
	// Both faults fired, each ending a gateway session; each retry ran on
	// a new one.
	recs, _, _ := e.sim.Requests().Since(0)
	fired := map[string]bool{}
	sessions := 0
	for _, r := range recs {
		if r.Protocol != sim.ProtoShell {
			continue
		}
		if r.Method == "POST" && r.OK {
			sessions++
		}
		for _, k := range strings.Split(r.Fault, ",") {
			fired[r.Cmdlet+" "+k] = true
		}
	}
	if !fired["New-AuthServer "+sim.FaultHostCrash] || !fired["New-IntraOrganizationConnector "+sim.FaultApplyThenDrop] {
		t.Errorf("faults fired: %v; want host_crash on New-AuthServer and apply_then_drop on New-IntraOrganizationConnector", fired)
	}
	if sessions < 3 {
		t.Errorf("%d gateway session(s); want at least 3 (the probe's, and one after each crash)", sessions)
	}
	if o := e.overlaps(); len(o) > 0 {
		t.Errorf("steps ran twice at once:\n%s", strings.Join(o, "\n"))
	}
}
