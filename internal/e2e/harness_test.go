package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/attempts"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/histories"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/sim/simserver"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// env is one test's world served by the stand-alone simulator
// (simserver, in the test process: HTTPS Graph, token endpoint and
// Exchange Online, and the remote PowerShell gateway), and the worker an
// operator deploys pointed at it: a worker configuration without
// simulate: (endpoints, a client-secret credential read from a file, and
// for every site a shell.command that starts the PowerShell stand-in as
// PowerShell would be started), its backend built by backend.NewReal, and
// a worker host for every role the world needs, registered by
// workerhost.ForBackend exactly as hybridflow-worker does. Each worker
// incarnation has its own backend (its own PowerShell hosts), as each
// hybridflow-worker process does; the world outlives them all.
type env struct {
	t     *testing.T
	srv   *testsuite.DevServer
	c     client.Client
	sim   *simserver.Server
	world *sim.World // sim.World(): the object the simulator's servers change
	cfg   *config.WorkerConfig
	inv   *config.Inventory
	roles []config.Role
	rec   *attempts.Recorder

	mu      sync.Mutex
	gen     int
	host    *workerhost.Host
	hostCli client.Client
	be      *backend.Backend // the running incarnation's
	kinds   []string         // Kind() of every incarnation's backend
	closing sync.WaitGroup   // backends of stopped incarnations, closing
	stale   []client.Client  // connections of stopped incarnations
	ids     []string         // workflow IDs this test started, terminated on cleanup
}

// noEnv is the worker's environment: nothing, so HYBRIDFLOW_* variables
// of the shell running the tests cannot change the configuration.
func noEnv(string) string { return "" }

