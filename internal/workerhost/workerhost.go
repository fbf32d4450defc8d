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

// Options tune every worker of the host.
type Options struct {
	// StopTimeout is how long Stop waits for in-flight activities.
	StopTimeout time.Duration
	// MaxConcurrentActivities bounds each worker (0 = SDK default).
	MaxConcurrentActivities int
	Identity                string
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
		w := worker.New(c, q, worker.Options{
			WorkerStopTimeout:                  o.StopTimeout,
			MaxConcurrentActivityExecutionSize: o.MaxConcurrentActivities,
			Identity:                           o.Identity,
		})
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
		logger.Info("worker started", zap.String("role", role.String()), zap.String("task_queue", q))
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
