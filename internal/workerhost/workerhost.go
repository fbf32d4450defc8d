// Package workerhost runs one Temporal worker per configured role (cloud,
// onprem:<site>, lync:<site>) in one process and stops them together on
// SIGINT/SIGTERM, draining in-flight activities first.
package workerhost

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/temporalx"
)

// Registrar registers the workflows and activities a role serves.
type Registrar func(role config.Role, r worker.Registry) error

// Host is a set of started workers.
type Host struct {
	workers []worker.Worker
	queues  []string
	logger  *zap.Logger
}

// Pollers per worker when Options leave them 0. The SDK's default of 2
// makes a rollout's tasks wait for a free poller: with 50 setups in flight,
// a task that finds no poll waiting is written to the matching store and
// read back later. Measured with rolloutbench (200 tenants, C=50, 2 cores,
// server dispatching at once): a setup waited 697 ms in all for its
// workflow tasks and 126 ms for its on-prem activities with 2 pollers,
// 135-195 ms and 76-97 ms with 8 (six runs). Idle pollers are parked
// long polls, so the extra ones cost next to nothing.
const (
	DefaultWorkflowTaskPollers = 8
	DefaultActivityTaskPollers = 8
)

// Options tune every worker of the host.
type Options struct {
	// StopTimeout is how long Stop waits for in-flight activities.
	StopTimeout time.Duration
	// MaxConcurrentActivities bounds each worker (0 = SDK default).
	MaxConcurrentActivities int
	// WorkflowTaskPollers and ActivityTaskPollers are each worker's
	// concurrent polls (0 = DefaultWorkflowTaskPollers / DefaultActivityTaskPollers).
	WorkflowTaskPollers, ActivityTaskPollers int
	Identity                                 string
}

// workerOptions are the SDK options every worker of the host gets.
func (o Options) workerOptions() worker.Options {
	wf, act := o.WorkflowTaskPollers, o.ActivityTaskPollers
	if wf == 0 {
		wf = DefaultWorkflowTaskPollers
	}
	if act == 0 {
		act = DefaultActivityTaskPollers
	}
	return worker.Options{
		WorkerStopTimeout:                  o.StopTimeout,
		MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskPollers:   wf,
		MaxConcurrentActivityTaskPollers:   act,
		Identity:                           o.Identity,
	}
}

// Start creates, registers and starts a worker per role. On any error the
// workers already started are stopped, so a bad role never leaves a
// half-running process behind.
func Start(c client.Client, roles []config.Role, reg Registrar, logger *zap.Logger, o Options) (*Host, error) {
	if len(roles) == 0 {
		return nil, fmt.Errorf("no roles to serve: set roles in the worker config or pass --role")
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 30 * time.Second
	}
	h := &Host{logger: logger}
	for _, role := range roles {
		q := temporalx.QueueForRole(role)
		wo := o.workerOptions()
		// Workflows run only on the cloud queue: an on-prem or Lync worker
		// that polled for workflow tasks would hold two idle polls per
		// site (normal and sticky) that can never be answered.
		wo.DisableWorkflowWorker = role.Kind != config.RoleCloud
		w := worker.New(c, q, wo)
		if err := reg(role, w); err != nil {
			h.Stop()
			return nil, fmt.Errorf("register role %s: %w", role, err)
		}
		if err := w.Start(); err != nil {
			h.Stop()
			return nil, fmt.Errorf("start worker for role %s on %s: %w", role, q, err)
		}
		h.workers = append(h.workers, w)
		h.queues = append(h.queues, q)
		logger.Info("worker started", zap.String("role", role.String()), zap.String("task_queue", q),
			zap.Int("workflow_task_pollers", workflowPollers(wo)), zap.Int("activity_task_pollers", wo.MaxConcurrentActivityTaskPollers))
	}
	return h, nil
}

// Queues lists the task queues being polled.
func (h *Host) Queues() []string { return append([]string(nil), h.queues...) }

// Stop stops every worker, last started first.
func (h *Host) Stop() {
	for i := len(h.workers) - 1; i >= 0; i-- {
		h.workers[i].Stop()
	}
	if len(h.workers) > 0 {
		h.logger.Info("workers stopped", zap.Strings("task_queues", h.queues))
	}
	h.workers = nil
}

// Run starts the host and blocks until ctx is done (signal), then stops.
func Run(ctx context.Context, c client.Client, roles []config.Role, reg Registrar, logger *zap.Logger, o Options) error {
	h, err := Start(c, roles, reg, logger, o)
	if err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	h.Stop()
	return nil
}

// workflowPollers is what a worker really polls with for workflow tasks.
func workflowPollers(wo worker.Options) int {
	if wo.DisableWorkflowWorker {
		return 0
	}
	return wo.MaxConcurrentWorkflowTaskPollers
}
