package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync/atomic"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/metrics"
	"github.com/hybridflow/hybridflow/internal/metrics/fleet"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/workflows"
)

// observability is the worker's metrics and health listener
// (metrics_address / HYBRIDFLOW_METRICS_ADDRESS; off when empty): the
// Temporal SDK's metrics, the product metrics of internal/metrics, and
// /healthz (alive) and /readyz (workers polling, every site's PowerShell
// host started, Temporal answering).
type observability struct {
	m      *metrics.Metrics
	srv    *metrics.Server
	sdk    client.MetricsHandler
	flush  io.Closer
	client client.Client
	logger *zap.Logger
	// hosts is the start probe of the worker's sites (nil: none, as for
	// a simulated world or a cloud-only worker).
	hosts atomic.Pointer[hostProbe]
}

func startObservability(cfg *config.WorkerConfig, logger *zap.Logger) (*observability, error) {
	o := &observability{logger: logger}
	if cfg.MetricsAddress == "" {
		return o, nil
	}
	o.m = metrics.Default
	o.sdk, o.flush = o.m.TemporalHandler(func(err error) { logger.Warn("SDK metric not registered", zap.Error(err)) })
	srv, err := metrics.Serve(cfg.MetricsAddress, o.m, metrics.ServerOptions{Check: o.readyCheck})
	if err != nil {
		_ = o.flush.Close()
		return nil, err
	}
	o.srv = srv
	logger.Info("metrics and health endpoints", zap.String("metrics", "http://"+srv.Addr()+metrics.PathMetrics),
		zap.String("healthz", metrics.PathHealthz), zap.String("readyz", metrics.PathReadyz))
	return o, nil
}

// readyCheck is /readyz once the workers are started: every site's host
// has reached its ready line, and Temporal answers.
func (o *observability) readyCheck(ctx context.Context) error {
	if p := o.hosts.Load(); p != nil {
		if err := p.err(); err != nil {
			return err
		}
	}
	return o.temporalHealthy(ctx)
}

// watchHosts makes /readyz wait for the start probe.
func (o *observability) watchHosts(p *hostProbe) { o.hosts.Store(p) }

func (o *observability) temporalHealthy(ctx context.Context) error {
	if o.client == nil {
		return errors.New("not connected to Temporal")
	}
	_, err := o.client.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// dialOptions plug the SDK metrics and the step interceptor into the client.
func (o *observability) dialOptions() []temporalx.Option {
	if o.m == nil {
		return nil
	}
	return []temporalx.Option{temporalx.WithMetricsHandler(o.sdk), temporalx.WithInterceptors(o.m.Interceptor())}
}

// connected registers what needs the client: the readiness check and, on a
// cloud worker, the gauges read from Temporal (tenants by state, fleet).
func (o *observability) connected(c client.Client, cfg *config.WorkerConfig) {
	o.client = c
	if o.m == nil || !slices.Contains(cfg.Roles, config.Role{Kind: config.RoleCloud}) {
		return
	}
	err := o.m.RegisterTenantStates(metrics.TenantStates{
		Client: c, Namespace: cfg.Temporal.Namespace,
		WorkflowType: "Setup", StateAttribute: workflows.SAState.GetName(),
		Open:   []string{workflows.StateRunning, workflows.StatePaused, workflows.StateCompensating},
		Closed: []string{workflows.StateVerified, workflows.StateFailed, workflows.StateAborted, workflows.StatePlanned},
	})
	if err != nil {
		o.logger.Warn("tenants-by-state gauge not registered", zap.Error(err))
	}
	// Per-tenant drift, certificate expiry, pauses, renewals and pollers,
	// read from Temporal like the gauge above.
	if _, err := fleet.Register(o.m.Registry(), fleet.Options{Source: fleet.FromClient(c, cfg.Temporal.Namespace), Namespace: cfg.Temporal.Namespace}); err != nil {
		o.logger.Warn("fleet gauges not registered", zap.Error(err))
	}
}

func (o *observability) setReady(ready bool) {
	if o.srv != nil {
		o.srv.SetReady(ready)
	}
}

func (o *observability) close() {
	if o.srv != nil {
		_ = o.srv.Shutdown(context.Background())
	}
	if o.flush != nil {
		_ = o.flush.Close()
	}
}
