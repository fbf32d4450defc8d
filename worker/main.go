// Command hybridflow-worker serves hybridflow's task queues: the cloud role
// (workflows, Graph, Exchange Online) and on-prem / Lync roles per site.
// With a simulated world it starts the simulator on loopback and points
// the real clients at it; nothing else changes.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/logging"
	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
)

func main() {
	// The simulated world's PowerShell hosts are this binary re-run as a
	// relay (sim.HostCommand); it must take over before anything else.
	sim.MaybeRunHost()
	execute := func(ctx context.Context) error {
		return rootCommand(os.Stdout, os.Stderr, os.Getenv).ExecuteContext(ctx)
	}
	// Under the Windows Service Control Manager (the on-prem worker).
	if handled, err := runWindowsService(execute); handled {
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := execute(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type options struct {
	configPath string
	roles      []string
	simulate   string
	logLevel   string
	identity   string
}

func rootCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "hybridflow-worker",
		Short: "Serve hybridflow's Temporal task queues",
		Long: `hybridflow-worker polls the task queues of its roles:
  cloud            hybridflow-cloud: every workflow, and the Graph / Exchange Online activities
  onprem:<site>    hybridflow-onprem-<site>: on-prem Exchange activities (PowerShell host)
  lync:<site>      hybridflow-lync-<site>: Lync / Skype for Business activities

Workers only dial out to Temporal. SIGINT/SIGTERM stop polling, let running
activities finish (up to 30s) and exit.`,
		Example:       "  hybridflow-worker --config configs/worker.example.yaml\n  hybridflow-worker --role cloud --role onprem:site-a --simulate configs/sim/demo.yaml",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), o, getenv)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "worker config file (env HYBRIDFLOW_CONFIG)")
	f.StringArrayVar(&o.roles, "role", nil, "role to serve, repeatable: cloud, onprem:<site>, lync:<site> (overrides config)")
	f.StringVar(&o.simulate, "simulate", "", "serve a simulated world from this YAML file instead of real systems")
	f.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides config)")
	f.StringVar(&o.identity, "identity", "", "worker identity shown in Temporal (default pid@host)")
	cmd.AddCommand(healthcheckCommand())
	return cmd
}

func serve(ctx context.Context, o options, getenv func(string) string) error {
	path := o.configPath
	if path == "" {
		path = getenv("HYBRIDFLOW_CONFIG")
	}
	cfg, err := config.LoadWorkerConfig(path, getenv)
	if err != nil {
		return err
	}
	if o.logLevel != "" {
		cfg.LogLevel = o.logLevel
	}
	if o.simulate != "" {
		if cfg.Endpoints != nil {
			return fmt.Errorf("--simulate cannot be used with the config's endpoints block (the simulated world serves its own endpoints)")
		}
		cfg.Simulate = &config.SimulateConfig{World: o.simulate}
	}
	if len(o.roles) > 0 {
		cfg.Roles = nil
		for _, r := range o.roles {
			role, err := config.ParseRole(r)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			cfg.Roles = append(cfg.Roles, role)
		}
	}
	logger, err := logging.New(cfg.LogLevel, false)
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()

	// Metrics and health endpoints (metrics_address; off when empty).
	obs, err := startObservability(cfg, logger)
	if err != nil {
		return err
	}
	defer obs.close()

	be, err := newBackend(ctx, cfg, logger, getenv)
	if err != nil {
		return err
	}
	defer be.Close()
	be.Instrument(metrics.Default) // Graph / Exchange Online call metrics
	// Each site's PowerShell host is started now, not at the first step,
	// and /readyz waits for them. A simulated world's hosts are per
	// tenant and start on demand.
	if cfg.Simulate == nil {
		probe := startHostProbes(ctx, be.StartHost, cfg.Roles, logger, defaultHostProbeRetry)
		defer probe.stop() // before be.Close, which stops the hosts
		obs.watchHosts(probe)
	}

	// The payload codec (temporal.codec) is applied inside Dial.
	c, err := temporalx.Dial(ctx, cfg.Temporal, logger, getenv, obs.dialOptions()...)
	if err != nil {
		return err
	}
	defer c.Close()
	obs.connected(c, cfg)
	identity := o.identity
	if identity == "" {
		identity = cfg.Temporal.Identity
	}
	if identity == "" {
		identity = fmt.Sprintf("%d@%s", os.Getpid(), hostname())
	}
	logger.Info("hybridflow worker starting", zap.String("temporal", cfg.Temporal.Address),
		zap.String("namespace", cfg.Temporal.Namespace), zap.Stringers("roles", rolesOf(cfg.Roles)), zap.String("backend", be.Kind()),
		zap.Bool("payload_encryption", cfg.Temporal.Codec != nil), zap.Bool("require_encryption", cfg.Temporal.RequireEncryption))
	// workerhost.Run, with readiness reported between start and stop.
	h, err := workerhost.Start(c, cfg.Roles, workerhost.ForBackend(be, identity, workerhost.WithConfig(cfg)), logger, workerhost.Options{Identity: identity,
		WorkflowTaskPollers: cfg.Pollers.WorkflowTasks, ActivityTaskPollers: cfg.Pollers.ActivityTasks})
	if err != nil {
		return err
	}
	obs.setReady(true)
	<-ctx.Done()
	obs.setReady(false)
	logger.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	h.Stop()
	return nil
}

func rolesOf(rs []config.Role) []fmt.Stringer {
	out := make([]fmt.Stringer, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}
