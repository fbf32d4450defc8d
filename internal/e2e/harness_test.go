package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/attempts"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// RecordEnv re-records the replay histories in workflows/testdata/histories
// from these tests' runs: HYBRIDFLOW_RECORD_HISTORIES=1 go test ./internal/e2e/
// (then run go test ./workflows/ -run Replay and commit the files).
const RecordEnv = "HYBRIDFLOW_RECORD_HISTORIES"

// env is one test's simulated world served on loopback over the real
// protocols (HTTPS Graph / token / InvokeCommand; JSON lines to real
// PowerShell-host relay processes), the real clients of
// backend.NewSimulated, and a worker host for every role the world needs,
// registered by workerhost.ForBackend exactly as hybridflow-worker does.
type env struct {
	t     *testing.T
	srv   *testsuite.DevServer
	c     client.Client
	world *sim.World
	be    *backend.Backend
	inv   *config.Inventory
	roles []config.Role
	rec   *attempts.Recorder

	mu      sync.Mutex
	gen     int
	host    *workerhost.Host
	hostCli client.Client
	stale   []client.Client // connections of stopped incarnations
	ids     []string        // workflow IDs this test started, terminated on cleanup
}

func newEnv(t *testing.T, w *sim.World) *env {
	t.Helper()
	srv, c := devServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	be, err := backend.NewSimulated(ctx, w, zap.NewNop(), backend.SimOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, c: c, world: w, be: be, inv: w.Inventory(), rec: &attempts.Recorder{}}
	e.roles = []config.Role{{Kind: config.RoleCloud}}
	for _, tn := range e.inv.Tenants {
		r := config.Role{Kind: config.RoleOnPrem, Site: tn.Site}
		if !slices.Contains(e.roles, r) {
			e.roles = append(e.roles, r)
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
		for _, sc := range e.stale {
			sc.Close()
		}
		be.Close()
		cancel()
	})
	e.startWorker()
	return e
}

// diagnose logs what a failed test needs to be understood: every activity
// execution the workers saw and what the server still has pending.
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
}

// startWorker starts a fresh worker host (a new incarnation with its own
// Temporal connection), as a restarted hybridflow-worker process would.
func (e *env) startWorker() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	identity := fmt.Sprintf("e2e-worker-%d@%s", e.gen, e.t.Name())
	hc, err := client.Dial(client.Options{
		HostPort: e.srv.FrontendHostPort(), Namespace: "default", Identity: identity,
		Logger:       logging.NewTemporal(zap.NewNop()),
		Interceptors: []interceptor.ClientInterceptor{e.rec.Interceptor(e.gen)},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	// StopTimeout 1ms: Stop is an abrupt stop, not a drain (see killWorker).
	h, err := workerhost.Start(hc, e.roles, workerhost.ForBackend(e.be, identity), zap.NewNop(),
		workerhost.Options{Identity: identity, StopTimeout: time.Millisecond})
	if err != nil {
		hc.Close()
		e.t.Fatal(err)
	}
	e.host, e.hostCli = h, hc
}

// stopWorker stops the worker host without a grace period: in-flight
// activities have their context cancelled at once (worker.ErrWorkerShutdown),
// their PowerShell hosts are killed by the shell client, and the SDK reports
// each attempt as failed, so the server retries it per the retry policy.
// The connection stays open until the test ends so that those reports,
// sent after Stop returns, are not lost (that would be killWorker).
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
}

// killWorker makes the worker vanish the way a SIGKILLed process does: its
// Temporal connection is closed first, so nothing it was doing is reported
// (no task completion, no activity failure); only then are its goroutines
// stopped. Whatever it held is recovered by the server's timeouts alone.
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
	it := e.c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatalf("history of %s: %v", run.GetID(), err)
		}
		h.Events = append(h.Events, ev)
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
// when RecordEnv is set: the replay test (workflows/replay_test.go) replays
// every file there against the current workflow code.
func (e *env) recordHistory(ctx context.Context, run client.WorkflowRun, name string) {
	e.t.Helper()
	if os.Getenv(RecordEnv) == "" {
		return
	}
	root, err := devserver.RepoRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := protojson.Marshal(e.history(ctx, run))
	if err != nil {
		e.t.Fatal(err)
	}
	// protojson varies its whitespace on purpose; indent with encoding/json
	// so a re-recorded file differs only where the history does.
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		e.t.Fatal(err)
	}
	data := buf.Bytes()
	path := filepath.Join(root, "workflows", "testdata", "histories", name+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("recorded %s (%d bytes)", path, len(data))
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
