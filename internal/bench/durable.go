package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// inlineLimit mirrors the CLI (starter/rollout.go): larger inventories
// travel by file reference and are read page by page by the worker.
const inlineLimit = 100

// Engines a durable run can use.
const (
	// EngineDevServer is the Temporal dev server (bin/temporal: every
	// service in one process, SQLite in memory).
	EngineDevServer = "dev server"
	// EngineCluster is internal/cluster: bin/temporal-server with the
	// repository's configuration on a PostgreSQL cluster of its own, as
	// the compose stack runs it.
	EngineCluster = "cluster"
)

// Durable is a real Temporal server (the dev server or the cluster) and a
// client; every durable run starts its own worker host against it.
type Durable struct {
	engine string
	c      client.Client
	dir    string
	logger *zap.Logger
	seq    int
	// closeEngine stops the server (and PostgreSQL).
	closeEngine func()
	// serverCPU and postgresCPU are the engine's CPU time so far
	// (postgresCPU nil for the dev server); serverPeakRSS its peak
	// resident set in bytes.
	serverCPU, postgresCPU func() time.Duration
	serverPeakRSS          func() int64
	// describe says what the engine is, for the report.
	describe  string
	closeOnce sync.Once
	// Tune, when set, starts the workers with these options instead of
	// workerhost.Start's defaults (the investigation of where durable
	// time goes); registration is still workerhost.ForBackend.
	Tune *WorkerTuning
}

// WorkerTuning are the SDK worker options the harness can vary.
type WorkerTuning struct {
	WorkflowPollers, ActivityPollers int
	MaxActivities, MaxWorkflowTasks  int
	// Autoscale lets the server's poller-scaling hints size each poller
	// group (the pollers counts, when set, are the maxima).
	Autoscale bool
}

func (t WorkerTuning) String() string {
	s := fmt.Sprintf("workflow task pollers %d, activity task pollers %d, max concurrent activities %d, max concurrent workflow tasks %d",
		t.WorkflowPollers, t.ActivityPollers, t.MaxActivities, t.MaxWorkflowTasks)
	if t.Autoscale {
		s += ", pollers autoscaled"
	}
	return s
}

// DefaultServerConfig is the dev server's dynamic config for the bench,
// the settings a production cluster would have for this load:
//   - eager activity execution (a cloud activity scheduled by a workflow
//     task on the same queue goes back to that worker in the task's reply,
//     skipping matching) and one task-queue partition (four, the default,
//     only spread a single worker's polls; measured: durable 47 s → 24 s
//     for 200 tenants at C=50 together, the floor 11 s → 9 s, on this
//     2-core machine);
//   - the search-attribute cache on (the server's default): start-dev
//     turns it off so that attributes created at run time show at once,
//     which makes every workflow task that carries search attributes read
//     the cluster metadata and the namespace from SQLite under a global
//     lock (perf: ~3% of the dev server's CPU). The bench's attributes
//     exist before the server starts (--search-attribute);
//   - the transfer queue read as soon as a task is written: every
//     activity and workflow task is handed to matching through it, and
//     its reads are rate-limited per history shard (20/s by default). A
//     production cluster has hundreds of shards, so a setup's tasks rarely
//     wait for a read; the dev server has one, and under a rollout each dispatch
//     waited about 25 ms for the next read (measured at C=10: 202 ms of a
//     setup waiting for workflow tasks and 214 ms for on-prem activities
//     at 20/s, 19 ms and 14 ms unthrottled).
const DefaultServerConfig = "system.enableActivityEagerExecution=true,matching.numTaskqueueReadPartitions=1,matching.numTaskqueueWritePartitions=1," +
	"system.forceSearchAttributesCacheRefreshOnRead=false,history.transferProcessorMaxPollRPS=1000"

// StartDurable starts the dev server, with dynamic-config values
// ("key=value") on top of devserver's.
func StartDurable(ctx context.Context, logger *zap.Logger, dynamicConfig ...string) (*Durable, error) {
	var extra []string
	for _, kv := range dynamicConfig {
		extra = append(extra, "--dynamic-config-value", kv)
	}
	srv, err := devserver.Start(ctx, devserver.Options{Extra: extra})
	if err != nil {
		return nil, err
	}
	d := &Durable{engine: EngineDevServer, logger: logger, closeEngine: func() { _ = srv.Stop() },
		serverCPU:     func() time.Duration { return childCPU(devServerComm) },
		serverPeakRSS: func() int64 { return childPeakRSS(devServerComm) },
		describe:      "the Temporal dev server (bin/temporal, SQLite in memory, 1 history shard)"}
	if err := d.connect(srv.FrontendHostPort(), "default"); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return d, nil
}

