package main

import (
	"context"
	"os"

	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/activities"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/workflows"
)

// backends builds the activity structs for each role from the configured
// clients (real or simulated) and registers them.
type backends struct {
	cfg      *config.WorkerConfig
	logger   *zap.Logger
	identity string
	closers  []func()
}

func newBackends(ctx context.Context, cfg *config.WorkerConfig, logger *zap.Logger) (*backends, error) {
	host, _ := os.Hostname()
	return &backends{cfg: cfg, logger: logger, identity: host}, nil
}

func (b *backends) Kind() string {
	if b.cfg.Simulate != nil {
		return "simulated"
	}
	return "real"
}

// Register is the workerhost.Registrar for this process.
func (b *backends) Register(role config.Role, r worker.Registry) error {
	if role.Kind == config.RoleCloud {
		r.RegisterWorkflow(workflows.Probe)
	}
	r.RegisterActivity(&activities.Health{Worker: b.identity, Role: role.String(), Backend: b.Kind()})
	return nil
}

func (b *backends) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}
