package main

import (
	"context"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/workerhost"
)

// simWorker starts the real dev server and a worker serving world the way
// hybridflow-worker does (workerhost.ForBackend, the cloud role plus an
// on-prem role per site), all stopped when the test ends. direct runs the
// PowerShell cmdlets in-process instead of through relay processes; opts
// are the worker's configuration (the inventory directory).
func simWorker(t *testing.T, ctx context.Context, world *sim.World, direct bool, identity string, opts ...workerhost.RegisterOption) (*testsuite.DevServer, client.Client) {
	t.Helper()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	be, err := backend.NewSimulated(ctx, world, zap.NewNop(), backend.SimOptions{DirectShell: direct})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	roles := []config.Role{{Kind: config.RoleCloud}}
	seen := map[string]bool{}
	for _, tn := range world.Inventory().Tenants {
		if !seen[tn.Site] {
			seen[tn.Site] = true
			roles = append(roles, config.Role{Kind: config.RoleOnPrem, Site: tn.Site})
		}
	}
	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: "default", Logger: logging.NewTemporal(zap.NewNop())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h, err := workerhost.Start(c, roles, workerhost.ForBackend(be, identity, opts...), zap.NewNop(), workerhost.Options{Identity: identity, MaxConcurrentActivities: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return srv, c
}
