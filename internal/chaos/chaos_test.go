package chaos_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/chaos"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// ModeEnv selects the long run: HYBRIDFLOW_CHAOS=full (make chaos).
// SeedEnv overrides the seed of the world and the schedule.
const (
	ModeEnv = "HYBRIDFLOW_CHAOS"
	SeedEnv = "HYBRIDFLOW_CHAOS_SEED"
)

func TestMain(m *testing.M) {
	// The simulated PowerShell hosts are this test binary re-run as a relay.
	sim.MaybeRunHost()
	os.Exit(m.Run())
}

// epoch pins the simulated clock: which keys have expired must not depend
// on the day the suite runs.
var epoch = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// rig is the system under chaos: the dev server as a child process on a
// SQLite file, the simulated world served on loopback with real
// PowerShell-host relay processes, and worker incarnations registered by
// workerhost.ForBackend exactly as hybridflow-worker does.
type rig struct {
	t     *testing.T
	srv   *devserver.Process
	c     client.Client // the starter's and operator's connection
	world *sim.World
	be    *backend.Backend
	roles []config.Role
	rec   *chaos.Recorder

	mu      sync.Mutex
	gen     int
	killed  map[int]time.Time // incarnation -> when it was killed
	host    *workerhost.Host
	hostCli client.Client
}

// startWorker starts a new incarnation: its own connection, identity and
// empty workflow cache, as a restarted hybridflow-worker process has.
func (r *rig) startWorker(ctx context.Context) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	identity := fmt.Sprintf("chaos-worker-%d", r.gen)
	var hc client.Client
	var err error
	for {
		hc, err = client.Dial(client.Options{HostPort: r.srv.HostPort(), Namespace: "default", Identity: identity,
			Logger:       logging.NewTemporal(zap.NewNop()),
			Interceptors: []interceptor.ClientInterceptor{r.rec.Interceptor(r.gen)}})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("worker %d: dial: %v", r.gen, err)
	}
	h, err := workerhost.Start(hc, r.roles, workerhost.ForBackend(r.be, identity), zap.NewNop(),
		workerhost.Options{Identity: identity, StopTimeout: time.Millisecond, MaxConcurrentActivities: 100})
	if err != nil {
		hc.Close()
		r.t.Fatalf("worker %d: %v", r.gen, err)
	}
	r.host, r.hostCli = h, hc
}

// killWorker makes the worker vanish as a SIGKILLed process does: the
// connection closes first, so nothing in flight is reported (no task
// completion, no activity failure), then its goroutines stop. The server
// recovers what it held by its timeouts alone.
func (r *rig) killWorker() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.killed == nil {
		r.killed = map[int]time.Time{}
	}
	if r.host != nil {
		r.killed[r.gen] = time.Now()
	}
	if r.hostCli != nil {
		r.hostCli.Close()
		r.hostCli = nil
	}
	if r.host != nil {
		r.host.Stop()
		r.host = nil
	}
}

func (r *rig) progress(ctx context.Context, id string) (workflows.RolloutProgress, error) {
	var p workflows.RolloutProgress
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := r.c.QueryWorkflow(qctx, id, "", workflows.QueryProgress)
	if err != nil {
		return p, err
	}
	return p, v.Get(&p)
}

func pausedOf(p workflows.RolloutProgress) []workflows.TenantOutcome {
	var out []workflows.TenantOutcome
	for _, a := range p.Attention {
		if a.State == workflows.StatePaused {
			out = append(out, a)
		}
	}
	return out
}

// settled: nothing more happens without an operator (as the CLI judges it).
func settled(p workflows.RolloutProgress) bool {
	n := len(pausedOf(p))
	return p.Finished || (p.Total > 0 && p.Pending == 0 && p.Running == n)
}