func newEnv(t *testing.T, w *sim.World) *env {
	t.Helper()
	srv, c := devServer(t)
	pwsh := pwshPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	ss, err := simserver.Start(ctx, simserver.Options{World: w, StateDir: t.TempDir()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, c: c, sim: ss, world: ss.World(), inv: ss.World().Inventory(), rec: &attempts.Recorder{}}
	e.roles = []config.Role{{Kind: config.RoleCloud}}
	for _, tn := range e.inv.Tenants {
		for _, r := range []config.Role{{Kind: config.RoleOnPrem, Site: tn.Site}, {Kind: config.RoleLync, Site: tn.LyncSite}} {
			if r.Site != "" && !slices.Contains(e.roles, r) {
				e.roles = append(e.roles, r)
			}
		}
	}
	t.Cleanup(func() {
		e.mu.Lock()
		ids := e.ids
		e.mu.Unlock()
		tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if t.Failed() {
			e.diagnose(tctx, ids)
		}
		for _, id := range ids {
			// Leave nothing running for the next test's worker to pick up.
			_ = c.TerminateWorkflow(tctx, id, "", "e2e test cleanup")
		}
		tcancel()
		e.stopWorker()
		e.closing.Wait()
		for _, sc := range e.stale {
			sc.Close()
		}
		_ = ss.Close()
		cancel()
	})
	e.cfg = workerConfig(t, ss, srv.FrontendHostPort(), e.roles, e.inv, pwsh)
	e.startWorker()
	return e
}

// workerConfig is the configuration an operator would deploy against the
// simulator, parsed and validated as hybridflow-worker parses its file:
// the endpoints block at the simulator (its CA trusted), the default
// credential a client secret read from the simulator's file, and for
// every site the stand-in started as the shipped example starts
// PowerShell: a remote session to the site's endpoint on the gateway for
// on-prem Exchange, HYBRIDFLOW_SIM_PSHOST for Lync (whose module runs
// locally). One site is one organisation, so a world with two tenants at
// one site is refused here, naming them.
func workerConfig(t *testing.T, ss *simserver.Server, temporal string, roles []config.Role, inv *config.Inventory, pwsh string) *config.WorkerConfig {
	t.Helper()
	bySite := map[config.Role][]string{}
	for _, tn := range inv.Tenants {
		bySite[config.Role{Kind: config.RoleOnPrem, Site: tn.Site}] = append(bySite[config.Role{Kind: config.RoleOnPrem, Site: tn.Site}], tn.ID)
		if tn.LyncSite != "" {
			bySite[config.Role{Kind: config.RoleLync, Site: tn.LyncSite}] = append(bySite[config.Role{Kind: config.RoleLync, Site: tn.LyncSite}], tn.ID)
		}
	}
	command := simserver.StandInCommand(pwsh)
	onprem, lync := map[string]any{}, map[string]any{}
	var roleNames []string
	for _, r := range roles {
		roleNames = append(roleNames, r.String())
		if r.Kind == config.RoleCloud {
			continue
		}
		if ids := bySite[r]; len(ids) != 1 {
			t.Fatalf("world: %s serves %d tenants (%s); give each tenant its own site (a site's PowerShell host reaches one organisation)", r, len(ids), strings.Join(ids, ", "))
		}
		switch r.Kind {
		case config.RoleOnPrem:
			onprem[r.Site] = map[string]any{"shell": map[string]any{"command": command, "session": config.SessionRemote,
				"connection_uri": ss.ExchangeURL(r.Site)}}
		case config.RoleLync:
			lync[r.Site] = map[string]any{"shell": map[string]any{"command": command,
				"env": map[string]string{"HYBRIDFLOW_SIM_PSHOST": ss.LyncURL(r.Site)}}}
		}
	}
	doc := map[string]any{
		"temporal":    map[string]any{"address": temporal, "namespace": "default"},
		"roles":       roleNames,
		"endpoints":   ss.Endpoints(),
		"credentials": map[string]any{"default": map[string]any{"kind": "client-secret", "client_id": e2eClientID, "secret": "file:" + ss.ClientSecretFile()}},
	}
	if len(onprem) > 0 {
		doc["onprem"] = map[string]any{"sites": onprem}
	}
	if len(lync) > 0 {
		doc["lync"] = map[string]any{"sites": lync}
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "worker.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadWorkerConfig(path, noEnv)
	if err != nil {
		t.Fatalf("worker config:\n%s\n%v", data, err)
	}
	if cfg.Simulate != nil || cfg.Endpoints == nil {
		t.Fatalf("worker config %s: simulate %v, endpoints %v; want the real path", path, cfg.Simulate, cfg.Endpoints)
	}
	return cfg
}

// e2eClientID is the application the worker's credential names; the
// simulator's token endpoint accepts its secret for any client ID.
const e2eClientID = "33333333-3333-4333-8333-0000000000e2"

// diagnose logs what a failed test needs to be understood: every activity
// execution the workers saw, what the server still has pending, and the
// simulator's refusals and failures.
func (e *env) diagnose(ctx context.Context, ids []string) {
	for _, x := range e.rec.Executions() {
		e.t.Logf("activity %s %s attempt %d on worker %d: %s → %s (+%s) cancelled=%v err=%q", x.WorkflowID, x.Type, x.Attempt, x.Worker,
			x.Start.Format("15:04:05.000"), x.End.Format("15:04:05.000"), x.End.Sub(x.Start).Round(time.Millisecond), x.Cancelled, x.Err)
	}
	for _, id := range ids {
		d, err := e.c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			e.t.Logf("describe %s: %v", id, err)
			continue
		}
		e.t.Logf("%s: %s", id, d.GetWorkflowExecutionInfo().GetStatus())
		for _, pa := range d.GetPendingActivities() {
			e.t.Logf("  pending %s state %s attempt %d last worker %s last failure %q", pa.GetActivityType().GetName(), pa.GetState(), pa.GetAttempt(),
				pa.GetLastWorkerIdentity(), pa.GetLastFailure().GetMessage())
		}
	}
	recs, _, _ := e.sim.Requests().Since(0)
	for _, r := range recs {
		if !r.OK {
			e.t.Logf("simulator: #%d %s %s %s %s tenant %s site %s: status %d error %q fault %q", r.Seq, r.Protocol, r.Method, r.Path, r.Cmdlet, r.Tenant, r.Site, r.Status, r.Error, r.Fault)
		}
	}
}

// startWorker starts a fresh worker incarnation as a restarted
// hybridflow-worker process would: its own backend from the worker config
// (backend.NewReal), each on-prem and Lync site's PowerShell host started
// and at its ready line (the worker's start probe, which /readyz waits
// for), a new Temporal connection and identity, an empty workflow cache.
func (e *env) startWorker() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	identity := fmt.Sprintf("e2e-worker-%d@%s", e.gen, e.t.Name())
	be, err := backend.NewReal(e.cfg, zap.NewNop(), noEnv)
	if err != nil {
		e.t.Fatal(err)
	}
	be.Instrument(metrics.Default)
	e.kinds = append(e.kinds, be.Kind())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range e.roles {
		if r.Kind == config.RoleCloud {
			continue
		}
		if err := be.StartHost(ctx, r); err != nil {
			be.Close()
			e.t.Fatalf("worker %d: PowerShell host for %s: %v", e.gen, r, err)
		}
	}
	hc, err := client.Dial(client.Options{
		HostPort: e.srv.FrontendHostPort(), Namespace: "default", Identity: identity,
		Logger:       logging.NewTemporal(zap.NewNop()),
		Interceptors: []interceptor.ClientInterceptor{e.rec.Interceptor(e.gen)},
	})
	if err != nil {
		be.Close()
		e.t.Fatal(err)
	}
	// StopTimeout 1ms: Stop is an abrupt stop, not a drain (see killWorker).
	h, err := workerhost.Start(hc, e.roles, workerhost.ForBackend(be, identity, workerhost.WithConfig(e.cfg)), zap.NewNop(),
		workerhost.Options{Identity: identity, StopTimeout: time.Millisecond})
	if err != nil {
		hc.Close()
		be.Close()
		e.t.Fatal(err)
	}
	e.host, e.hostCli, e.be = h, hc, be
}