// connect dials the engine with the compression hybridflow-worker would
// choose for its address, and makes the inventory directory.
func (d *Durable) connect(hostPort, namespace string) error {
	gz, _ := temporalx.Compression(config.TemporalConfig{Address: hostPort})
	c, err := client.Dial(client.Options{HostPort: hostPort, Namespace: namespace, Logger: logging.NewTemporal(zap.NewNop()),
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: gz}})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "rolloutbench-")
	if err != nil {
		c.Close()
		return err
	}
	d.c, d.dir = c, dir
	return nil
}

// Engine is EngineDevServer or EngineCluster; Describe says what it runs.
func (d *Durable) Engine() string { return d.engine }

// Describe says what the engine is (version, store, shards).
func (d *Durable) Describe() string { return d.describe }

// ServerPeakRSS is the server's peak resident set so far, in bytes.
func (d *Durable) ServerPeakRSS() int64 { return d.serverPeakRSS() }

func (d *Durable) pgCPU() time.Duration {
	if d.postgresCPU == nil {
		return 0
	}
	return d.postgresCPU()
}

// Close stops the server (and PostgreSQL); a second Close does nothing.
func (d *Durable) Close() {
	d.closeOnce.Do(func() {
		d.c.Close()
		d.closeEngine()
		_ = os.RemoveAll(d.dir)
	})
}

// Session is a worker host (the cloud role and an on-prem role per site,
// registered by workerhost.ForBackend exactly as hybridflow-worker does)
// serving one world.
type Session struct {
	d     *Durable
	world *sim.World
	be    *backend.Backend
	host  *workerhost.Host
	tuned []worker.Worker
}

// Open starts a worker host for w.
func (d *Durable) Open(ctx context.Context, w *sim.World, direct bool) (*Session, error) {
	be, err := backend.NewSimulated(ctx, w, d.logger, backend.SimOptions{DirectShell: direct})
	if err != nil {
		return nil, err
	}
	roles := []config.Role{{Kind: config.RoleCloud}}
	seen := map[string]bool{}
	for _, t := range inventory(w) {
		if !seen[t.Site] {
			seen[t.Site] = true
			roles = append(roles, config.Role{Kind: config.RoleOnPrem, Site: t.Site})
		}
	}
	d.seq++
	id := fmt.Sprintf("rolloutbench-%d", d.seq)
	if d.Tune != nil {
		ws, err := startTuned(d.c, roles, workerhost.ForBackend(be, id, workerhost.WithInventoryDir(d.dir)), id, *d.Tune)
		if err != nil {
			be.Close()
			return nil, err
		}
		return &Session{d: d, world: w, be: be, tuned: ws}, nil
	}
	h, err := workerhost.Start(d.c, roles, workerhost.ForBackend(be, id, workerhost.WithInventoryDir(d.dir)), d.logger, workerhost.Options{Identity: id, StopTimeout: time.Second})
	if err != nil {
		be.Close()
		return nil, err
	}
	return &Session{d: d, world: w, be: be, host: h}, nil
}

