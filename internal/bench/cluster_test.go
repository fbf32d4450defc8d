//go:build linux

package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/cluster"
)

// TestClusterDurableSmoke runs the durable runner on the cluster engine
// with six fresh tenants: every tenant verified, and the engine's CPU
// measured on both of its parts (temporal-server and PostgreSQL, whose
// backends are the postmaster's children), none of it counted as the
// harness's. A converged re-run writes nothing.
func TestClusterDurableSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the Temporal server")
	}
	if err := cluster.ServerBuilt(); err != nil {
		t.Skipf("the Temporal server is not built, so the cluster cannot start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n, c, seed = 6, 3, 9
	d, err := StartDurableCluster(ctx, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Engine() != EngineCluster || !strings.Contains(d.Describe(), "history shards") || !strings.Contains(d.Describe(), "PostgreSQL") {
		t.Fatalf("engine %q: %q", d.Engine(), d.Describe())
	}
	w, err := NewWorld(n, seed, smokeProfile())
	if err != nil {
		t.Fatal(err)
	}
	fresh, conv := freshThenConverged(t, ctx, d, w, c, "cluster-smoke", 1, 0)
	for _, r := range []RunResult{fresh, conv} {
		if r.Verified() != n || r.Engine != EngineCluster {
			t.Fatalf("%s on %s: %d of %d verified", r.Runner, r.Engine, r.Verified(), n)
		}
	}
	// A fresh tenant is dozens of history events and database writes.
	if fresh.ServerCPU <= 0 || fresh.PostgresCPU <= 0 || fresh.CPU <= 0 {
		t.Fatalf("CPU not measured: harness %s, server %s, PostgreSQL %s", fresh.CPU, fresh.ServerCPU, fresh.PostgresCPU)
	}
	// PostgreSQL's work is done by its backends, not the postmaster: every
	// history event is a write there, so it is a fair share of the
	// server's (a third to a half in the runs so far).
	if fresh.PostgresCPU < fresh.ServerCPU/10 {
		t.Fatalf("PostgreSQL used %s against the server's %s: its backends were not counted", fresh.PostgresCPU, fresh.ServerCPU)
	}
	if w := CostsOf(conv.Stats, tenantIDs(w), nil).Writes; w != 0 {
		t.Errorf("the converged re-run on the cluster wrote %d times", w)
	}
	if rss := d.ServerPeakRSS(); rss < 10<<20 {
		t.Errorf("temporal-server peak RSS %d bytes", rss)
	}
	t.Logf("%s: fresh %s (harness %s, server %s, PostgreSQL %s), converged %s (server %s, PostgreSQL %s)", d.Describe(),
		fresh.Wall.Round(time.Millisecond), fresh.CPU, fresh.ServerCPU, fresh.PostgresCPU, conv.Wall.Round(time.Millisecond), conv.ServerCPU, conv.PostgresCPU)
}

// The harness's CPU leaves out children named like an engine's processes
// and counts the others.
func TestCPUTimeLeavesOutEngines(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	data, err := os.ReadFile(sh)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// busy runs a spinning child until it has used 300 ms of CPU and
	// returns how much of that the harness counted, and the child's own.
	busy := func(name string) (counted, own time.Duration) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o755); err != nil {
			t.Fatal(err)
		}
		// The child's command name is its file's: a copy of sh named
		// postgres is "postgres" to /proc.
		cmd := exec.Command(path, "-c", "while :; do :; done")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		before := cpuTime()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		name = filepath.Base(path)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			own = childrenCPU(func(c string) bool { return c == name })
			if own >= 300*time.Millisecond {
				// The child keeps running: read the harness right after.
				counted = cpuTime() - before
				return counted, own
			}
		}
		t.Fatalf("the busy child %s used only %s of CPU in a minute", name, own)
		return 0, 0
	}
	for _, tc := range []struct {
		name   string
		engine bool
	}{{"busy-child", false}, {"postgres", true}, {cluster.ServerBinary, true}} {
		counted, own := busy(tc.name)
		t.Logf("a busy child named %s used %s; the harness counted %s", tc.name, own, counted)
		switch {
		case tc.engine && counted > own/2:
			t.Errorf("%s is an engine's process, but the harness counted %s of its %s", tc.name, counted, own)
		case !tc.engine && counted < own*8/10:
			t.Errorf("the harness counted %s of the %s its child %s used", counted, own, tc.name)
		}
	}
}

// TestMarkdownReportCluster: the cluster rows carry PostgreSQL's CPU as a
// third term, and the measures compare the engines.
func TestMarkdownReportCluster(t *testing.T) {
	r := &Report{
		Machine: Machine{Cores: 2, GoVersion: "go1.26.8", OS: "linux/amd64", Date: "2026-12-04 20:00 UTC"},
		Durable: RunStats{Runner: RunDurable, Tenants: 500, Concurrency: 50, WallSeconds: 30, PerMinute: 1000, Verified: 500, CPUPerTenantMs: 30, ServerCPUPerTenantMs: 60, Engine: EngineDevServer},
		Converged: RunStats{Runner: "durable (converged re-run)", Tenants: 500, Concurrency: 50, WallSeconds: 15, PerMinute: 2000, Verified: 500,
			ServerCPUPerTenantMs: 30},
		Cluster: &RunStats{Runner: RunDurable + " on the cluster", Tenants: 500, Concurrency: 50, WallSeconds: 40, PerMinute: 750, Verified: 500,
			CPUPerTenantMs: 31, ServerCPUPerTenantMs: 90, PostgresCPUPerTenantMs: 45, Engine: EngineCluster},
		ClusterConverged: &RunStats{Runner: RunDurable + " on the cluster (converged re-run)", Tenants: 500, Concurrency: 50, WallSeconds: 20, PerMinute: 1500, Verified: 500,
			CPUPerTenantMs: 15, ServerCPUPerTenantMs: 40, PostgresCPUPerTenantMs: 20, Engine: EngineCluster},
		ClusterEngine: "temporal-server 1.29.1 on PostgreSQL 15.18 (4 history shards)", RatioClusterDevServ: 0.75, ClusterServerRSSMB: 180,
	}
	md := r.Markdown()
	mustContain(t, "Markdown", md,
		"Cluster: temporal-server 1.29.1 on PostgreSQL 15.18 (4 history shards).",
		"| durable | 500 | 50 | 30.0 s | 1000 | 0 ms | 0 ms | 500/500 | 0 MB | 30 + 60 ms |",
		"| durable on the cluster | 500 | 50 | 40.0 s | 750 | 0 ms | 0 ms | 500/500 | 0 MB | 31 + 90 + 45 ms |",
		"| durable on the cluster (converged re-run) | 500 | 50 | 20.0 s | 1500 | 0 ms | 0 ms | 500/500 | 0 MB | 15 + 40 + 20 ms |",
		"| durable on the cluster / on the dev server (tenants/min) | 0.75 |",
		"| engine CPU per fresh tenant: cluster (temporal-server + PostgreSQL) / dev server | 90 + 45 = 135 ms / 60 ms |",
		"| engine CPU per converged tenant: cluster / dev server | 40 + 20 = 60 ms / 30 ms |",
		"| cluster temporal-server peak RSS | 180 MB |",
	)
	r.Cluster, r.ClusterConverged = nil, nil
	if md := r.Markdown(); strings.Contains(md, "on the cluster") || strings.Contains(md, "Cluster:") {
		t.Errorf("a report without the cluster shows cluster rows:\n%s", md)
	}
}