// stopWorker stops the worker host without a grace period: in-flight
// activities have their context cancelled at once (worker.ErrWorkerShutdown),
// their PowerShell hosts are killed by the shell client, and the SDK reports
// each attempt as failed, so the server retries it per the retry policy.
// The connection stays open until the test ends so that those reports,
// sent after Stop returns, are not lost (that would be killWorker). The
// incarnation's backend then closes (its remaining hosts stop) while the
// next incarnation may already start, as a new process does not wait for
// the old one's exit.
func (e *env) stopWorker() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.host != nil {
		e.host.Stop()
		e.host = nil
	}
	if e.hostCli != nil {
		e.stale = append(e.stale, e.hostCli)
		e.hostCli = nil
	}
	e.retireBackend()
}

// killWorker makes the worker vanish the way a SIGKILLed process does: its
// Temporal connection is closed first, so nothing it was doing is reported
// (no task completion, no activity failure); only then are its goroutines
// stopped and its PowerShell hosts ended. Whatever it held is recovered by
// the server's timeouts alone. The simulator, and so the world, live on.
func (e *env) killWorker() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hostCli != nil {
		e.hostCli.Close()
		e.hostCli = nil
	}
	if e.host != nil {
		e.host.Stop()
		e.host = nil
	}
	e.retireBackend()
}

// retireBackend closes the stopped incarnation's backend in the
// background (e.mu held).
func (e *env) retireBackend() {
	if be := e.be; be != nil {
		e.be = nil
		e.closing.Add(1)
		go func() {
			defer e.closing.Done()
			be.Close()
		}()
	}
}

func (e *env) tenant(id string) config.Tenant {
	e.t.Helper()
	for _, tn := range e.inv.Tenants {
		if strings.EqualFold(tn.ID, id) {
			return tn
		}
	}
	e.t.Fatalf("tenant %s is not in the world", id)
	return config.Tenant{}
}

// fastRetry shortens what waits in a test: step retries and verification.
func fastRetry(o workflows.SetupOptions) workflows.SetupOptions {
	if o.Retry.InitialInterval == 0 {
		o.Retry = workflows.RetryOptions{InitialInterval: 200 * time.Millisecond, MaximumInterval: time.Second, MaximumAttempts: 5}
	}
	if o.VerifyInterval == 0 {
		o.VerifyInterval = 500 * time.Millisecond
	}
	if o.VerifyDeadline == 0 {
		o.VerifyDeadline = 30 * time.Second
	}
	if o.ScheduleToStart == 0 {
		o.ScheduleToStart = time.Minute
	}
	return o
}

// start starts a tenant's setup under its deterministic ID, as
// `hybridflow setup` does.
func (e *env) start(ctx context.Context, tn config.Tenant, o workflows.SetupOptions) client.WorkflowRun {
	e.t.Helper()
	id := workflows.SetupWorkflowID(tn.ID)
	in := workflows.InputFromTenant(tn, fastRetry(o))
	// Started as the CLI and the rollout start a setup, with its search
	// attributes (the recorded histories then cover that path).
	run, err := e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: 5 * time.Minute,
		TypedSearchAttributes:    workflows.SetupStartAttributes(in),
	}, workflows.Setup, in)
	if err != nil {
		e.t.Fatalf("start setup of %s: %v", tn.ID, err)
	}
	e.mu.Lock()
	e.ids = append(e.ids, id)
	e.mu.Unlock()
	return run
}

func (e *env) result(ctx context.Context, run client.WorkflowRun) (workflows.SetupResult, error) {
	var res workflows.SetupResult
	err := run.Get(ctx, &res)
	return res, err
}

func (e *env) query(ctx context.Context, run client.WorkflowRun) (workflows.SetupState, error) {
	var st workflows.SetupState
	v, err := e.c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryState)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// resultUnlessPaused waits for the run's result, but fails the test as
