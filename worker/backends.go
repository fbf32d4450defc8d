package main

import (
	"context"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// newBackend builds the clients the activities use: the simulated world on
// loopback when the config says simulate, the real systems otherwise.
func newBackend(ctx context.Context, cfg *config.WorkerConfig, logger *zap.Logger, getenv func(string) string) (*backend.Backend, error) {
	if cfg.Simulate == nil {
		return backend.NewReal(cfg, logger, getenv)
	}
	w, err := sim.Load(cfg.Simulate.World)
	if err != nil {
		return nil, fmt.Errorf("simulated world: %w", err)
	}
	if cfg.Simulate.Seed != 0 {
		w.Seed = cfg.Simulate.Seed
	}
	be, err := backend.NewSimulated(ctx, w, logger, backend.SimOptions{})
	if err != nil {
		return nil, err
	}
	cfg.Roles = withWorldSites(cfg.Roles, w.Inventory())
	logger.Info("serving a simulated world", zap.String("world", cfg.Simulate.World), zap.Int("tenants", len(w.Tenants)),
		zap.String("graph_and_exo", be.Sim.Servers.BaseURL), zap.String("powershell_relay", be.Sim.ShellAddr))
	return be, nil
}

// withWorldSites adds an on-prem (and Lync) role for every site of the
// simulated world: one simulated worker stands in for every customer site.
func withWorldSites(roles []config.Role, inv *config.Inventory) []config.Role {
	have := map[config.Role]bool{}
	for _, r := range roles {
		have[r] = true
	}
	add := func(r config.Role) {
		if !have[r] {
			have[r] = true
			roles = append(roles, r)
		}
	}
	add(config.Role{Kind: config.RoleCloud})
	for _, t := range inv.Tenants {
		add(config.Role{Kind: config.RoleOnPrem, Site: t.Site})
		if t.LyncSite != "" {
			add(config.Role{Kind: config.RoleLync, Site: t.LyncSite})
		}
	}
	return roles
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "hybridflow-worker"
	}
	return h
}