// startTuned is workerhost.Start with the SDK's poller and slot options.
func startTuned(c client.Client, roles []config.Role, reg workerhost.Registrar, id string, t WorkerTuning) ([]worker.Worker, error) {
	var out []worker.Worker
	stop := func() {
		for _, w := range out {
			w.Stop()
		}
	}
	for _, role := range roles {
		o := worker.Options{
			Identity: id, WorkerStopTimeout: time.Second,
			MaxConcurrentWorkflowTaskPollers: t.WorkflowPollers, MaxConcurrentActivityTaskPollers: t.ActivityPollers,
			MaxConcurrentActivityExecutionSize: t.MaxActivities, MaxConcurrentWorkflowTaskExecutionSize: t.MaxWorkflowTasks,
		}
		if t.Autoscale {
			o.MaxConcurrentWorkflowTaskPollers, o.MaxConcurrentActivityTaskPollers = 0, 0
			o.WorkflowTaskPollerBehavior = worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{MaximumNumberOfPollers: t.WorkflowPollers})
			o.ActivityTaskPollerBehavior = worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{MaximumNumberOfPollers: t.ActivityPollers})
		}
		w := worker.New(c, temporalx.QueueForRole(role), o)
		if err := reg(role, w); err != nil {
			stop()
			return nil, err
		}
		if err := w.Start(); err != nil {
			stop()
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// Close stops the worker host and the simulated servers.
func (s *Session) Close() {
	if s.host != nil {
		s.host.Stop()
	}
	for i := len(s.tuned) - 1; i >= 0; i-- {
		s.tuned[i].Stop()
	}
	s.be.Close()
}

// Rollout runs the Rollout workflow over the world's inventory, as
// `hybridflow rollout` starts it, and waits for its result. historyEvery
// says which children's histories are read for event counts and activity
// sequences (every k-th tenant; 1 = all).
func (s *Session) Rollout(ctx context.Context, name string, concurrency int, opts workflows.SetupOptions, historyEvery int) (RunResult, error) {
	d := s.d
	tenants := inventory(s.world)
	in := workflows.RolloutInput{Name: name, Concurrency: concurrency, Setup: opts}
	if len(tenants) <= inlineLimit {
		in.Tenants = tenants
	} else {
		path := filepath.Join(d.dir, name+".yaml")
		data, err := yaml.Marshal(config.Inventory{Tenants: tenants})
		if err != nil {
			return RunResult{}, err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return RunResult{}, err
		}
		in.InventoryPath = path
	}
	before := s.world.Stats()
	load := loadAvg()
	cpu0, srv0, pg0 := cpuTime(), d.serverCPU(), d.pgCPU()
	resetPeakRSS()
	start := time.Now()
	run, err := d.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.RolloutWorkflowID(name), TaskQueue: temporalx.CloudQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Rollout, in)
	if err != nil {
		return RunResult{}, fmt.Errorf("start rollout %s: %w", name, err)
	}
	var prog workflows.RolloutProgress
	if err := run.Get(ctx, &prog); err != nil {
		return RunResult{}, fmt.Errorf("rollout %s: %w%s", name, err, d.diagnose(tenants))
	}
	res := RunResult{Runner: RunDurable, Concurrency: concurrency, Wall: time.Since(start), PeakRSS: peakRSS(),
		CPU: cpuTime() - cpu0, ServerCPU: d.serverCPU() - srv0, PostgresCPU: d.pgCPU() - pg0, Engine: d.engine, Load: load}
	res.Stats = diffStats(before, s.world.Stats())
	res.Tenants = make([]TenantRun, len(tenants))
	// Per-tenant durations and states from the children themselves.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make([]error, len(tenants))
	for i, t := range tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res.Tenants[i], errs[i] = d.child(ctx, t.ID, historyEvery > 0 && i%historyEvery == 0)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// diagnose describes what the first unfinished setups wait for, so that a
// rollout that does not finish says why.
func (d *Durable) diagnose(tenants []config.Tenant) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	shown := 0
	for _, t := range tenants {
		desc, err := d.c.DescribeWorkflowExecution(ctx, workflows.SetupWorkflowID(t.ID), "")
		if err != nil {
			fmt.Fprintf(&b, "\n  %s: %v", t.ID, err)
			shown++
		} else if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			fmt.Fprintf(&b, "\n  %s running", t.ID)
			for _, pa := range desc.GetPendingActivities() {
				fmt.Fprintf(&b, "; pending %s attempt %d: %s", pa.GetActivityType().GetName(), pa.GetAttempt(), pa.GetLastFailure().GetMessage())
			}
			shown++
		}
		if shown >= 3 {
			break
		}
	}
	return b.String()
}

// child reads one setup workflow's outcome, duration and (when asked) its
// history: event count and the activity types in scheduling order.
func (d *Durable) child(ctx context.Context, tenantID string, history bool) (TenantRun, error) {
	id := workflows.SetupWorkflowID(tenantID)
	tr := TenantRun{TenantID: tenantID}
	desc, err := d.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return tr, fmt.Errorf("describe %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	tr.Duration = info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		var st workflows.SetupResult
		if err := d.c.GetWorkflow(ctx, id, info.GetExecution().GetRunId()).Get(ctx, &st); err != nil {
			return tr, fmt.Errorf("result of %s: %w", id, err)
		}
		tr.State, tr.Err = st.State, st.Error
	} else {
		tr.State, tr.Err = workflows.StateFailed, info.GetStatus().String()
	}
	if !history {
		return tr, nil
	}
	it := d.c.GetWorkflowHistory(ctx, id, info.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var w waitClock
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return tr, fmt.Errorf("history of %s: %w", id, err)
		}
		tr.Events++
		tr.Shape.observe(ev)
		if name, ok := activityCall(ev); ok {
			tr.Calls = append(tr.Calls, name)
		}
		w.observe(ev)
	}
	tr.Waits = w.Waits
	return tr, nil
}

