package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/workflows"
)

// Runner names.
const (
	RunDurable    = "durable"
	RunConcurrent = "concurrent"
	RunSequential = "sequential"
)

// TenantRun is one tenant's outcome in one runner.
type TenantRun struct {
	TenantID string
	State    string
	Duration time.Duration
	Err      string
	// Calls are the activity types in the order they were scheduled
	// (baselines: the script's call log; durable: from the history).
	Calls []string
	// Events is the setup workflow's history length (durable only,
	// sampled); Shape counts its events by what they record.
	Events int
	Shape  Shape
	// Waits is where the setup's time went (durable only, sampled).
	Waits Waits
}

// Waits splits a durable setup's time by what it waited for, from its
// history's event times. Parallel calls (discovery, verification) count
// once each, so the parts can add up to more than the setup's duration.
type Waits struct {
	// WorkflowTaskQueue: a workflow task scheduled (a call returned) until
	// a worker picked it up.
	WorkflowTaskQueue time.Duration `json:"workflow_task_queue"`
	// WorkflowTask: the worker running the workflow code, including the
	// local (cloud) activities that ran inside the task.
	WorkflowTask time.Duration `json:"workflow_task"`
	// ActivityQueue: an on-prem activity scheduled until a worker started
	// it; Activity: started until it answered (the PowerShell calls).
	ActivityQueue time.Duration `json:"activity_queue"`
	Activity      time.Duration `json:"activity"`
}

func (w *Waits) add(o Waits) {
	w.WorkflowTaskQueue += o.WorkflowTaskQueue
	w.WorkflowTask += o.WorkflowTask
	w.ActivityQueue += o.ActivityQueue
	w.Activity += o.Activity
}

// RunResult is one runner over one world.
type RunResult struct {
	Runner      string
	Concurrency int
	Wall        time.Duration
	Tenants     []TenantRun
	Stats       sim.Counters
	PeakRSS     int64 // bytes, this process, during the run
	// CPU is this process's CPU time during the run (worker or script,
	// the simulated world and its servers); ServerCPU the Temporal
	// server's, PostgresCPU PostgreSQL's (the cluster engine).
	CPU, ServerCPU, PostgresCPU time.Duration
	// Engine is the durable runs' server (EngineDevServer, EngineCluster).
	Engine string
	// Load is the machine's one-minute load average when the run started.
	Load float64
}

// Verified counts tenants that ended verified.
func (r RunResult) Verified() int {
	n := 0
	for _, t := range r.Tenants {
		if t.State == workflows.StateVerified {
			n++
		}
	}
	return n
}

// RunBaseline sets up every tenant of w by calling the activity structs
// directly, concurrency at a time (1 = the sequential script), against a
// simulated backend built exactly as the worker's is.
func RunBaseline(ctx context.Context, w *sim.World, concurrency int, opts workflows.SetupOptions, direct bool, logger *zap.Logger) (RunResult, error) {
	be, err := backend.NewSimulated(ctx, w, logger, backend.SimOptions{DirectShell: direct})
	if err != nil {
		return RunResult{}, err
	}
	defer be.Close()
	acts := Acts{OnPrem: &activities.OnPrem{Hosts: be}, Online: &activities.Online{Clients: be}, Entra: &activities.Entra{Clients: be}}
	tenants := inventory(w)
	name := RunConcurrent
	if concurrency <= 1 {
		name, concurrency = RunSequential, 1
	}
	res := RunResult{Runner: name, Concurrency: concurrency, Tenants: make([]TenantRun, len(tenants)), Load: loadAvg()}
	resetPeakRSS()
	cpu0 := cpuTime()
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res.Tenants[i] = runScript(ctx, acts, tenants[i], opts)
			}
		}()
	}
	for i := range tenants {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	res.Wall = time.Since(start)
	res.PeakRSS = peakRSS()
	res.CPU = cpuTime() - cpu0
	res.Stats = w.Stats()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%s baseline: %w", name, err)
	}
	return res, nil
}

func runScript(ctx context.Context, acts Acts, t config.Tenant, opts workflows.SetupOptions) TenantRun {
	s := newScript(acts, workflows.InputFromTenant(t, opts))
	start := time.Now()
	state, err := s.run(ctx)
	tr := TenantRun{TenantID: t.ID, State: state, Duration: time.Since(start), Calls: s.calls}
	if err != nil {
		tr.Err = err.Error()
	}
	return tr
}