func newWorld(t *testing.T, n int, seed int64) *sim.World {
	t.Helper()
	// Half-configured tenants with foreign keys, expired keys and
	// HCW-named auth servers give NothingLost something to protect.
	ts, err := sim.GenerateTenants(sim.GenerateSpec{Tenants: n, Prefix: "chaos", Sites: 2,
		Clouds:    []string{"global", "gcc", "gcchigh", "dod", "china"},
		OldBuilds: 0.1, LegacyServers: 0.05, ForeignKeys: 0.4, ExpiredKeys: 0.2, HalfConfigured: 0.4, HCWNames: 0.2}, seed, epoch)
	if err != nil {
		t.Fatal(err)
	}
	// Every generated tenant can verify (old builds are legacy only in GCC
	// High and DoD, mixed builds where the first-party path is blocked), so
	// a tenant that does not is the finding.
	w := &sim.World{FixedNow: epoch, Seed: seed, Tenants: ts}
	data, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sim.Parse(t.Name(), data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// protected counts what NothingLost guards in a world, so the summary
// shows the check had something to guard.
func protected(w *sim.World) (keys, spns int) {
	for _, tn := range w.Tenants {
		for _, sp := range tn.Entra.ServicePrincipals {
			keys += len(sp.KeyCredentials)
			spns += len(sp.ServicePrincipalNames)
		}
		for _, a := range tn.Entra.Applications {
			keys += len(a.KeyCredentials)
		}
	}
	return keys, spns
}

// TestChaosRollout is the chaos suite: a rollout of generated tenants
// while the worker is killed and restarted, the dev server is SIGKILLed
// and restarted on its SQLite file, and windows of 429s, 503s, dropped
// connections and crashing PowerShell hosts open and close; then the
// invariants on the world and on what the workers ran. The short size
// runs in make test; HYBRIDFLOW_CHAOS=full is make chaos.
func TestChaosRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: the Temporal dev server, killed and restarted")
	}
	size, limit := chaos.Short, 6*time.Minute
	if os.Getenv(ModeEnv) == "full" {
		size, limit = chaos.Full, 14*time.Minute
	}
	seed := int64(1010)
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, s, err)
		}
		seed = v
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	dir := t.TempDir()

	w := newWorld(t, size.Tenants, seed)
	before := w.Clone()
	srvLog, err := os.Create(filepath.Join(dir, "temporal.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer srvLog.Close()
	// t.TempDir is gone after the test: show the server's last words here.
	t.Cleanup(func() {
		if t.Failed() {
			if data, err := os.ReadFile(srvLog.Name()); err == nil {
				lines := strings.Split(strings.TrimSpace(string(data)), "\n")
				t.Logf("dev server log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
			}
		}
	})
	srv, err := devserver.StartProcess(ctx, devserver.ProcessOptions{DBFile: filepath.Join(dir, "temporal.db"), Log: srvLog})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.Dial(client.Options{HostPort: srv.HostPort(), Namespace: "default", Identity: "chaos-operator", Logger: logging.NewTemporal(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	be, err := backend.NewSimulated(bctx, w, zap.NewNop(), backend.SimOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	r := &rig{t: t, srv: srv, c: c, world: w, be: be, rec: &chaos.Recorder{}, roles: []config.Role{{Kind: config.RoleCloud}}}
	inv := w.Inventory()
	for _, tn := range inv.Tenants {
		role := config.Role{Kind: config.RoleOnPrem, Site: tn.Site}
		if !slices.Contains(r.roles, role) {
			r.roles = append(r.roles, role)
		}
	}
	r.startWorker(ctx)
	defer r.killWorker()

	// Started as `hybridflow rollout` starts it: large inventories by file.
	in := workflows.RolloutInput{Name: "chaos-" + size.Name, Concurrency: size.Concurrency, Setup: workflows.SetupOptions{
		Retry:           workflows.RetryOptions{InitialInterval: 200 * time.Millisecond, MaximumInterval: 2 * time.Second, MaximumAttempts: 6},
		VerifyInterval:  500 * time.Millisecond,
		VerifyDeadline:  time.Minute,
		ScheduleToStart: 3 * time.Minute,
		// A killed worker's attempt is noticed after this long.
		StartToClose: 15 * time.Second,
	}}
	if len(inv.Tenants) > 100 {
		data, err := yaml.Marshal(config.Inventory{Tenants: inv.Tenants})
		if err != nil {
			t.Fatal(err)
		}
		in.InventoryPath = filepath.Join(dir, "inventory.yaml")
		if err := os.WriteFile(in.InventoryPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// Hand over at least once mid-chaos (paused tenants included).
		in.ContinueAsNewEvery = size.Tenants / 2
	} else {
		in.Tenants = inv.Tenants
	}
	id := workflows.RolloutWorkflowID(in.Name)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Rollout, in)
	if err != nil {
		t.Fatal(err)
	}

	sum := chaos.Summary{Size: size, Seed: seed, Tenants: size.Tenants, Faults: map[string]map[string]int{}}
	events := chaos.Plan(seed, size)
	open := ""
	closeWindow := func() {
		if open == "" {
			return
		}
		// SetFaults starts a new injector: take the old one's counts first.
		sum.Faults[open] = w.FaultsFired()
		w.SetFaults(nil)
		open = ""
	}
	at := func() string { return "+" + time.Since(began).Round(100*time.Millisecond).String() }
	next := 0
	var last workflows.RolloutProgress
	for {
		p, err := r.progress(ctx, id)
		if err == nil {
			last = p
			ended := p.Done + len(pausedOf(p))
			for next < len(events) && events[next].At <= ended {
				ev := events[next]
				if ev.Kind == chaos.FaultsOff && open == ev.Window && total(w.FaultsFired()) == 0 {
					// Tenants that end together cross both of a window's
					// points at once; hold it open (and what follows) until
					// it has injected something, or it tested nothing.
					break
				}
				next++
				t.Logf("%s %s (%d ended, %d running)", at(), ev, ended, p.Running)
				switch ev.Kind {
				case chaos.KillWorker:
					r.killWorker()
					time.Sleep(ev.Down)
					r.startWorker(ctx)
					sum.WorkerKills++
				case chaos.RestartServer:
					down := time.Now()
					if err := srv.Kill(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(ev.Down)
					if err := srv.Start(ctx); err != nil {
						t.Fatalf("restart the dev server: %v", err)
					}
					sum.ServerDown += time.Since(down)
					sum.ServerRestarts++
					t.Logf("%s dev server back after %s", at(), time.Since(down).Round(100*time.Millisecond))
				case chaos.FaultsOn:
					closeWindow()
					w.SetFaults(chaos.Windows[ev.Window])
					open = ev.Window
				case chaos.FaultsOff:
					if open == ev.Window {
						closeWindow()
					}
				}
			}
			if settled(p) {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the rollout did not settle in %s: last progress %+v (error %v)", limit, last, err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	closeWindow()
	if next < len(events) {
		t.Errorf("the rollout settled before the schedule ended: %d of %d events ran", next, len(events))
	}
	t.Logf("%s settled: %v, %d paused", at(), last.Counts, len(pausedOf(last)))

	// Paused tenants are allowed only with a reason; then an operator
	// retry must carry each one to the end, the faults being over.
	for round := 0; ; round++ {
		paused := pausedOf(last)
		if len(paused) == 0 {
			break
		}
		if round == 3 {
			t.Fatalf("still paused after %d rounds of operator retries: %+v", round, paused)
		}
		for _, a := range paused {
			if a.Step == "" || a.ErrorType == "" || a.Error == "" {
				t.Errorf("%s paused without a reason: step %q, error type %q, error %q", a.TenantID, a.Step, a.ErrorType, a.Error)
			}
			sum.Paused = append(sum.Paused, fmt.Sprintf("%s: step %s: %s: %s", a.TenantID, a.Step, a.ErrorType, firstLine(a.Error)))
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.SetupWorkflowID(a.TenantID), UpdateName: workflows.UpdateRetry,
				Args: []any{workflows.OperatorAction{Reason: "chaos suite: the faults are over"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err == nil {
				var step string
				err = h.Get(ctx, &step)
			}
			if err != nil {
				t.Fatalf("retry %s: %v", a.TenantID, err)
			}
			sum.Retried++
		}
		for {
			p, err := r.progress(ctx, id)
			if err == nil && settled(p) {
				last = p
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the rollout did not settle after the retries: %+v", p)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	var final workflows.RolloutProgress
	if err := run.Get(ctx, &final); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	sum.States, sum.ContinuedAsNew = final.Counts, final.ContinuedAsNew

	// Every tenant's own result, read from its setup workflow.
	for _, tn := range inv.Tenants {
		var res workflows.SetupResult
		err := c.GetWorkflow(ctx, workflows.SetupWorkflowID(tn.ID), "").Get(ctx, &res)
		switch {
		case err != nil:
			t.Errorf("%s: %v", tn.ID, err)
		case res.State != workflows.StateVerified:
			t.Errorf("%s ended %s, want verified (%v)", tn.ID, res.State, res.Verification)
		default:
			sum.Verified++
		}
	}

	// The invariants, on the world dump and on what ran.
	after := w.Clone()
	if data, err := after.Dump(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "world-after.yaml"), data, 0o600)
	}
	check := func(name string, violations []string) {
		sum.Checks = append(sum.Checks, name)
		for _, v := range violations {
			sum.Violations = append(sum.Violations, name+": "+v)
		}
	}
	check("nothing-lost", e2e.NothingLost(before, after))
	check("no-duplicate-thumbprints", e2e.NewDuplicates(before, after))
	execs := r.rec.Executions()
	sum.Executions = len(execs)
	for _, x := range execs {
		if x.Err != "" {
			sum.FailedAttempts++
		}
		if k, ok := r.killed[x.Worker]; ok && x.Start.Before(k) && !x.End.Before(k) {
			sum.CutByKill++
		}
	}
	check("no-step-twice-at-once", chaos.Overlaps(execs))
	check("no-tenant-twice-at-once", chaos.RunOverlaps(setupRuns(ctx, t, c)))
	sum.Wall = time.Since(began)

	keys, spns := protected(before)
	t.Logf("protected before the rollout: %d key credentials, %d service principal names; %d duplicate(s) seeded",
		keys, spns, len(e2e.DuplicateThumbprints(before)))
	t.Logf("\n%s", sum)
	for _, v := range sum.Violations {
		t.Error(v)
	}
	if sum.WorkerKills != size.WorkerKills || sum.ServerRestarts != size.ServerRestarts {
		t.Errorf("ran %d worker kills and %d server restarts, planned %d and %d", sum.WorkerKills, sum.ServerRestarts, size.WorkerKills, size.ServerRestarts)
	}
	for _, name := range chaos.WindowNames() {
		if total(sum.Faults[name]) == 0 {
			t.Errorf("fault window %s injected nothing: the suite did not test it", name)
		}
	}
}

// setupRuns lists every Setup execution the server knows, with open and
// close times, for the overlap check.
func setupRuns(ctx context.Context, t *testing.T, c client.Client) []chaos.Run {
	t.Helper()
	var out []chaos.Run
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowType = 'Setup'", PageSize: 1000, NextPageToken: token})
		if err != nil {
			t.Fatalf("list setup runs: %v", err)
		}
		for _, e := range resp.GetExecutions() {
			run := chaos.Run{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Start: e.GetStartTime().AsTime()}
			if e.GetCloseTime() != nil && e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				run.Close = e.GetCloseTime().AsTime()
			}
			out = append(out, run)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