// Shape counts a setup history's events by what they record: the server's
// work per tenant beyond the documented steps' own calls is everything but
// Activities and LocalActivities.
type Shape struct {
	// WorkflowTasks is the number of workflow tasks (each three events:
	// scheduled, started, completed).
	WorkflowTasks float64 `json:"workflow_tasks"`
	// Activities is the number of task-queue (on-prem) activities (each
	// three events); LocalActivities the local activities' markers.
	Activities      float64 `json:"activities"`
	LocalActivities float64 `json:"local_activities"`
	// Versions are GetVersion markers, Upserts search-attribute upserts,
	// Children child-workflow events, Timers timer events, Other the rest
	// (start, close, signals, updates).
	Versions float64 `json:"version_markers"`
	Upserts  float64 `json:"upserts"`
	Children float64 `json:"child_events"`
	Timers   float64 `json:"timer_events"`
	Other    float64 `json:"other"`
}

func (s *Shape) observe(ev *historypb.HistoryEvent) {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
		s.WorkflowTasks++
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		s.Activities++
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
	case enumspb.EVENT_TYPE_MARKER_RECORDED:
		if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
			s.LocalActivities++
		} else {
			s.Versions++
		}
	case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
		s.Upserts++
	case enumspb.EVENT_TYPE_TIMER_STARTED, enumspb.EVENT_TYPE_TIMER_FIRED, enumspb.EVENT_TYPE_TIMER_CANCELED:
		s.Timers++
	case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
		enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
		enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED:
		s.Children++
	default:
		s.Other++
	}
}

func (s *Shape) add(o Shape, k float64) {
	for i, p := range s.fields() {
		*p += k * *o.fields()[i]
	}
}

func (s *Shape) fields() []*float64 {
	return []*float64{&s.WorkflowTasks, &s.Activities, &s.LocalActivities, &s.Versions, &s.Upserts, &s.Children, &s.Timers, &s.Other}
}

// waitClock accumulates Waits from a history's event times.
type waitClock struct {
	Waits
	wftScheduled, wftStarted time.Time
	// actSince: an activity's scheduled time, then (once its Started event
	// is read) its last attempt's start, keyed by its scheduled event ID.
	actSince map[int64]time.Time
}

func (c *waitClock) observe(ev *historypb.HistoryEvent) {
	at := ev.GetEventTime().AsTime()
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
		c.wftScheduled = at
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
		c.WorkflowTaskQueue += at.Sub(c.wftScheduled)
		c.wftStarted = at
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
		if !c.wftStarted.IsZero() {
			c.WorkflowTask += at.Sub(c.wftStarted)
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		if c.actSince == nil {
			c.actSince = map[int64]time.Time{}
		}
		c.actSince[ev.GetEventId()] = at
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
		// Written when the activity closes (retryable activities), but
		// stamped with the last attempt's start: earlier attempts and their
		// backoff count as queue time.
		a := ev.GetActivityTaskStartedEventAttributes()
		if s, ok := c.actSince[a.GetScheduledEventId()]; ok {
			c.ActivityQueue += at.Sub(s)
			c.actSince[a.GetScheduledEventId()] = at
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		c.Activity += at.Sub(c.actSince[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()])
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		c.Activity += at.Sub(c.actSince[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()])
	}
}

// activityCall names the activity a history event records a call of: a
// task-queue activity's ActivityTaskScheduled, or a local activity's
// marker. A marker with a backoff records an attempt to be retried after
// a timer (a long Retry-After), not a call of its own.
func activityCall(ev *historypb.HistoryEvent) (string, bool) {
	if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
		return a.GetActivityType().GetName(), true
	}
	m := ev.GetMarkerRecordedEventAttributes()
	if m == nil || m.GetMarkerName() != "LocalActivity" {
		return "", false
	}
	var md struct {
		ActivityType string
		Backoff      time.Duration
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()["data"], &md); err != nil || md.Backoff > 0 {
		return "", false
	}
	return md.ActivityType, md.ActivityType != ""
}

// diffStats is after − before, per tenant and in total.
func diffStats(before, after sim.Counters) sim.Counters {
	out := sim.Counters{
		GraphReads: after.GraphReads - before.GraphReads, GraphWrites: after.GraphWrites - before.GraphWrites,
		EXOCalls: after.EXOCalls - before.EXOCalls, ShellRoundTrips: after.ShellRoundTrips - before.ShellRoundTrips,
		ByTenant: map[string]*sim.TenantCounters{},
	}
	for k, a := range after.ByTenant {
		c := *a
		if b := before.ByTenant[k]; b != nil {
			c.GraphReads -= b.GraphReads
			c.GraphWrites -= b.GraphWrites
			c.EXOCalls -= b.EXOCalls
			c.ShellRoundTrips -= b.ShellRoundTrips
			c.Writes -= b.Writes
		}
		out.ByTenant[k] = &c
	}
	return out
}