// soon as the run pauses for an operator instead.
func (e *env) resultUnlessPaused(ctx context.Context, run client.WorkflowRun) (workflows.SetupResult, error) {
	e.t.Helper()
	type outcome struct {
		res workflows.SetupResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := e.result(ctx, run)
		done <- outcome{res, err}
	}()
	for {
		select {
		case o := <-done:
			return o.res, o.err
		case <-time.After(200 * time.Millisecond):
			if st, err := e.query(ctx, run); err == nil && st.Paused != nil {
				e.t.Fatalf("%s paused for an operator: step %s: %s (%s)", run.GetID(), st.Paused.Step, st.Paused.Error, st.Paused.ErrorType)
			}
		}
	}
}

// waitPaused polls the state query until the run pauses for an operator.
func (e *env) waitPaused(ctx context.Context, run client.WorkflowRun) workflows.SetupState {
	e.t.Helper()
	for {
		st, err := e.query(ctx, run)
		if err == nil && st.Paused != nil {
			return st
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s never paused (last state %s %s, error %v)", run.GetID(), st.State, st.CurrentStep, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// update sends an operator decision (retry, skip, abort) as the CLI does.
func (e *env) update(ctx context.Context, run client.WorkflowRun, name string) string {
	e.t.Helper()
	h, err := e.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: name,
		Args: []any{workflows.OperatorAction{Reason: "e2e test"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		e.t.Fatalf("%s %s: %v", name, run.GetID(), err)
	}
	var step string
	if err := h.Get(ctx, &step); err != nil {
		e.t.Fatalf("%s %s: %v", name, run.GetID(), err)
	}
	return step
}

// history reads a run's whole history from the server.
func (e *env) history(ctx context.Context, run client.WorkflowRun) *historypb.History {
	e.t.Helper()
	h, err := histories.Fetch(ctx, e.c, run.GetID(), run.GetRunID())
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// waitEvent polls the history until an event matches (server-side truth,
// no worker needed to answer) and returns it.
func (e *env) waitEvent(ctx context.Context, run client.WorkflowRun, what string, match func(*historypb.HistoryEvent) bool) *historypb.HistoryEvent {
	e.t.Helper()
	for {
		for _, ev := range e.history(ctx, run).Events {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s: no %s in the history", run.GetID(), what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recordHistory writes the run's history as workflows/testdata/histories/<name>.json
// when histories.RecordEnv is set (make histories): the replay test
// (workflows/replay_test.go) replays every file there against the current
// workflow code.
func (e *env) recordHistory(ctx context.Context, run client.WorkflowRun, name string) {
	e.t.Helper()
	path, err := histories.Record(ctx, e.c, run.GetID(), run.GetRunID(), name)
	if err != nil {
		e.t.Fatalf("record the history of %s: %v", run.GetID(), err)
	}
	if path != "" {
		e.t.Logf("recorded %s", path)
	}
}

// snapshot is a deep copy of the world for before/after comparisons.
func (e *env) snapshot() *sim.World { return e.world.Clone() }

// checkNothingLost fails the test on every loss e2e.NothingLost reports.
func checkNothingLost(t *testing.T, before, after *sim.World) {
	t.Helper()
	for _, v := range e2e.NothingLost(before, after) {
		t.Errorf("lost: %s", v)
	}
}

// checkAdditions compares e2e.Additions with the expected lines, exactly.
func checkAdditions(t *testing.T, before, after *sim.World, want []string) {
	t.Helper()
	got := e2e.Additions(before, after)
	want = slices.Clone(want)
	sort.Strings(want)
	var extra, missing []string
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, x := range extra {
		t.Errorf("unexpected addition: %s", x)
	}
	for _, m := range missing {
		t.Errorf("missing addition: %s", m)
	}
}

// --- activity executions, to prove no step ran twice at once ---

// awaitRunning waits until an activity of the type is executing.
func (e *env) awaitRunning(ctx context.Context, typ string) time.Time {
	e.t.Helper()
	began, err := e.rec.AwaitRunning(ctx, typ)
	if err != nil {
		e.t.Fatal(err)
	}
	return began
}

// overlaps reports one tenant's step run twice at once.
func (e *env) overlaps() []string { return attempts.Overlaps(e.rec.Executions()) }

// logSteps prints a result's steps (go test -v shows them).
func logSteps(t *testing.T, res workflows.SetupResult) {
	t.Helper()
	t.Logf("%s (%s): %s, mode %s, %d write(s)", res.TenantID, res.Cloud, res.State, res.Mode, res.Writes)
	for _, s := range res.Steps {
		t.Logf("  %-27s %-11s %-8s %-9s x%d %s", s.Step, s.Status, s.Change, s.Outcome, s.Attempts, s.Detail)
	}
}
