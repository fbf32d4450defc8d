//go:build linux

package cluster_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/chaos"
	"github.com/hybridflow/hybridflow/internal/cluster"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// standIn is the PowerShell stand-in every site's shell.command runs,
// built once by TestMain (standInErr when that failed; empty in -short).
var standIn, standInErr = "", error(nil)

func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	if !testing.Short() {
		dir, standIn, standInErr = chaos.BuildStandIn("cluster")
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// rolloutTenants is the size of the cluster rollout.
const rolloutTenants = 50

// FiguresEnv names a file the rollout's figures are written to.
const FiguresEnv = "HYBRIDFLOW_CLUSTER_FIGURES"

// TestClusterRollout: a rollout of 50 generated tenants on the
// PostgreSQL-backed server, through the worker configuration an operator
// deploys (real backend, the stand-alone simulator, PowerShell stand-ins),
// while the server is SIGKILLed and started again once and PostgreSQL
// crashes (immediate stop) and starts again once. Every tenant must end
// verified; the chaos suite's invariants must hold: nothing the product
// did not create is lost, no certificate is added twice, no tenant's step
// ran twice at once, no tenant was set up by two runs at once.
func TestClusterRollout(t *testing.T) {
	needCluster(t)
	if standInErr != nil {
		t.Fatal(standInErr)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := stateDir(t)
	showLogs(t, dir)

	c, err := cluster.Start(ctx, cluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Stop() }()
	fig := figures{startup: time.Since(began)}

	sims, err := simserver.Start(context.Background(), simserver.Options{World: newWorld(t, rolloutTenants, 2121), StateDir: filepath.Join(t.TempDir(), "sim")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sims.Close() }()
	admin, err := simserver.Dial(sims.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	before := dumpWorld(ctx, t, admin, "before")

	cl, err := client.Dial(client.Options{HostPort: c.HostPort(), Namespace: c.Namespace(), Identity: "cluster-operator", Logger: logging.NewTemporal(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	inv := sims.World().Inventory()
	var sites []string
	for _, tn := range inv.Tenants {
		if !slices.Contains(sites, tn.Site) {
			sites = append(sites, tn.Site)
		}
	}
	rec := &chaos.Recorder{}
	w := startWorker(ctx, t, c, workerConfig(t, sims, sites), rec)
	defer w.stop()

	in := workflows.RolloutInput{Name: "cluster", Concurrency: 10, Tenants: inv.Tenants, Setup: workflows.SetupOptions{
		Retry:           workflows.RetryOptions{InitialInterval: 200 * time.Millisecond, MaximumInterval: 2 * time.Second, MaximumAttempts: 8},
		VerifyInterval:  500 * time.Millisecond,
		VerifyDeadline:  2 * time.Minute,
		ScheduleToStart: 4 * time.Minute,
		StartToClose:    20 * time.Second,
	}}
	id := workflows.RolloutWorkflowID(in.Name)
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.Rollout, in)
	if err != nil {
		t.Fatal(err)
	}
	rolloutStart := time.Now()

	// The kill and the crash land mid-rollout, judged by progress.
	killAt, crashAt := rolloutTenants/5, rolloutTenants/2
	at := func() string { return "+" + time.Since(rolloutStart).Round(100*time.Millisecond).String() }
	var last workflows.RolloutProgress
	for {
		p, err := chaos.Progress(ctx, cl, id)
		if err == nil {
			last = p
			ended := p.Done + len(chaos.PausedOf(p))
			if fig.killed == 0 && ended >= killAt {
				t.Logf("%s %d ended: SIGKILL the server", at(), ended)
				fig.killedAt = ended
				t0 := time.Now()
				if err := c.KillServer(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				if err := c.StartServer(ctx); err != nil {
					t.Fatalf("start the server again: %v", err)
				}
				fig.killed, fig.serverDown = 1, time.Since(t0)
				fig.progressAfterKill = waitProgress(ctx, t, cl, id, ended)
				t.Logf("%s server back after %s; the rollout moved on %s later", at(), fig.serverDown.Round(100*time.Millisecond), fig.progressAfterKill.Round(100*time.Millisecond))
			} else if fig.crashed == 0 && ended >= crashAt {
				t.Logf("%s %d ended: crash PostgreSQL (immediate stop)", at(), ended)
				fig.crashedAt = ended
				t0 := time.Now()
				if err := c.CrashPostgres(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
				if err := c.StartPostgres(ctx); err != nil {
					t.Fatalf("start PostgreSQL again: %v", err)
				}
				fig.crashed, fig.pgDown = 1, time.Since(t0)
				fig.progressAfterCrash = waitProgress(ctx, t, cl, id, ended)
				t.Logf("%s PostgreSQL back after %s; the rollout moved on %s later", at(), fig.pgDown.Round(100*time.Millisecond), fig.progressAfterCrash.Round(100*time.Millisecond))
			}
			if chaos.Settled(p) {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the rollout did not settle: last progress %+v (error %v)", last, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	if fig.killed != 1 || fig.crashed != 1 {
		t.Fatalf("the rollout settled before the kill and the crash: %d kill(s), %d crash(es)", fig.killed, fig.crashed)
	}
	// A tenant paused by the outage (its retries spent while the server
	// or the database was away) must say why, and an operator retry must
	// carry it to the end.
	for _, a := range chaos.PausedOf(last) {
		if a.Step == "" || a.ErrorType == "" || a.Error == "" {
			t.Errorf("%s paused without a reason: %+v", a.TenantID, a)
		}
		fig.paused = append(fig.paused, fmt.Sprintf("%s at %s: %s", a.TenantID, a.Step, a.ErrorType))
		h, err := cl.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.SetupWorkflowID(a.TenantID), UpdateName: workflows.UpdateRetry,
			Args: []any{workflows.OperatorAction{Reason: "cluster test: the outage is over"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			var step string
			err = h.Get(ctx, &step)
		}
		if err != nil {
			t.Fatalf("retry %s: %v", a.TenantID, err)
		}
	}
	var final workflows.RolloutProgress
	if err := run.Get(ctx, &final); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	fig.rolloutWall = time.Since(rolloutStart)
	for _, tn := range inv.Tenants {
		var res workflows.SetupResult
		err := cl.GetWorkflow(ctx, workflows.SetupWorkflowID(tn.ID), "").Get(ctx, &res)
		switch {
		case err != nil:
			t.Errorf("%s: %v", tn.ID, err)
		case res.State != workflows.StateVerified:
			t.Errorf("%s ended %s, want verified (%v)", tn.ID, res.State, res.Verification)
		default:
			fig.verified++
		}
	}

	after := dumpWorld(ctx, t, admin, "after")
	execs := rec.Executions()
	fig.attempts = len(execs)
	for _, x := range execs {
		if x.Err != "" {
			fig.failedAttempts++
		}
	}
	runs := setupRuns(ctx, t, cl)
	fig.setupRuns = len(runs)
	var violations []string
	for _, chk := range []struct {
		name string
		v    []string
	}{
		{"nothing-lost", e2e.NothingLost(before, after)},
		{"no-duplicate-thumbprints", e2e.NewDuplicates(before, after)},
		{"no-step-twice-at-once", chaos.Overlaps(execs)},
		{"no-tenant-twice-at-once", chaos.RunOverlaps(runs)},
	} {
		fig.checks = append(fig.checks, chk.name)
		for _, v := range chk.v {
			violations = append(violations, chk.name+": "+v)
		}
	}
	fig.violations = len(violations)
	fig.serverCPU, fig.pgCPU = c.CPU()
	fig.wall = time.Since(began)
	t.Logf("\n%s", fig)
	// make test prints this file after go test, which shows a passing
	// test's log only with -v.
	if path := os.Getenv(FiguresEnv); path != "" {
		if err := os.WriteFile(path, []byte(fig.String()+"\n"), 0o644); err != nil {
			t.Errorf("write the figures to %s: %v", path, err)
		}
	}
	for _, v := range violations {
		t.Error(v)
	}
	if fig.verified != rolloutTenants {
		t.Errorf("verified %d of %d", fig.verified, rolloutTenants)
	}
}

// figures are what the cluster rollout prints.
type figures struct {
	startup, wall, rolloutWall time.Duration
	killed, crashed            int
	killedAt, crashedAt        int
	serverDown, pgDown         time.Duration
	progressAfterKill          time.Duration
	progressAfterCrash         time.Duration
	verified, attempts         int
	failedAttempts, setupRuns  int
	paused, checks             []string
	violations                 int
	serverCPU, pgCPU           time.Duration
}

func (f figures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster rollout: %d tenants on Temporal %s with PostgreSQL in %s (cluster start %s, rollout %s)\n",
		rolloutTenants, cluster.ServerVersion, f.wall.Round(time.Second), f.startup.Round(100*time.Millisecond), f.rolloutWall.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  server SIGKILLed %d time(s) (at %d ended): back in %s, the rollout moved on %s later\n",
		f.killed, f.killedAt, f.serverDown.Round(100*time.Millisecond), f.progressAfterKill.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  PostgreSQL crashed %d time(s) (at %d ended): back in %s, the rollout moved on %s later\n",
		f.crashed, f.crashedAt, f.pgDown.Round(100*time.Millisecond), f.progressAfterCrash.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "  verified %d of %d; paused and retried by an operator %d %v\n", f.verified, rolloutTenants, len(f.paused), f.paused)
	fmt.Fprintf(&b, "  activity attempts %d (%d failed); setup runs %d\n", f.attempts, f.failedAttempts, f.setupRuns)
	fmt.Fprintf(&b, "  CPU: server %s, PostgreSQL %s (current processes and their children)\n", f.serverCPU.Round(10*time.Millisecond), f.pgCPU.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "  invariant checks %d (%s); violations %d", len(f.checks), strings.Join(f.checks, ", "), f.violations)
	return b.String()
}

// waitProgress waits until more than ended tenants have ended and says how
// long that took.
func waitProgress(ctx context.Context, t *testing.T, cl client.Client, id string, ended int) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		if p, err := chaos.Progress(ctx, cl, id); err == nil && (p.Done+len(chaos.PausedOf(p)) > ended || chaos.Settled(p)) {
			return time.Since(t0)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the rollout made no progress after the outage: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// worker is one worker incarnation: the real backend built from the
// worker config, registered as hybridflow-worker registers it.
type worker struct {
	cli   client.Client
	hosts []*workerhost.Host
	be    *backend.Backend
	once  sync.Once
}

func startWorker(ctx context.Context, t *testing.T, c *cluster.Cluster, cfg *config.WorkerConfig, rec *chaos.Recorder) *worker {
	t.Helper()
	be, err := backend.NewReal(cfg, zap.NewNop(), func(string) string { return "" })
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	hc, err := client.Dial(client.Options{HostPort: c.HostPort(), Namespace: c.Namespace(), Identity: "cluster-worker",
		Logger:       logging.NewTemporal(zap.NewNop()),
		Interceptors: []interceptor.ClientInterceptor{rec.Interceptor(1)}})
	if err != nil {
		be.Close()
		t.Fatalf("dial: %v", err)
	}
	w := &worker{cli: hc, be: be}
	if w.hosts, err = chaos.StartHosts(hc, be, cfg, "cluster-worker", time.Second); err != nil {
		w.stop()
		t.Fatalf("worker: %v", err)
	}
	_ = ctx
	return w
}

func (w *worker) stop() {
	w.once.Do(func() {
		for i := len(w.hosts) - 1; i >= 0; i-- {
			w.hosts[i].Stop()
		}
		w.cli.Close()
		w.be.Close()
	})
}

// workerConfig is the configuration an operator would deploy against the
// simulator (chaos.WorkerConfig): the cloud role and an on-prem role per
// site, each site's host the stand-in in a remote session.
func workerConfig(t *testing.T, s *simserver.Server, sites []string) *config.WorkerConfig {
	t.Helper()
	cfg, err := chaos.WorkerConfig(s, chaos.WorkerSpec{StandIn: standIn, Sites: sites, CallTimeout: 15 * time.Second,
		WorkflowPollers: 2, ActivityPollers: 1}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newWorld generates n tenants, one site each, around the wall clock (the
// stand-alone simulator judges key expiry by it), with foreign, expired
// and half-configured state for the invariants to guard.
func newWorld(t *testing.T, n int, seed int64) *sim.World {
	t.Helper()
	w, err := chaos.NewWorld(t.Name(), "cluster", n, seed)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func dumpWorld(ctx context.Context, t *testing.T, admin *simserver.Client, what string) *sim.World {
	t.Helper()
	w, err := chaos.DumpWorld(ctx, admin, what)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// setupRuns lists every Setup execution in PostgreSQL's visibility store.
func setupRuns(ctx context.Context, t *testing.T, cl client.Client) []chaos.Run {
	t.Helper()
	runs, err := chaos.SetupRuns(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}
